"""ReadCsv: sharded CSV files as a stream of typed pyarrow RecordBatches."""

import csv
import io
import logging
import re

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from apache_beam.io.filesystems import FileSystems

from kdp_beam import bad_records
from kdp_beam.bad_records import BadRecord
from kdp_beam.columns import column_types
from kdp_beam.errors import InputDataError
from kdp_beam.io.files import READ_METRICS, ProgressLog
from kdp_beam.io.ranges import ReadByteRanges, RecordRange

# Fields read as null (missing) in numeric columns. "nan"/"NaN" are not among them: a
# float column reads them as NaN, which the statistics count apart from nulls.
NULL_VALUES = ["", "NA", "N/A", "n/a", "NULL", "null", "#N/A"]
SKIP_BATCH_ROWS = 65536  # rows per batch when reading record by record (skip mode)

_TYPE_NAMES = {pa.float64(): "a float", pa.int64(): "an integer"}
_LOG = logging.getLogger(__name__)


class ReadCsv(ReadByteRanges):
    """Reads CSV files with a header row into RecordBatches of the declared columns.

    Columns are typed from the declarations (float64, int64 or string), never guessed;
    undeclared columns are skipped. Files are matched with Beam's FileSystems (local, gs://,
    s3://; .gz/.bz2 decompressed by extension) and read as a stream of batches of about
    ``block_size`` bytes, so memory does not grow with file size.

    An uncompressed file larger than ``split_size`` bytes is read in parallel as byte
    ranges aligned to record boundaries: each range owns the records that start in it (0
    disables splitting). Quoted values may contain newlines: each range counts its quotes,
    and an odd count means a range boundary fell inside such a value (or a quote is
    unterminated), which fails the run with an error saying which, never a wrong row.

    Empty fields and NULL_VALUES are null in numeric columns; in string columns an empty
    field is missing (kdp_beam treats "" as null) and every other field is a token.

    ``on_bad_record="fail"`` (default) raises InputDataError naming the file, row
    (1-based, header excluded), line and column for a wrong field count, an unparseable
    number or bad UTF-8. ``"skip"`` emits a kdp_beam.bad_records.BadRecord for each such
    record instead, in the same PCollection, and reads on: the fast path runs until the
    first bad record, then that range is re-read record by record after the rows already
    emitted. An unterminated quote, or a declared column missing from the header, fails in
    both modes: no record boundary after it can be trusted / the file has no such column.
    """

    def _range_reader(self):
        return _ReadCsvRange(self.spec, self.block_size, self.on_bad_record)


class _ReadCsvRange(beam.DoFn):
    def __init__(self, spec, block_size, on_bad_record="fail"):
        self._types = column_types(spec)
        self._block_size = block_size
        self._skip = on_bad_record == "skip"

    def process(self, path_range):
        path, start, end = path_range
        header = read_header(path)
        if header is None:  # empty file: no header, no rows
            _LOG.warning("kdp_beam: %s is empty; it adds no rows", path)
            READ_METRICS.files.inc()
        else:
            missing = [name for name in self._types if name not in header]
            if missing:
                raise InputDataError(
                    f"{path}: declared column(s) {missing} are not in the CSV header "
                    f"{header}. Fix the header or the declarations."
                )
            yield from self._read_range(path, header, start, end)
            if start == 0:
                READ_METRICS.files.inc()

    def _read_range(self, path, header, start, end):
        progress = ProgressLog(path if end is None else f"{path} (bytes {start}-{end})")
        with FileSystems.open(path) as raw:
            stream = RecordRange(raw, start, end)
            if stream.owns_nothing:
                return  # every record of these bytes started in an earlier range
            rows_done = 0
            try:
                # pyarrow parses the first block while opening: errors come from here too.
                for batch in _open_csv(stream, header, start > 0, self._types, self._block_size):
                    progress.add(batch)
                    rows_done += batch.num_rows
                    yield batch
            except (pa.ArrowInvalid, UnicodeDecodeError) as e:
                problem = _split_problem(path, stream.first) or _split_problem(path, stream.next)
                if problem or not self._skip:
                    raise InputDataError(
                        problem or locate_bad_record(path, header, self._types, e)
                    ) from None
                # Skip mode: this range again, record by record, after the rows emitted.
                for element in _records_skipping_bad(path, header, start, end, rows_done, self._types):
                    if not isinstance(element, BadRecord):
                        progress.add(element)
                    yield element
                progress.done()
                return
        _check_quotes(path, header, self._types, stream, end)
        progress.done()


def _check_quotes(path, header, types, stream, end):
    """pyarrow, like the record path's lenient reading, takes an unterminated quote as
    running to the end of the data. An odd quote count in the range is its only trace, or
    a range boundary inside a quoted value, or a stray quote inside a field (which is
    fine): find which, and raise for the first two."""
    if stream.quotes % 2 == 0:
        return
    problem = locate_bad_record(path, header, types, None)
    if problem is None and end is not None:
        problem = _split_problem(path, stream.first) or _split_problem(path, stream.next)
    if problem is not None:
        raise InputDataError(problem)


_LINE_END = re.compile(rb"\r\n|\r|\n")


def _byte_lines(stream):
    """The lines of a byte stream that has only read(), each with its line end: \\n,
    \\r\\n or a lone \\r, as Python's csv module (newline="") and pyarrow take them."""
    pending = b""
    while chunk := stream.read(1 << 20):
        pending += chunk
        start = 0
        for end in _LINE_END.finditer(pending):
            if end.end() == len(pending) and pending.endswith(b"\r"):
                break  # its \n may start the next chunk
            yield pending[start : end.end()]
            start = end.end()
        pending = pending[start:]
    if pending:
        yield pending


class _PositionedLines:
    """The decoded lines of a byte stream, for Python's csv module, tracking the byte
    position after the last line read, how many lines were read, and whether one was not
    UTF-8 since ``bad_utf8`` was last reset (then decoded with \\xNN escapes)."""

    def __init__(self, stream, position=0):
        self.position = position
        self.line_number = 0
        self.bad_utf8 = False
        self._lines = _byte_lines(stream)
        self._at_file_start = position == 0

    def __iter__(self):
        for line in self._lines:
            encoding = "utf-8-sig" if self._at_file_start and self.line_number == 0 else "utf-8"
            self.position += len(line)
            self.line_number += 1
            try:
                yield line.decode(encoding)
            except UnicodeDecodeError:
                self.bad_utf8 = True
                yield line.decode("utf-8", errors="backslashreplace")


def _records_skipping_bad(path, header, start, end, skip_rows, types, stop_at_bad=False, strict=False):
    """The range's records after the first `skip_rows` data rows, parsed one by one with
    Python's csv module: RecordBatches of the good ones, a BadRecord for each bad one
    (wrong field count, unparseable number, bad UTF-8), in file order.

    Quoting is as lenient as pyarrow's (`"ab"c` is `abc`), and an unterminated quote is
    caught by the range's quote count, as on the fast path; `strict` refuses malformed
    quoting instead (to find what an odd quote count means). `stop_at_bad`: only the first
    BadRecord (to name it in an error)."""
    numeric = {name: (header.index(name), t) for name, t in types.items() if t != pa.string()}
    indices = [header.index(name) for name in types]
    with FileSystems.open(path) as raw:
        stream = RecordRange(raw, start, end)
        lines = _PositionedLines(stream, stream.first)
        reader = csv.reader(lines, strict=strict)
        if start == 0:
            _next_record(reader, path, 0)  # the header
        row, good = 0, []
        while True:
            record_offset, record_line, lines.bad_utf8 = lines.position, lines.line_number + 1, False
            record = _next_record(reader, path, record_offset)
            if record is None:
                break
            if not record:
                continue  # a blank line, as pyarrow skips it
            row += 1
            if row <= skip_rows:
                continue  # already emitted by the fast path
            place = dict(
                byte_offset=record_offset,
                row=row if start == 0 else None,
                line=record_line if start == 0 else None,
            )
            problem = _record_problem(record, header, numeric, lines.bad_utf8)
            if problem is not None:
                reason, detail, column = problem
                yield BadRecord(path, reason, detail, record, column=column, **place)
                if stop_at_bad:
                    return
                continue
            if stop_at_bad:
                continue  # only looking for the first bad record
            good.append([record[i] for i in indices])
            if len(good) >= SKIP_BATCH_ROWS:
                yield _typed_batch(good, types)
                good = []
        if not strict:
            _check_quotes(path, header, types, stream, end)
        if good:
            yield _typed_batch(good, types)


def _next_record(reader, path, offset):
    """The csv reader's next record (None at the end), or a clear error for malformed CSV."""
    try:
        return next(reader, None)
    except csv.Error as e:
        raise InputDataError(
            f"{path}: byte {offset}: malformed CSV ({e}), e.g. an unterminated quote or a stray "
            "one. This cannot be skipped: no record boundary after it can be trusted."
        ) from None


def _record_problem(record, header, numeric, bad_utf8):
    """(reason, detail, column) for a record the analysis cannot use, else None."""
    if bad_utf8:
        return bad_records.BAD_UTF8, "not valid UTF-8", None
    if len(record) != len(header):
        detail = f"expected {len(header)} fields as in the header, found {len(record)}"
        return bad_records.WRONG_FIELD_COUNT, detail, None
    for name, (index, arrow_type) in numeric.items():
        if not _parses(record[index], arrow_type):
            kind = _TYPE_NAMES[arrow_type]
            detail = f"column {name!r}: cannot read {record[index]!r:.100} as {kind}"
            return bad_records.UNPARSEABLE_NUMBER, detail, name
    return None


def _typed_batch(rows, types):
    """A RecordBatch of good rows (each value passed _parses), typed as declared, with the
    values pyarrow's CSV reader would give."""
    columns = {}
    for i, (name, arrow_type) in enumerate(types.items()):
        text = pa.array([r[i] for r in rows], pa.string())
        if arrow_type != pa.string():
            null = pc.is_in(text, value_set=pa.array(NULL_VALUES))
            text = pc.if_else(null, pa.scalar(None, pa.string()), pc.utf8_trim(text, " \t"))
            text = pc.cast(text, arrow_type)
        columns[name] = text
    return pa.RecordBatch.from_arrays(list(columns.values()), names=list(columns))


def _split_problem(path, offset):
    """The message for a range boundary that is not a record boundary (it is inside a
    quoted value with a newline); None when it is one, or for offset 0 / None."""
    if not offset or is_record_start(path, offset):
        return None
    return (
        f"{path}: byte {offset} is inside a quoted value that contains a newline, so the "
        "file cannot be split there. Read such files unsplit (kdp-beam analyze "
        "--split-size 0, ReadCsv(split_size=0)), or write them without newlines "
        "inside values."
    )


def is_record_start(path, offset):
    """Whether a CSV record of the file starts at byte `offset`, by the strict parser from
    the start of the file (run only when a quote count or a parse looked wrong)."""
    with FileSystems.open(path) as stream:
        lines, starts = _PositionedLines(stream), {0}
        try:
            for _ in csv.reader(lines):
                starts.add(lines.position)
                if lines.position >= offset:
                    break
        except csv.Error:
            return False
    return offset in starts


def _open_csv(stream, header, headless, types, block_size):
    """pyarrow's streaming reader; a range after the first has no header row of its own."""
    return pa_csv.open_csv(
        stream,
        read_options=pa_csv.ReadOptions(
            block_size=block_size, column_names=header if headless else None
        ),
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
            return next(csv.reader(text, strict=True), None)
        except csv.Error as e:
            raise InputDataError(
                f"{path}: cannot read the CSV header ({e}). Quotes must enclose whole field "
                "names, and the first line must be the header."
            ) from None


# Numbers pyarrow reads, written the usual way: _parses takes them without asking it.
_PLAIN_NUMBERS = {
    pa.int64(): re.compile(r"-?[0-9]{1,18}"),  # 18 digits cannot overflow
    pa.float64(): re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"),
}


def _parses(value, arrow_type):
    """Whether pyarrow's CSV reader reads `value` as the numeric type, exactly: it trims
    spaces and tabs, then parses as pyarrow's cast does (no "+" on integers, no "1_000",
    no non-ASCII digits, unlike Python; tests/io/test_csv_numbers.py checks the two agree)."""
    if value in NULL_VALUES:
        return True
    value = value.strip(" \t")
    if _PLAIN_NUMBERS[arrow_type].fullmatch(value):
        return True
    try:
        pc.cast(pa.scalar(value), arrow_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def locate_bad_record(path, header, types, arrow_error):
    """A message naming the file, row, line and column of the first bad record.

    Runs only after pyarrow has failed (its errors lack row numbers) or a quote count
    looked wrong (`arrow_error` None): re-reads the file record by record with Python's
    csv module until it finds the first record it could not take; strictly for a quote
    count, to find malformed quoting. Returns None when `arrow_error` is None and the file
    has no bad record.
    """
    strict = arrow_error is None
    for element in _records_skipping_bad(path, header, 0, None, 0, types, stop_at_bad=True, strict=strict):
        if isinstance(element, BadRecord):
            where = f"{path}: row {element.row} (line {element.line})"
            if element.reason == bad_records.BAD_UTF8:
                return f"{path}: line {element.line}: not valid UTF-8"
            if element.reason == bad_records.UNPARSEABLE_NUMBER:
                return (
                    f"{where}, {element.detail}. Fix the value, or declare the column as a "
                    "string feature."
                )
            return f"{where}: {element.detail}: {element.record!r:.200}"
    return None if arrow_error is None else f"{path}: cannot be read as CSV: {arrow_error}"
