"""Byte ranges of large files as units of work, for the line-based formats (CSV, JSON
Lines): each range owns the records that start in it."""

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.pvalue import PBegin

from kdp_beam import bad_records
from kdp_beam.io.files import MatchInputFiles, Reader, check_regular_file
from kdp_beam.numbers import holds_hex

DEFAULT_SPLIT_SIZE = 64 << 20  # bytes of an uncompressed file per unit of work
DEFAULT_BLOCK_SIZE = 4 << 20  # bytes of text per RecordBatch
_QUOTE = ord('"')


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
    for only when `watch_hex`.
    """

    def __init__(self, raw, start, end, watch_hex=False, count_quotes=False):
        self._raw = raw
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
            if end is not None and self.first >= end:
                self._done = True  # a record longer than the range: the previous range's
        self.owns_nothing = self._done
        self.position = self.first

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
            # numpy, not bytes.count: 4x faster, and without the GIL, which bytes.count
            # holds for every byte while the analysis thread waits (pyarrow calls read()
            # from its own thread).
            self.quotes += int(np.count_nonzero(np.frombuffer(data, np.uint8) == _QUOTE))
        if self._watch_hex and not self.hex:
            self.hex = holds_hex(data, self._last)
            self._last = data[-1:]
        return data

    def readable(self):
        return True

    def seekable(self):
        return False

