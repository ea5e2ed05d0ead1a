"""ReadCsv: sharded CSV files as a stream of typed pyarrow RecordBatches."""

import codecs
import csv
import io
import logging

import apache_beam as beam
import pyarrow as pa
import pyarrow.csv as pa_csv
from apache_beam.io.filesystems import FileSystems

from kdp_beam.columns import column_types
from kdp_beam.errors import InputDataError
from kdp_beam.io.files import READ_METRICS, MatchInputFiles, ProgressLog

# Fields read as null (missing). "nan"/"NaN" are not among them: a float column reads them
# as NaN, which the statistics count apart from nulls.
NULL_VALUES = ["", "NA", "N/A", "n/a", "NULL", "null", "#N/A"]
DEFAULT_BLOCK_SIZE = 4 << 20  # bytes of CSV text per RecordBatch

_TYPE_NAMES = {pa.float64(): "a float", pa.int64(): "an integer"}
_LOG = logging.getLogger(__name__)


class ReadCsv(beam.PTransform):
    """Reads CSV files with a header row into RecordBatches of the declared columns.

    Columns are typed from the declarations (float64, int64 or string), never guessed;
    undeclared columns are skipped. Files are matched with Beam's FileSystems (local, gs://,
    s3://; .gz/.bz2 decompressed by extension) and read as a stream of batches of about
    ``block_size`` bytes, so memory does not grow with file size.

    Empty fields and NULL_VALUES are null in numeric columns; in string columns every field
    is a token, the empty string included (as a tf.data CSV reader yields it).

    Raises InputDataError naming the file, row (1-based, header excluded), line and column
    for a wrong field count, an unparseable number or a declared column missing from the
    header.
    """

    def __init__(self, file_pattern, spec, block_size=DEFAULT_BLOCK_SIZE):
        super().__init__()
        self.file_pattern = file_pattern
        self.spec = spec
        self.block_size = block_size

    def expand(self, pbegin):
        return (
            pbegin
            | "MatchFiles" >> MatchInputFiles(self.file_pattern)
            | "ReadCsvFile" >> beam.ParDo(_ReadCsvFile(self.spec, self.block_size))
        )


class _ReadCsvFile(beam.DoFn):
    def __init__(self, spec, block_size):
        self._types = column_types(spec)
        self._block_size = block_size

    def process(self, metadata):
        path = metadata.path
        header = read_header(path)
        if header is None:  # empty file: no header, no rows
            _LOG.warning("kdp_beam: %s is empty; it adds no rows", path)
            READ_METRICS.files.inc()
            return
        missing = [name for name in self._types if name not in header]
        if missing:
            raise InputDataError(
                f"{path}: declared column(s) {missing} are not in the CSV header {header}. "
                "Fix the header or the declarations."
            )
        progress = ProgressLog(path)
        with FileSystems.open(path) as raw:
            stream = _QuoteCounter(raw)
            try:
                # pyarrow parses the first block while opening: errors come from here too.
                for batch in _open_csv(stream, self._types, self._block_size):
                    progress.add(batch)
                    yield batch
            except (pa.ArrowInvalid, UnicodeDecodeError) as e:
                raise InputDataError(locate_bad_record(path, header, self._types, e)) from None
        if stream.quotes % 2:
            # pyarrow silently takes an unterminated quote as running to the end of the
            # file. An odd quote count is its only trace (or a stray quote inside a field,
            # which is fine): let the strict parser decide.
            problem = locate_bad_record(path, header, self._types, None)
            if problem is not None:
                raise InputDataError(problem)
        progress.done()
        READ_METRICS.files.inc()


class _QuoteCounter:
    """A read-only stream that counts the double quotes passing through it."""

    def __init__(self, stream):
        self._stream = stream
        self.quotes = 0
        self.closed = False

    def read(self, size=-1):
        data = self._stream.read(size)
        self.quotes += data.count(b'"')
        return data

    def readable(self):
        return True

    def seekable(self):
        return False


def _open_csv(stream, types, block_size):
    return pa_csv.open_csv(
        stream,
        read_options=pa_csv.ReadOptions(block_size=block_size),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types=types,
            include_columns=list(types),
            null_values=NULL_VALUES,
            strings_can_be_null=False,
        ),
    )


def read_header(path):
    """The header row's field names, or None for an empty file."""
    with FileSystems.open(path) as stream:
        # Bad bytes further on are the data's problem, reported with their row later.
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
        try:
            return next(csv.reader(text), None)
        except csv.Error as e:
            raise InputDataError(f"{path}: cannot read the CSV header: {e}") from None


def _first_bad_utf8_line(path):
    """The 1-based line of the first byte that is not UTF-8 (the csv module decodes in
    chunks, so its row count cannot say)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with FileSystems.open(path) as stream:
        while chunk := stream.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as e:
                return line + chunk.count(b"\n", 0, max(e.start, 0))
            line += chunk.count(b"\n")
    return line


def _parses(value, arrow_type):
    if value in NULL_VALUES:
        return True
    try:
        (float if arrow_type == pa.float64() else int)(value)
    except ValueError:
        return False
    return value == value.strip()  # pyarrow, unlike Python, refuses padded numbers


def locate_bad_record(path, header, types, arrow_error):
    """A message naming the file, row, line and column of the first bad record.

    Runs only after pyarrow has failed (its errors lack row numbers): re-reads the file
    with Python's strict csv module until it finds the record pyarrow could not take.
    Returns None when `arrow_error` is None and the file has no bad record.
    """
    numeric = {
        header.index(name): (name, t) for name, t in types.items() if t != pa.string()
    }
    with FileSystems.open(path) as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        reader = csv.reader(text, strict=True)
        row = 0
        try:
            next(reader)
            for row, record in enumerate(reader, start=1):
                where = f"{path}: row {row} (line {reader.line_num})"
                if not record:
                    continue  # blank lines are skipped, as pyarrow does
                if len(record) != len(header):
                    return (
                        f"{where}: expected {len(header)} fields as in the header, "
                        f"found {len(record)}: {record!r:.200}"
                    )
                for index, (name, arrow_type) in numeric.items():
                    if not _parses(record[index], arrow_type):
                        return (
                            f"{where}, column {name!r}: cannot read {record[index]!r:.100} "
                            f"as {_TYPE_NAMES[arrow_type]}. Fix the value, or declare the "
                            "column as a string feature."
                        )
        except UnicodeDecodeError as e:
            return f"{path}: line {_first_bad_utf8_line(path)}: not valid UTF-8 ({e.reason})"
        except csv.Error as e:
            return f"{path}: after row {row}: malformed CSV ({e}), e.g. an unterminated quote"
    return None if arrow_error is None else f"{path}: cannot be read as CSV: {arrow_error}"
