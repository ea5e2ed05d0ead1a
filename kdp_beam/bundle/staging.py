"""A run's bundle appears whole, and only if the run succeeds.

``run_analysis`` (kdp-beam analyze, FeatureSpace.adapt) and ``merge_bundles`` (kdp-beam
merge) write everything -- statistics, vocabularies, the token state workers write during
the job, dead letters -- into a staging directory beside the output,
``<parent>/.<name>.kdp-beam-tmp-<id>``, and swap it in once the pipeline has finished.
The output then holds exactly what the new manifest lists, nothing of an earlier run.
``run_transform`` (kdp-beam transform) writes its transformed dataset the same way: every
guarantee below holds for both kinds of output.

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

Only a directory that is absent, empty or holds nothing but the files of a kdp_beam output
of the same kind (a bundle for a bundle, a transformed dataset for a dataset) is replaced:
anything else, a bundle where a dataset goes among it, is refused before the job starts (a typo in --output never
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
from kdp_beam.transform.manifest import FORMAT_NAME as DATASET_FORMAT_NAME

# The kinds of output a run replaces whole: what its manifest's "format" says, and every
# file it (or an interrupted write of it) can hold, relative to the output.
BUNDLE = "bundle"
DATASET = "transformed dataset"
_KINDS = {
    BUNDLE: (
        FORMAT_NAME,
        re.compile(
            r"(manifest\.json(\.tmp)?|statistics\.json|vocabularies/[^/]+\.jsonl"
            r"|state/analyzers\.json|state/tokens/[^/]+/shard-\d+\.jsonl|bad_records/.+)"
        ),
    ),
    DATASET: (
        DATASET_FORMAT_NAME,
        re.compile(r"(manifest\.json(\.tmp)?|data/part-[0-9a-f]+-\d+\.(tfrecord|parquet)|bad_records/.+)"),
    ),
}
_COMMANDS = {BUNDLE: "kdp-beam analyze and merge write", DATASET: "kdp-beam transform writes"}
_UNFINISHED = {}  # {staging directory: local}, while its block runs (remove_unfinished)


@contextlib.contextmanager
def staged_output(output_dir, kind=BUNDLE):
    """Context manager: yields a fresh staging directory to write the whole output into,
    swaps it in for `output_dir` when the block succeeds, deletes it when the block raises.

    `kind`: BUNDLE (an artifact bundle) or DATASET (kdp-beam transform's output): the
    output may hold only a previous output of the same kind.
    Raises BundleError, before anything is written, when `output_dir` is a file, a
    directory holding anything but a kdp_beam output of that kind, or cannot be written.
    """
    local = is_local(output_dir)
    output = os.path.realpath(output_dir) if local else output_dir.rstrip("/")
    if local:
        _check_replaceable(output_dir, output)
    _check_output(output, kind)
    staging = _sibling(output, "tmp")
    try:
        _create_directory(staging, local)
    except OSError as e:
        parent = os.path.dirname(staging) if local else posixpath.dirname(staging)
        reason = f"{parent} is a file" if local and os.path.isfile(parent) else _reason(e)
        raise BundleError(
            f"cannot write the {kind} {output_dir} (creating a directory in {parent}: "
            f"{reason}); choose an output you can write to"
        ) from None
    _UNFINISHED[staging] = local
    try:
        yield staging
    except BaseException:
        _remove(staging, local)
        raise
    finally:
        _UNFINISHED.pop(staging, None)
    try:
        (_swap_directories if local else _swap_objects)(staging, output)
    except OSError as e:
        _remove(staging, local)
        raise BundleError(
            f"cannot replace the {kind} {output_dir} ({_reason(e)}); on a local disk it is left "
            "as it was, in an object store it may be left without a manifest. Run again."
        ) from None


def remove_unfinished():
    """Removes the staging directories whose blocks are still running: for a process that
    ends without unwinding them (kdp_beam.cli, when an interrupted job's clean-up hangs)."""
    for staging, local in list(_UNFINISHED.items()):
        _remove(staging, local)


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


def _check_output(output_dir, kind):
    """Raises BundleError unless `output_dir` is absent, an empty directory, or a
    directory holding only the files of a kdp_beam output of `kind` (with its manifest,
    if any)."""
    try:
        files = _files_under(output_dir)
    except NotADirectoryError:
        raise BundleError(f"{output_dir} is a file; the output is the {kind}'s directory") from None
    except OSError as e:
        raise BundleError(f"cannot read the output directory {output_dir}: {_reason(e)}") from None
    found = _manifest_format(output_dir) if MANIFEST in files else None
    other = next((k for k, (name, _) in _KINDS.items() if k != kind and name == found), None)
    if other is not None:  # never a bundle replaced by a dataset, nor the reverse
        raise BundleError(
            f"{output_dir} holds a kdp_beam {other}, which {_COMMANDS[kind]} over only as a "
            f"{kind}; choose another output directory (or remove that {other} first)"
        )
    format_name, member = _KINDS[kind]
    foreign = sorted(name for name in files if not member.fullmatch(name))
    if not foreign and MANIFEST in files and found != format_name:
        foreign = [MANIFEST]
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise BundleError(
            f"{output_dir} holds files that are not part of a kdp_beam {kind} ({shown}); "
            f"kdp_beam replaces the whole output directory, so it only replaces a {kind}. "
            "Choose a new or empty directory, or remove those files."
        )


def is_local(path):
    """Whether Beam's FileSystems read `path` from the local disk."""
    return isinstance(FileSystems.get_filesystem(path), LocalFileSystem)


def _sibling(output, kind):
    """A hidden path beside the output: ``<parent>/.<name>.kdp-beam-<kind>-<id>``."""
    parent, name = (os.path if is_local(output) else posixpath).split(output)
    if not name:
        raise BundleError(f"{output} cannot be an output directory: name a directory inside it")
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
    return _manifest_format(directory) == FORMAT_NAME


def _manifest_format(directory):
    """The "format" of the manifest.json in `directory`; None when it is unreadable, not
    UTF-8, not JSON or has none (not ours)."""
    try:
        manifest = json.loads(read_bytes(join(directory, MANIFEST)).decode("utf-8"))
    except (OSError, ValueError):
        return None
    return manifest.get("format") if isinstance(manifest, dict) else None


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
