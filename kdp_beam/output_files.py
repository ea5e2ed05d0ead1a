"""Single output files (a report page, a proposed features JSON): checked before the work,
so that a path that cannot be written fails at once with one clear error, not after the
work or as a raw OSError. (Bundles are directories: kdp_beam.artifacts writes those.)"""

import os

from apache_beam.io.filesystems import FileSystems

from kdp_beam.errors import KdpBeamError


def check_output_file(path, what):
    """Raises KdpBeamError when `path` cannot be written as a file: it is a directory, a
    parent on its way is a file, or the directory it would go in is not writable. Missing
    parent directories are fine (they are created). Remote paths (gs://, s3://) are
    checked when written."""
    if FileSystems.get_scheme(path) not in (None, "file"):
        return
    local = os.path.abspath(path.removeprefix("file://"))
    if os.path.isdir(local):
        raise KdpBeamError(f"{path} is a directory; pass the path of the {what} file to write")
    parent = os.path.dirname(local)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise KdpBeamError(f"cannot write the {what} {path}: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK) or (os.path.exists(local) and not os.access(local, os.W_OK)):
        raise KdpBeamError(f"cannot write the {what} {path}: permission denied; choose another path")


def write_output_file(path, data, what):
    """Writes bytes to a local or remote file; an OSError becomes a KdpBeamError naming the
    path."""
    check_output_file(path, what)
    try:
        with FileSystems.create(path) as f:
            f.write(data)
    except OSError as e:  # Beam's BeamIOError is one too
        reason = e.strerror or " ".join(str(e).split())
        raise KdpBeamError(f"cannot write the {what} {path}: {reason}") from None
