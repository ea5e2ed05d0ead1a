"""A run's bundle appears whole, and only if the run succeeds.

``run_analysis`` (kdp-beam analyze, FeatureSpace.adapt) and ``merge_bundles`` (kdp-beam
merge) write everything -- statistics, vocabularies, the token state workers write during
the job, dead letters -- into a staging directory beside the output,
``<parent>/.<name>.kdp-beam-tmp-<id>``, and swap it in once the pipeline has finished.
The output then holds exactly what the new manifest lists, nothing of an earlier run.

What is guaranteed, where:

- **A run that fails** (an error in the job, Ctrl-C) deletes its staging directory; the
  output is left exactly as it was, on every file system.
- **Local disks, Linux**: the swap is one ``renameat2(RENAME_EXCHANGE)`` of the two
  directories, then the previous bundle (now at the staging path) is deleted. A run killed
  at any point leaves the previous bundle or the new one at the output, never a mix and
  never a stale file.
- **Local disks elsewhere** (macOS, Windows, file systems without that call): the swap is
  two renames, the previous bundle moved aside to ``.<name>.kdp-beam-old-<id>`` and the new
  one renamed in. A kill between the two leaves no bundle at the output and the previous
  one, whole, in that sibling.
- **Object stores** (gs://, s3://): there is no rename, only copy + delete per object, so
  no swap is atomic. The previous manifest is deleted first, then the previous files, the
  new files are copied in and the new manifest last. A kill during the swap leaves no
  loadable bundle (only a manifest makes one, and it lists every file's checksum): the
  previous bundle, none, or the new one, never a mix. What a killed swap left is removed by
  the next successful run into the same output. Whether the location can be written is
  found before the job, by writing and deleting a probe object.
- A killed process (SIGKILL, a lost machine) may leave its hidden staging directory behind;
  it is never read and is safe to delete. Two runs into one output at once: the last swap
  wins.

Only a directory that is absent, empty or holds nothing but kdp_beam bundle files is
replaced: anything else is refused before the job starts (a typo in --output never
deletes someone's data), as is an output that is a file or cannot be written, and, on a
local disk, the current directory (or one holding it) and a mount point, which no rename
can replace. Missing parent directories are created.
Users' own pipelines (``AnalyzeFeatures | WriteArtifacts(path)``) write straight into
`path` instead; there the manifest is written last (kdp_beam.bundle.writer.write_bundle).
"""

import contextlib
import ctypes
import errno
import json
import os
import posixpath
import re
import shutil
import sys
import uuid

from apache_beam.io.filesystems import FileSystems
from apache_beam.io.localfilesystem import LocalFileSystem

from kdp_beam.bundle.layout import FORMAT_NAME, MANIFEST, join
from kdp_beam.bundle.loader import read_bytes
from kdp_beam.errors import BundleError

# Every file a bundle (or an interrupted write of one) can hold, relative to the bundle.
_BUNDLE_FILE = re.compile(
    r"(manifest\.json(\.tmp)?|statistics\.json|vocabularies/[^/]+\.jsonl"
    r"|state/analyzers\.json|state/tokens/[^/]+/shard-\d+\.jsonl|bad_records/.+)"
)


@contextlib.contextmanager
def staged_output(output_dir):
    """Context manager: yields a fresh staging directory to write the whole bundle into,
    swaps it in for `output_dir` when the block succeeds, deletes it when the block raises.

    Raises BundleError, before anything is written, when `output_dir` is a file, a
    directory holding anything but a kdp_beam bundle, or cannot be written.
    """
    local = is_local(output_dir)
    output = os.path.realpath(output_dir) if local else output_dir.rstrip("/")
    if local:
        _check_replaceable(output_dir, output)
    _check_output(output)
    staging = _sibling(output, "tmp")
    try:
        _create_directory(staging, local)
    except OSError as e:
        parent = os.path.dirname(staging) if local else posixpath.dirname(staging)
        reason = f"{parent} is a file" if local and os.path.isfile(parent) else _reason(e)
        raise BundleError(
            f"cannot write the bundle {output_dir} (creating a directory in {parent}: "
            f"{reason}); choose an output you can write to"
        ) from None
    try:
        yield staging
    except BaseException:
        _remove(staging, local)
        raise
    try:
        (_swap_directories if local else _swap_objects)(staging, output)
    except OSError as e:
        _remove(staging, local)
        raise BundleError(
            f"cannot replace the bundle {output_dir} ({_reason(e)}); on a local disk it is left "
            "as it was, in an object store it may be left without a manifest. Run again."
        ) from None


def _check_replaceable(output_dir, output):
    """A local output is replaced by renaming a directory beside it: refuse what cannot be."""
    if os.path.commonpath([output, os.getcwd()]) == output:
        raise BundleError(
            f"{output_dir} is the current directory or holds it; kdp_beam replaces the whole "
            "output directory, so give it one of its own (e.g. ./bundle)"
        )
    if os.path.ismount(output):  # e.g. a container's volume: no rename reaches it
        raise BundleError(
            f"{output_dir} is a mount point, which kdp_beam cannot replace by a rename; give a "
            f"directory inside it (e.g. {os.path.join(output_dir, 'bundle')})"
        )


def _check_output(output_dir):
    """Raises BundleError unless `output_dir` is absent, an empty directory, or a
    directory holding only kdp_beam bundle files (with a kdp_beam manifest, if any)."""
    try:
        files = _files_under(output_dir)
    except NotADirectoryError:
        raise BundleError(f"{output_dir} is a file; the output is the bundle's directory") from None
    except OSError as e:
        raise BundleError(f"cannot read the output directory {output_dir}: {_reason(e)}") from None
    foreign = sorted(name for name in files if not _BUNDLE_FILE.fullmatch(name))
    if not foreign and MANIFEST in files and not is_bundle_manifest(output_dir):
        foreign = [MANIFEST]
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise BundleError(
            f"{output_dir} holds files that are not part of a kdp_beam bundle ({shown}); "
            "kdp_beam replaces the whole output directory, so it only replaces a bundle. "
            "Choose a new or empty directory, or remove those files."
        )


def is_local(path):
    """Whether Beam's FileSystems read `path` from the local disk."""
    return isinstance(FileSystems.get_filesystem(path), LocalFileSystem)


def _sibling(output, kind):
    """A hidden path beside the output: ``<parent>/.<name>.kdp-beam-<kind>-<id>``."""
    parent, name = (os.path if is_local(output) else posixpath).split(output)
    if not name:
        raise BundleError(f"{output} cannot be a bundle: name a directory inside it")
    return join(parent, f".{name}.kdp-beam-{kind}-{uuid.uuid4().hex[:12]}")


def _files_under(directory):
    """Relative "/"-separated names of every file under `directory` (none when it does not
    exist). Raises NotADirectoryError when it is a file."""
    if is_local(directory):
        if os.path.isfile(directory):
            raise NotADirectoryError(directory)
        if not os.path.exists(directory):  # a new output (its parent may even be a file)
            return []
        return [
            os.path.relpath(os.path.join(root, f), directory).replace(os.sep, "/")
            for root, _, names in os.walk(directory, onerror=_raise)
            for f in names
        ]
    if FileSystems.exists(directory):  # an object at the very path: a file
        raise NotADirectoryError(directory)
    found = FileSystems.match([directory + "/**"])[0].metadata_list
    return [m.path[len(directory) + 1 :] for m in found]


def _raise(error):  # os.walk ignores errors unless told
    raise error


def is_bundle_manifest(directory):
    """Whether `directory` holds a kdp_beam bundle's manifest.json (another tool's, or an
    unreadable one, is not)."""
    try:
        manifest = json.loads(read_bytes(join(directory, MANIFEST)).decode("utf-8"))
    except (OSError, ValueError):  # unreadable, not UTF-8 or not JSON: not ours
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT_NAME


def _create_directory(path, local):
    if local:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.mkdir(path)
    else:  # no directories in object stores: write and delete an object to find out
        probe = FileSystems.join(path, ".kdp-beam-probe")
        FileSystems.create(probe).close()
        FileSystems.delete([probe])


def _remove(path, local):
    if local:
        shutil.rmtree(path, ignore_errors=True)
        return
    with contextlib.suppress(OSError):
        names = _files_under(path)
        if names:
            FileSystems.delete([FileSystems.join(path, name) for name in names])


def _swap_directories(staging, output):
    """Puts the staging directory at `output`; deletes what was there."""
    for root, _, _ in os.walk(staging, topdown=False):
        if root != staging and not os.listdir(root):
            os.rmdir(root)  # Beam's writers leave bad_records/ empty when nothing was bad
    if not os.path.lexists(output):
        os.rename(staging, output)
    elif _exchange(staging, output):
        shutil.rmtree(staging)
    else:
        aside = _sibling(output, "old")
        os.rename(output, aside)
        os.rename(staging, output)
        shutil.rmtree(aside)


def _exchange(a, b):
    """Swaps two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where the
    system or file system has no such call."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:  # C library older than glibc 2.28
        return False
    at_cwd, rename_exchange = -100, 2
    if renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), b)


def _swap_objects(staging, output):
    """The swap where a rename is a copy and a delete (object stores): the previous
    manifest goes first, the new one comes last, so no mix ever loads."""
    new = _files_under(staging)
    manifest = FileSystems.join(output, MANIFEST)
    if FileSystems.exists(manifest):
        FileSystems.delete([manifest])
    previous = _files_under(output)
    if previous:
        FileSystems.delete([FileSystems.join(output, name) for name in previous])
    data = sorted(name for name in new if name != MANIFEST)
    if data:
        FileSystems.rename(
            [FileSystems.join(staging, name) for name in data],
            [FileSystems.join(output, name) for name in data],
        )
    FileSystems.rename([FileSystems.join(staging, MANIFEST)], [manifest])


def _reason(error):
    """The cause of an OSError, without its errno (Beam's BeamIOError holds one per path)."""
    causes = getattr(error, "exception_details", None)
    if causes:
        return "; ".join(_reason(e) for e in causes.values())
    return (error.strerror or str(error)) if isinstance(error, OSError) else str(error)
