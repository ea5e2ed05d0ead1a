"""Single output files (a report page, a proposed features JSON): checked before the work,
so that a path that cannot be written fails at once with one clear error, not after the
work or as a raw OSError. (Bundles are directories: kdp_beam.bundle.writer writes those.)"""

import os

from apache_beam.io.filesystems import FileSystems

from kdp_beam.bundle.layout import MANIFEST
from kdp_beam.errors import KdpBeamError
from kdp_beam.io.files import matched_paths
from kdp_beam.bundle.staging import is_bundle_manifest


def check_output_file(path, what, inputs=None):
    """Raises KdpBeamError when `path` cannot be written as a file: it is a directory, a
    parent on its way is a file, or the directory it would go in is not writable; or when
    writing it would destroy data: it is one of the files the pattern(s) `inputs` match, or
    it lies inside a kdp_beam bundle (whose checksums it would break). Missing parent
    directories are fine (they are created). Remote paths (gs://, s3://) are checked when
    written."""
    if FileSystems.get_scheme(path) not in (None, "file"):
        return
    local = os.path.abspath(path.removeprefix("file://"))
    if os.path.isdir(local):
        raise KdpBeamError(f"{path} is a directory; pass the path of the {what} file to write")
    if inputs is not None and any(_same_file(local, p) for p in matched_paths(inputs)):
        raise KdpBeamError(
            f"the {what} {path} is one of the input files: writing it would destroy the data; "
            "choose another path"
        )
    bundle = _enclosing_bundle(local)
    if bundle is not None:
        raise KdpBeamError(
            f"the {what} {path} lies inside the kdp_beam bundle {bundle}: writing it would change "
            "the bundle (whose files are checksummed); choose a path outside it"
        )
    parent = os.path.dirname(local)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise KdpBeamError(f"cannot write the {what} {path}: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK) or (os.path.exists(local) and not os.access(local, os.W_OK)):
        raise KdpBeamError(f"cannot write the {what} {path}: permission denied; choose another path")


def _same_file(local, input_path):
    if FileSystems.get_scheme(input_path) is not None:
        return False  # a remote input is never a local output
    return os.path.realpath(local) == os.path.realpath(input_path)


def _enclosing_bundle(local):
    """The bundle directory the local path lies in (at any depth), or None."""
    directory = os.path.dirname(os.path.realpath(local))
    while True:
        if os.path.isfile(os.path.join(directory, MANIFEST)) and is_bundle_manifest(directory):
            return directory
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


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
