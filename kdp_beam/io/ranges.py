"""Byte ranges of large files as units of work, for the line-based formats (CSV, JSON
Lines): each range owns the records that start in it."""

import contextlib
import os
import threading

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.pvalue import PBegin

from kdp_beam import bad_records
from kdp_beam.errors import InputDataError
from kdp_beam.io.files import MatchInputFiles, Reader, check_regular_file, open_input
from kdp_beam.numbers import holds_hex

DEFAULT_SPLIT_SIZE = 64 << 20  # bytes of an uncompressed file per unit of work
DEFAULT_BLOCK_SIZE = 4 << 20  # bytes of text per RecordBatch
_QUOTE = ord('"')
_CHUNK = 1 << 20  # bytes numpy compares at a time: its temporary stays in the cache
# pyarrow drops a byte order mark at the start of what it reads: a range whose first value
# starts with U+FEFF is given to it from the newline before, a blank line it skips.
_BOM = b"\xef\xbb\xbf"


class ReadByteRanges(Reader):
    """The readers of line-based files (ReadCsv, ReadJsonLines): match the files, cut each
    into byte ranges (byte_ranges), spread the ranges over workers and read each with the
    subclass's DoFn of (path, start, end), from `_range_reader()`. The outputs are a
    Reader's: ``{"batches": RecordBatches, "bad_records": BadRecords}``."""

    def __init__(
        self,
        file_pattern,
        spec,
        block_size=DEFAULT_BLOCK_SIZE,
        split_size=DEFAULT_SPLIT_SIZE,
        on_bad_record="fail",
        columns=None,
    ):
        super().__init__()
        bad_records.check_policy(on_bad_record)
        self.file_pattern = file_pattern
        self.spec = spec
        self.block_size = block_size
        self.split_size = split_size
        self.on_bad_record = on_bad_record
        self.columns = columns  # {column: read kind}; None: the spec's (kdp_beam.columns.kinds_read)

    def _range_reader(self):
        raise NotImplementedError

    def expand(self, pbegin: PBegin):
        ranges = (
            pbegin
            | "MatchFiles" >> MatchInputFiles(self.file_pattern, spread=False)
            | "SplitFiles" >> beam.FlatMap(byte_ranges, split_size=self.split_size)
            | "SpreadRanges" >> beam.Reshuffle()
        )
        return self._read(ranges, "ReadRange", self._range_reader())


def byte_ranges(metadata, split_size):
    """(path, start, end) units of work: the whole file (end None) when it is compressed,
    small, or splitting is off; else consecutive ranges of split_size bytes. A pipe is
    refused: its header would be read, then nothing (kdp_beam.io.files.check_regular_file)."""
    path, size = metadata.path, metadata.size_in_bytes
    check_regular_file(path)
    compressed = CompressionTypes.detect_compression_type(path) != CompressionTypes.UNCOMPRESSED
    if compressed or split_size <= 0 or size <= split_size:
        return [(path, 0, None)]
    return [(path, start, min(start + split_size, size)) for start in range(0, size, split_size)]


@contextlib.contextmanager
def open_range(path, start, end, watch_hex=False, count_quotes=False):
    """The records that start in [start, end) of a file (end None: to its end), for pyarrow
    to parse from ``source``: a MappedRange of a local uncompressed file, else a
    RecordRange of open_input's stream (decompressed, or from a remote filesystem). Both
    give ``first``, ``next``, ``owns_nothing``, ``quotes`` and ``hex`` (RecordRange's).

    A local file whose size, modification time or inode differ after the range's reading
    (or its failure) from before it changed while it was read: that is the error, not what
    was read of it (a memory map reads a cut page's tail as NUL bytes). A file that says it
    is empty (/proc's) is streamed: a map of it would be."""
    compressed = CompressionTypes.detect_compression_type(path) != CompressionTypes.UNCOMPRESSED
    local = FileSystems.get_scheme(path) is None
    before = _identity(path) if local else None
    try:
        if compressed or not local or not (before and before[0]):  # gone: open_input says so
            with open_input(path) as raw:
                yield RecordRange(raw, start, end, watch_hex, count_quotes, path=path, keep_bom=True)
        else:
            mapped = MappedRange(path, start, end, watch_hex, count_quotes)
            try:
                yield mapped
            finally:
                mapped.close()
    finally:
        if local and _identity(path) != before:
            raise changed(path, "its size, modification time or inode changed during its reading") from None


def _identity(path):
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_size, found.st_mtime_ns, found.st_ino, found.st_dev


def changed(path, how):
    """The error for a file that changed while the run read it."""
    return InputDataError(
        f"{path} changed while it was read ({how}), so its rows cannot be trusted. Do not "
        "rewrite input files during a run; run again."
    )


def shrunk(path, size):
    """The error for a file found shorter than when it was cut into ranges."""
    return changed(path, f"it is now {size:,} bytes, shorter than when the run began")


def quotes_in(data):
    """The double quotes in a bytes-like object: numpy, not bytes.count, 4x faster and
    without the GIL, which bytes.count holds for every byte while other threads wait."""
    array = np.frombuffer(data, np.uint8)
    return sum(int(np.count_nonzero(array[i : i + _CHUNK] == _QUOTE)) for i in range(0, array.size, _CHUNK))


class MappedRange:
    """RecordRange's records of a local uncompressed file, given to pyarrow as a slice of a
    memory map of the file (``source``): no byte passes through Python or is copied out of
    the page cache. Through RecordRange's stream, that copy and the reads cost ~9% of the
    CPU of a CSV analysis (5M rows x 20 columns: 8.1-8.4 CPU-s, mapped 7.3-7.7).

    ``first``, ``next`` and ``owns_nothing`` are RecordRange's; ``quotes`` and ``hex`` are
    of the whole range, looked at in numpy by a thread of their own while pyarrow parses
    (reading either waits for it). A file found shorter than the range is shrunk()'s
    error; one cut shorter while its range is read ends the process with SIGBUS, as any
    memory-mapped reading does: input files must not change during a run.
    """

    def __init__(self, path, start, end, watch_hex=False, count_quotes=False):
        self._map = pa.memory_map(path)
        size = self._map.size()
        if end is not None and size < end:
            raise shrunk(path, size)
        self.first = 0 if start == 0 else self._after_newline(start - 1, size)
        self.owns_nothing = start > 0 and (self.first == size or (end is not None and self.first >= end))
        # The first newline at or after end - 1 ends the last record (RecordRange.read's rule).
        self.next = None if end is None or self.owns_nothing else self._after_newline(end - 1, None)
        stop = self.first if self.owns_nothing else size if self.next is None else self.next
        data = self._slice(self.first, stop)
        self.source = pa.BufferReader(self._slice(self.first - 1, stop) if start and data[:3] == _BOM else data)
        self._quotes, self._hex = 0, False
        self._looking = threading.Thread(
            target=self._look, args=(data, watch_hex, count_quotes), name="kdp_beam-quotes", daemon=True
        )
        self._looking.start()

    def _slice(self, start, stop):
        self._map.seek(start)
        return self._map.read_buffer(max(stop - start, 0))

    def _after_newline(self, position, none):
        """The position after the first newline at or after `position`, or `none`."""
        size = self._map.size()
        while position < size:
            chunk = self._map.read_at(min(1 << 16, size - position), position)
            newline = chunk.find(b"\n")
            if newline >= 0:
                return position + newline + 1
            position += len(chunk)
        return none

    def _look(self, data, watch_hex, count_quotes):
        if watch_hex:
            view, last = memoryview(data), b""
            for i in range(0, len(view), _CHUNK):
                chunk = bytes(view[i : i + _CHUNK])
                if holds_hex(chunk, last):
                    self._hex = True
                    break
                last = chunk[-1:]
        if count_quotes:
            self._quotes = quotes_in(data)

    @property
    def quotes(self):
        self._looking.join()
        return self._quotes

    @property
    def hex(self):
        self._looking.join()
        return self._hex

    def close(self):
        self._map.close()  # the slices given out keep the mapping alive


class RecordRange:
    """A read-only stream of the records that start in [start, end) of a file (end None:
    to the end of the file), counting the double quotes passing through it when
    `count_quotes`.

    A record starts at byte 0 or just after a newline. Whether that newline was inside a
    quoted CSV value cannot be known here; the quote count lets the CSV reader check
    afterwards. (A JSON Lines record cannot hold a raw newline: its reader counts none.)
    Attributes ``first`` and ``next``: where this range's records start, and where the
    next range's do (None until the end is reached); ``hex``: whether the bytes read so far
    hold "0x" or "0X" (a hex literal, which pyarrow's integer parser would take), looked
    for only when `watch_hex`. `keep_bom` (for pyarrow): a range after the first whose
    first value starts with U+FEFF starts at the newline before it (_BOM).
    """

    def __init__(self, raw, start, end, watch_hex=False, count_quotes=False, path="the file", keep_bom=False):
        self._raw = raw
        self._path = path
        self._count_quotes = count_quotes
        self._end = end
        self._buffer = b""
        self._done = False
        self.closed = False
        self.quotes = 0
        self.hex = False
        self._watch_hex = watch_hex
        self._last = b""  # the last byte read: "0" then "x" may straddle two reads
        self.first = 0
        self.next = None
        if start > 0:
            raw.seek(start - 1)
            self.first = start - 1 + self._skip_through_newline()
            if self._done:  # no newline to the end of the file: first is its size
                self._at_end(self.first)
            elif end is not None and self.first >= end:
                self._done = True  # a record longer than the range: the previous range's
        self.owns_nothing = self._done
        self.position = self.first
        if keep_bom and start > 0 and not self._done:  # `keep_bom`: for pyarrow (_BOM)
            while len(self._buffer) < len(_BOM) and (more := raw.read(1 << 16)):
                self._buffer += more
            if self._buffer.startswith(_BOM):
                self._buffer, self.position = b"\n" + self._buffer, self.first - 1

    def _skip_through_newline(self):
        skipped = 0
        while chunk := self._raw.read(1 << 16):
            newline = chunk.find(b"\n")
            if newline >= 0:
                self._buffer = chunk[newline + 1 :]
                return skipped + newline + 1
            skipped += len(chunk)
        self._done = True
        return skipped

    def read(self, size=-1):
        if self._done:
            return b""
        size = 1 << 20 if size is None or size < 0 else size
        if self._buffer:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        else:
            data = self._raw.read(size)
        if not data:
            self._done = True
            self._at_end(self.position)
            return b""
        if self._end is not None and self.position + len(data) >= self._end:
            # Stop after the first newline at or after end - 1: the next record is the
            # next range's.
            newline = data.find(b"\n", max(self._end - 1 - self.position, 0))
            if newline >= 0:
                data = data[: newline + 1]
                self._done = True
                self.next = self.position + len(data)
        self.position += len(data)
        if self._count_quotes:
            self.quotes += quotes_in(data)  # pyarrow calls read() from its own thread
        if self._watch_hex and not self.hex:
            self.hex = holds_hex(data, self._last)
            self._last = data[-1:]
        return data

    def _at_end(self, size):
        """Ranges end within the file as it was when they were cut: an end of the file
        before the range's means the file shrank since."""
        if self._end is not None and size < self._end:
            raise shrunk(self._path, size)

    def readable(self):
        return True

    def seekable(self):
        return False

    @property
    def source(self):
        """What pyarrow reads: the stream itself."""
        return self

