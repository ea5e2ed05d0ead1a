"""An in-memory object store for Beam's FileSystems, scheme ``memstore://``: what gs:// and
s3:// are to kdp_beam (no directories; a rename is a copy and a delete per object), so
the object-store code paths run here, with no network. Objects live in this process: use
it with in-process runners only.

Importing this module registers the scheme (Beam finds FileSystem subclasses by scheme).
`fail_after(n)` makes the n+1-th change (create, rename or delete) raise, as a process
killed at that point would stop.
"""

import io
import posixpath

from apache_beam.io.filesystem import (
    BeamIOError,
    CompressedFile,
    CompressionTypes,
    FileMetadata,
    FileSystem,
)

OBJECTS = {}  # path -> bytes
_CHANGES = {"left": None}  # changes allowed before the next one raises (None: no limit)


class Killed(BaseException):
    """The simulated kill: a BaseException, so no `except Exception` handles it."""


def fail_after(changes):
    _CHANGES["left"] = changes


def _change():
    if _CHANGES["left"] is not None:
        if _CHANGES["left"] == 0:
            raise Killed()
        _CHANGES["left"] -= 1


class _Writer(io.BytesIO):
    def __init__(self, path):
        super().__init__()
        self._path = path

    def close(self):
        if not self.closed:
            _change()
            OBJECTS[self._path] = self.getvalue()
        super().close()


class MemoryObjectStore(FileSystem):
    @classmethod
    def scheme(cls):
        return "memstore"

    def join(self, basepath, *paths):
        return posixpath.join(basepath, *paths)

    def split(self, path):
        return posixpath.split(path)

    def mkdirs(self, path):
        pass  # no directories

    def has_dirs(self):
        return False

    def _list(self, prefix):
        for path, data in sorted(OBJECTS.items()):
            if path.startswith(prefix):
                yield FileMetadata(path, len(data), 0.0)

    def _wrap(self, raw, path, compression_type):
        compression_type = FileSystem._get_compression_type(path, compression_type)
        if compression_type == CompressionTypes.UNCOMPRESSED:
            return raw
        return CompressedFile(raw, compression_type=compression_type)

    def create(self, path, mime_type="application/octet-stream", compression_type=CompressionTypes.AUTO):
        return self._wrap(_Writer(path), path, compression_type)

    def open(self, path, mime_type="application/octet-stream", compression_type=CompressionTypes.AUTO):
        if path not in OBJECTS:
            raise BeamIOError("Open operation failed", {path: FileNotFoundError(path)})
        return self._wrap(io.BytesIO(OBJECTS[path]), path, compression_type)

    def copy(self, sources, destinations):
        for source, destination in zip(sources, destinations):
            _change()
            OBJECTS[destination] = OBJECTS[source]

    def rename(self, sources, destinations):
        for source, destination in zip(sources, destinations):  # one object at a time
            self.copy([source], [destination])
            self.delete([source])

    def exists(self, path):
        return path in OBJECTS

    def size(self, path):
        return len(OBJECTS[path])

    def last_updated(self, path):
        return 0.0

    def checksum(self, path):
        return str(len(OBJECTS[path]))

    def metadata(self, path):
        return FileMetadata(path, len(OBJECTS[path]), 0.0)

    def delete(self, paths):
        for path in paths:  # an object, or everything under a "directory" prefix
            for name in [p for p in OBJECTS if p == path or p.startswith(path.rstrip("/") + "/")]:
                _change()
                del OBJECTS[name]
