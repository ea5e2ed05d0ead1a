"""What every reader shares: its outputs, matching and opening files, read metrics and
progress logs."""

import bz2
import io
import logging
import lzma
import os
import re
import stat
import time
import urllib.parse
import zlib

import apache_beam as beam
import pyarrow as pa
import zstandard
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes, FileMetadata
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.pvalue import PBegin, PCollection, TaggedOutput

from kdp_beam import progress
from kdp_beam.bad_records import BadRecord
from kdp_beam.errors import InputDataError

_LOG = logging.getLogger(__name__)
PROGRESS_INTERVAL_SECONDS = 10.0

# A reader's outputs: the RecordBatches, and (a tagged output) the records it left out.
BATCHES = "batches"
BAD_RECORDS = "bad_records"


class RecordBatchCoder(beam.coders.Coder):
    """Beam's coder of RecordBatches: Arrow's IPC stream format, and a size estimate that
    encodes nothing. Beam samples the size of elements for its metrics by encoding them;
    with its default (pickle) coder that copied most batches, and a slice of a row group
    pickled the whole row group's buffers."""

    def encode(self, batch):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        return sink.getvalue().to_pybytes()

    def decode(self, data):
        with pa.ipc.open_stream(data) as reader:
            return reader.read_next_batch()

    def estimate_size(self, batch):
        return batch.nbytes

    def is_deterministic(self):
        return False

    def to_type_hint(self):
        return pa.RecordBatch


beam.coders.registry.register_coder(pa.RecordBatch, RecordBatchCoder)


class Reader(beam.PTransform):
    """The readers' base: PBegin -> ``{"batches": PCollection[pyarrow.RecordBatch],
    "bad_records": PCollection[BadRecord]}``.

    The batches are the reading DoFn's main output and the BadRecords its tagged output
    (``beam.pvalue.TaggedOutput``): under ``on_bad_record="skip"`` the records it leaves
    out, under ``"fail"`` none (the first one raises). AnalyzeFeatures takes this dict as
    it is (``p | ReadCsv(...) | AnalyzeFeatures(spec)``) and counts the bad records per
    reason; pass ``["batches"]`` to transforms of your own, and write ``["bad_records"]``
    wherever you keep records left out (``BadRecord.to_json_line``).
    """

    def default_type_hints(self):
        # A type per output: Beam's decorators declare the type of a main output only.
        hints = super().default_type_hints()
        return hints.with_output_types(**{BATCHES: pa.RecordBatch, BAD_RECORDS: BadRecord})

    @staticmethod
    def _read(units, label, read_fn):
        """The reader's outputs: `read_fn` (a DoFn emitting RecordBatches, and each BadRecord
        as a TaggedOutput(BAD_RECORDS, ...)) applied to the units of work."""
        read = units | label >> beam.ParDo(read_fn).with_output_types(
            pa.RecordBatch, **{BAD_RECORDS: BadRecord}
        ).with_outputs(BAD_RECORDS, main=BATCHES)
        return {BATCHES: read[BATCHES], BAD_RECORDS: read[BAD_RECORDS]}


def emitted(elements, progress_log):
    """The RecordBatches and BadRecords of a reading, in file order, as its DoFn emits
    them: batches on the main output, counted by `progress_log` (which marks where each was
    read); bad records on the BAD_RECORDS output, counted there too (rows left out before
    a batch still move its rows' numbers)."""
    for element in elements:
        if isinstance(element, BadRecord):
            progress_log.left_out += 1
            yield TaggedOutput(BAD_RECORDS, element)
        else:
            yield progress_log.add(element)


class READ_METRICS:  # noqa: N801 - a namespace of Beam counters
    """Beam counters of what was read: the proof of a single pass, and progress."""

    files = Metrics.counter("kdp_beam", "files_read")
    batches = Metrics.counter("kdp_beam", "batches_read")
    rows = Metrics.counter("kdp_beam", "rows_read")


class MatchInputFiles(beam.PTransform):
    """FileMetadata of every file matching one pattern or a list of patterns, spread over
    workers. A pattern that matches nothing is an error, not an empty dataset."""

    def __init__(self, file_pattern, spread=True):
        super().__init__()
        self.patterns = as_patterns(file_pattern)
        self.spread = spread  # False when the reader spreads finer units (byte ranges)

    def expand(self, pbegin: PBegin) -> PCollection[FileMetadata]:
        matched = (
            pbegin
            | "Patterns" >> beam.Create(self.patterns)
            | "Match" >> fileio.MatchAll(fileio.EmptyMatchTreatment.DISALLOW)
        )
        return matched | "Spread" >> beam.Reshuffle() if self.spread else matched


def as_patterns(file_pattern):
    """The patterns as Beam's FileSystems can match them: a ``file://`` URL is its local
    path (Beam registers no filesystem for the scheme); the path of an existing file with
    glob characters in its name (``d[1].csv``) matches that file, its [ * ? escaped; a local
    glob with no directory (``*.csv``) gets ``./`` (Beam lists no directory for it, so it
    would match nothing)."""
    patterns = [file_pattern] if isinstance(file_pattern, str) else list(file_pattern)
    return [_local_pattern(p) if FileSystems.get_scheme(p) in (None, "file") else p for p in patterns]


def _local_pattern(pattern):
    if FileSystems.get_scheme(pattern) == "file":
        url = urllib.parse.urlsplit(pattern)
        if url.netloc not in ("", "localhost"):
            raise InputDataError(f"{pattern}: a file:// URL names a file on this machine, not on {url.netloc}")
        pattern = urllib.parse.unquote(url.path)
    if _GLOB.search(pattern) and os.path.isfile(pattern):
        pattern = _GLOB.sub(r"[\g<0>]", pattern)  # Beam's patterns escape a character as [c]
    if not os.path.dirname(pattern) and _GLOB.search(pattern):
        pattern = os.path.join(os.curdir, pattern)
    return pattern


_GLOB = re.compile(r"[*?[]")  # what makes Beam's FileSystems list a directory


def matched_paths(file_pattern):
    """The paths of the files each pattern matches, pattern by pattern, as they are found."""
    for pattern in as_patterns(file_pattern):
        for metadata in FileSystems.match([pattern])[0].metadata_list:
            yield metadata.path


def require_matches(file_pattern):
    """Raises InputDataError before a job starts if a pattern matches no file."""
    for pattern in as_patterns(file_pattern):
        if os.path.isdir(pattern):
            example = os.path.join(pattern, "*.csv")
            raise InputDataError(f"{pattern!r} is a directory; pass a file pattern such as {example!r}")
        matched = FileSystems.match([pattern])[0].metadata_list
        if not matched:
            glob = (
                " ([ ] * ? are glob characters: to match one literally, enclose it in brackets, "
                "e.g. [[] for [)"
                if _GLOB.search(pattern)
                else ""
            )
            raise InputDataError(f"no file matches the input pattern {pattern!r}; check the path{glob}")
        for metadata in matched:
            check_regular_file(metadata.path)


def check_regular_file(path):
    """Raises InputDataError for a local path that is not a regular file: a pipe, a process
    substitution ``<(...)``, /dev/stdin. kdp_beam reads a file more than once (its header
    before the job, then in the job, maybe on other machines); a pipe reads once, and
    reading it again gives nothing: silently no rows."""
    if FileSystems.get_scheme(path) is not None:
        return  # remote objects are files
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # gone since it was matched: opening it will say so
    if not stat.S_ISREG(mode):
        raise InputDataError(
            f"{path} is not a regular file (it is a pipe, a process substitution <(...), "
            "/dev/stdin or a device), which can be read only once, and kdp_beam reads its input "
            "more than once. Write the data to a file first (e.g. ... > data.csv) and pass "
            "that file."
        )


class ProgressLog:
    """Counts what one unit of work (a file, a byte range, a row group) yields, logs it every
    PROGRESS_INTERVAL_SECONDS and tells this process's progress sink (kdp_beam.progress:
    the CLI's display, when the readers run in its process)."""

    def __init__(self, path, span=None, row_group=None, rows_before=None):
        """`span`: the (start, end) bytes of a byte range; `row_group`: a Parquet row
        group's index; neither: the whole file. `rows_before`: the file's rows before the
        unit, when known (a range from byte 0 or a whole file: none)."""
        self.path, self.span, self.row_group = path, span, row_group
        self.label = path
        if span is not None:
            self.label = f"{path} (bytes {span[0]}-{span[1]})"
        elif row_group is not None:
            self.label = f"{path} (row group {row_group})"
        if rows_before is None and (span is None or span[0] == 0) and row_group is None:
            rows_before = 0
        self.rows_before = rows_before
        self.rows = 0
        self.left_out = 0  # records left out as bad (emitted counts them)
        self._last = time.monotonic()

    def add(self, batch):
        """Counts the batch; returns it marked with where it was read (provenance)."""
        marked = mark_read(batch, self.path, self.label, self.rows + self.left_out + 1, self.rows_before)
        self.rows += batch.num_rows
        READ_METRICS.batches.inc()
        READ_METRICS.rows.inc(batch.num_rows)
        progress.add_rows(batch.num_rows)
        now = time.monotonic()
        if now - self._last >= PROGRESS_INTERVAL_SECONDS:
            self._last = now
            _LOG.info("kdp_beam: %s: %s rows read so far", self.label, f"{self.rows:,}")
        return marked

    def done(self):
        progress.unit_done(self.path, self.rows, self.span, self.row_group)
        _LOG.info("kdp_beam: %s: done, %s rows", self.label, f"{self.rows:,}")


# A batch's provenance, on its schema's metadata (ProgressLog.add): its file, the unit of
# work it came from, its first row's number in the unit, the file's rows before the unit.
_FILE, _UNIT, _FIRST_ROW, _ROWS_BEFORE = (
    b"kdp_beam.file", b"kdp_beam.unit", b"kdp_beam.first_row", b"kdp_beam.rows_before"
)


def mark_read(batch, file, unit, first_row, rows_before):
    """The batch (zero copy) with its provenance: read from `unit` (a label naming the
    file and the part of it) of `file`, its first row the `first_row`th (1-based) of the
    unit, the file's rows before the unit `rows_before` (None: unknown)."""
    return batch.replace_schema_metadata({
        **(batch.schema.metadata or {}),
        _FILE: file,
        _UNIT: unit,
        _FIRST_ROW: str(first_row),
        _ROWS_BEFORE: "" if rows_before is None else str(rows_before),
    })


def where_read(batch, index, parts=False):
    """Where the batch's row `index` (0-based) was read, for errors: "FILE: row N" (1-based
    data row of the file) when the reader knows the file's rows before the batch, else
    "FILE (bytes A-B): row N of that range"; "row N of a batch" for a batch no reader
    marked. `parts`: (file or None, the file's row or None) instead, for a BadRecord.
    Rows a skip-mode Parquet read left out of the same row group are not counted."""
    meta = batch.schema.metadata or {}
    if _FILE not in meta:
        return (None, None) if parts else f"row {index + 1} of a batch"
    in_unit = int(meta[_FIRST_ROW]) + index
    before = meta[_ROWS_BEFORE].decode()
    file, unit = meta[_FILE].decode(), meta[_UNIT].decode()
    row = int(before) + in_unit if before else None
    if parts:
        return file, row
    return f"{file}: row {row}" if row is not None else f"{unit}: row {in_unit} of that range"


def open_input(path):
    """A binary stream of a file's data, decompressed by its extension (.gz, .bz2, .zst,
    .deflate, .xz, as Beam's FileSystems detect them), for the line-based readers.

    Unlike Beam's own decompressing stream, this one fails clearly: a compressed stream
    that ends before its end-of-stream marker (a file cut short) raises InputDataError
    saying it is truncated, and bytes that do not decompress one saying the file is
    damaged, whatever the bad-record mode: the rows before the cut look fine, and the
    rest are lost. Concatenated streams (gzip members, bzip2 streams, zstd frames) are
    read one after the other, as Beam and the gzip tool read them.
    """
    compression = CompressionTypes.detect_compression_type(path)
    raw = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    if compression == CompressionTypes.UNCOMPRESSED:
        return raw
    return io.BufferedReader(_Decompressed(raw, compression, path), buffer_size=1 << 20)


def _inflate_limited(decompressor, data, limit):
    """zlib, bz2 and lzma: at most `limit` bytes out. (output, input left over, whether
    it needs more input to give more output)."""
    output = decompressor.decompress(data, limit)
    if decompressor.eof:
        return output, b"", False  # what follows is in unused_data (zlib's tail is stale)
    left = getattr(decompressor, "unconsumed_tail", b"")  # zlib hands it back; bz2/lzma keep it
    return output, left, len(output) < limit and not left


def _inflate_all(decompressor, data, limit):
    """zstd's decompressobj has no output limit: it gets small inputs (_ZSTD_READ)."""
    return decompressor.decompress(data), b"", True


# Per compression type: a new decompressor for one stream, and how to feed it.
_DECOMPRESSORS = {
    CompressionTypes.GZIP: (lambda: zlib.decompressobj(zlib.MAX_WBITS | 16), _inflate_limited),
    CompressionTypes.DEFLATE: (zlib.decompressobj, _inflate_limited),
    CompressionTypes.BZIP2: (bz2.BZ2Decompressor, _inflate_limited),
    CompressionTypes.LZMA: (lzma.LZMADecompressor, _inflate_limited),
    # Beam's window limit: a larger one would need too much memory.
    CompressionTypes.ZSTD: (
        lambda: zstandard.ZstdDecompressor(max_window_size=1 << 31).decompressobj(),
        _inflate_all,
    ),
}
_READ = 1 << 16  # compressed bytes read at a time
_ZSTD_READ = 1 << 12  # zstd expands up to ~30,000 times: 4 KiB in, at most ~128 MiB out
_DAMAGED = (zlib.error, OSError, EOFError, lzma.LZMAError, zstandard.ZstdError)


class _Decompressed(io.RawIOBase):
    """The decompressed data of a compressed file object (see open_input)."""

    def __init__(self, raw, compression, path):
        super().__init__()
        self._raw, self._path, self._kind = raw, path, compression
        self._new, self._inflate = _DECOMPRESSORS[compression]
        self._read_size = _ZSTD_READ if compression == CompressionTypes.ZSTD else _READ
        self._decompressor = None  # the current stream's; None between streams
        self._hungry = True  # whether the decompressor needs input to give more output
        self._compressed = b""  # read from the file, not yet given to a decompressor
        self._output = memoryview(b"")
        self._position = 0  # decompressed bytes handed out

    def readable(self):
        return True

    def readinto(self, buffer):
        while not self._output:
            if not self._decompress(len(buffer)):
                return 0
        size = min(len(buffer), len(self._output))
        buffer[:size] = self._output[:size]
        self._output = self._output[size:]
        self._position += size
        return size

    def _decompress(self, limit):
        """Decompresses some more into self._output; False at the end of the file."""
        decompressor = self._decompressor
        if decompressor is not None and decompressor.eof:
            # The end of one stream: what follows it is the next one, or nothing.
            self._compressed = decompressor.unused_data + self._compressed
            decompressor = self._decompressor = None
        if not self._compressed and (decompressor is None or self._hungry):
            self._compressed = self._raw.read(self._read_size)
            if not self._compressed:
                if decompressor is not None:
                    raise self._error("truncated")
                return False  # after the end of a stream (or an empty file)
        if decompressor is None:
            decompressor = self._decompressor = self._new()
        data, self._compressed = self._compressed, b""
        try:
            output, self._compressed, self._hungry = self._inflate(decompressor, data, limit)
        except _DAMAGED as e:
            raise self._error("damaged", e) from None
        self._output = memoryview(output)
        return True

    def _error(self, problem, cause=None):
        where = f"after {self._position:,} bytes of data"
        if problem == "truncated":
            detail = (
                f"the {self._kind} data is truncated: it ends {where}, before the end of its "
                "compressed stream, so its last rows are missing. The file was cut short (an "
                "interrupted copy, download or write)"
            )
        else:
            detail = f"the {self._kind} data is damaged {where} ({cause})"
        return InputDataError(
            f"{self._path}: {detail}. Re-create the file, or leave it out of the input pattern."
        )

    def close(self):
        if not self.closed:
            self._raw.close()
        super().close()
