"""ReadCsv: sharded CSV files as a stream of typed pyarrow RecordBatches."""

import collections
import csv
import functools
import logging
import re

import apache_beam as beam
import pyarrow as pa
import pyarrow.csv as pa_csv

from kdp_beam import bad_records
from kdp_beam.bad_records import BadRecord
from kdp_beam.columns import (
    ARROW_TYPES,
    NULL_VALUES,
    UnreadableValue,
    cast_column,
    element_kind,
    kinds_read,
    list_separator,
    number_fix,
    number_from_text,
    reads_as_number,
)
from kdp_beam.errors import InputDataError
from kdp_beam.io.files import READ_METRICS, ProgressLog, emitted, open_input
from kdp_beam.io.ranges import ReadByteRanges, RecordRange, open_range
from kdp_beam.io.read_ahead import read_ahead

SKIP_BATCH_ROWS = 65536  # rows per batch when reading record by record (skip mode)

_TYPE_NAMES = {"float": "a float", "integer": "an integer"}
_LOG = logging.getLogger(__name__)

# Python's csv module refuses fields over 128 KiB, which pyarrow reads: the record-by-
# record path must read what the fast path reads. The limit is process-wide (csv has no
# per-reader one), so it is raised once, here, in every process that reads CSV.
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))


class ReadCsv(ReadByteRanges):
    """Reads CSV files with a header row into RecordBatches of the declared columns.

    Columns are typed from the declarations (float64, int64 or string), never guessed;
    undeclared columns are skipped. The spec's label and fold key are read beside the
    features (kdp_beam.columns.read_kinds): a class label's field as its text (an empty
    field is missing, every other field a class, "NaN" and "NA" included), a regression
    label's as a float field. Files are matched with Beam's FileSystems (local, gs://,
    s3://; a glob with no directory, ``*.csv``, is relative to the current directory) and
    read as a stream of batches of about ``block_size`` bytes, so memory does not grow with
    file size. Compressed files (.gz, .bz2, .zst, .deflate, .xz, by extension) are
    decompressed and read whole; one cut short (truncated) or damaged fails the run in both
    bad-record modes, naming the file (kdp_beam.io.files.open_input). A pipe, a process
    substitution ``<(...)`` or /dev/stdin is refused: write the data to a file.

    An uncompressed file larger than ``split_size`` bytes is read in parallel as byte
    ranges aligned to record boundaries: each range owns the records that start in it (0
    disables splitting). Quoted values may contain newlines: each range counts its quotes,
    and an odd count means a range boundary fell inside such a value (or a quote is
    unterminated), which fails the run with an error saying which, never a wrong row.
    Fields of any length are read (over Python csv's 128 KiB and pyarrow's block size).

    The header: a UTF-8 byte order mark is dropped; a declared column it lacks, or names
    twice (which one is meant cannot be known), fails the run; an undeclared column named
    twice is harmless (it is not read). A file with a header and no rows (with or without a
    line end after it) adds no rows, with a warning, as an empty file does.

    Numbers follow kdp_beam.numbers' rule (no hex, no "+" on integers, no "1_000"), with
    spaces and tabs around them trimmed. Empty fields and NULL_VALUES are null in numeric
    columns; in string columns an empty field is missing (kdp_beam treats "" as null) and
    every other field is a token.

    ``dictionaries``: string columns to give dictionary-encoded (pyarrow's DictionaryArray
    of string, each batch with its own dictionary), for the analysis: see
    kdp_beam.analyzers.dataset.dictionary_features. The record-by-record path of skip
    mode gives them as plain strings.

    A multivalent feature's field is split on its separator (kdp_beam.columns.cast_list:
    an empty field is a row with no values, an empty value a missing one, string values
    not trimmed); each value of a number field is read as a number field is.

    ``on_bad_record="fail"`` (default) raises InputDataError naming the file, row
    (1-based, header excluded), line and column for a wrong field count, an unparseable
    number (a multivalent field's value included) or bad UTF-8. ``"skip"`` emits a
    kdp_beam.bad_records.BadRecord for each such record instead, on the ``"bad_records"`` output (a Reader's outputs, kdp_beam.io.files:
    ``{"batches": RecordBatches, "bad_records": BadRecords}``), and reads on: the fast path
    runs until the first bad record, then that range is re-read record by record after the
    rows already emitted. An unterminated quote, or a declared column missing from the
    header, fails in both modes: no record boundary after it can be trusted / the file has
    no such column.
    """

    def __init__(self, *args, dictionaries=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.dictionaries = frozenset(dictionaries)

    def _range_reader(self):
        return _ReadCsvRange(self.spec, self.block_size, self.on_bad_record, self.columns, self.dictionaries)


class _ReadCsvRange(beam.DoFn):
    def __init__(self, spec, block_size, on_bad_record="fail", columns=None, dictionaries=frozenset()):
        self._kinds = kinds_read(spec, columns)
        self._block_size = block_size
        self._skip = on_bad_record == "skip"
        self._dictionaries = {name for name in dictionaries if self._kinds.get(name) == "string"}

    def process(self, path_range):
        path, start, end = path_range
        header, has_rows = _read_header(path)
        if header is None:  # empty file: no header, no rows
            _LOG.warning("kdp_beam: %s is empty; it adds no rows", path)
        else:
            check_header(path, header, self._kinds)
            if has_rows:
                yield from self._read_range(path, header, start, end)
            elif start == 0:
                # pyarrow refuses a lone header with no line end, takes one with it.
                _LOG.warning("kdp_beam: %s has a header and no rows; it adds no rows", path)
        if start == 0:
            READ_METRICS.files.inc()

    def _read_range(self, path, header, start, end):
        progress = ProgressLog(path, None if end is None else (start, end))
        reading = _ArrowReading(path, header, start, end, self._kinds, self._block_size, self._dictionaries)
        try:
            for batch in reading.batches():
                yield progress.add(batch)
        except (pa.ArrowInvalid, UnicodeDecodeError, UnreadableValue) as e:
            stream = reading.stream
            problem = _split_problem(path, stream.first) or _split_problem(path, stream.next)
            if problem or not self._skip:
                raise InputDataError(problem or locate_bad_record(path, header, self._kinds, e)) from None
            # Skip mode: this range again, record by record, after the rows emitted.
            records = _records_skipping_bad(path, header, start, end, progress.rows, self._kinds)
            yield from emitted(records, progress)
            progress.done()
            return
        _check_quotes(path, reading.stream, end)
        progress.done()


class _ArrowReading:
    """pyarrow's reading of one range of a CSV file, as batches of the declared columns.

    Two things make it read the range again, from the row after the last one emitted:
    - pyarrow's integer parser also takes hex ("0x10"; "0xFFFFFFFFFFFFFFFF" as -1), which
      kdp_beam.numbers' rule refuses. While the bytes read hold no "0x" or "0X"
      (the range's ``hex``), no value pyarrow parsed can be hex: the usual case costs a byte
      search. Once they do (a hash in a string column, say), integer columns are read as
      text, then checked and cast by the rule (vectorised).
    - pyarrow refuses a record spread over more than two blocks ("straddling object"):
      a field of many MiB. Blocks four times as large are read then.
    ``stream``: the range being read (kdp_beam.io.ranges.open_range), for its quote count
    and record bounds.
    Multivalent features' fields are read as text, then split and cast (cast_column, which
    raises UnreadableValue for a value that is not a number); the label's and fold key's
    text is cast too (its empty fields missing). The string columns of `dictionaries` come
    dictionary-encoded, each batch with its own dictionary.
    """

    def __init__(self, path, header, start, end, kinds, block_size, dictionaries=frozenset()):
        self._path, self._header, self._start, self._end = path, header, start, end
        self._kinds, self._block_size = kinds, block_size
        self._types = {
            name: _DICTIONARY if name in dictionaries else ARROW_TYPES[kind if element_kind(kind) is None else "string"]
            for name, kind in kinds.items()
        }
        self._integers = [name for name, kind in kinds.items() if kind == "integer"]
        # Read as text by pyarrow, then cast: lists split, the label's empty fields null.
        self._cast = [name for name, kind in kinds.items() if element_kind(kind) is not None or kind == "label"]
        self._as_text = {name: pa.string() if name in self._integers else t for name, t in self._types.items()}
        self.stream = None

    def batches(self):
        rows_done, types, block_size = 0, self._types, self._block_size
        while True:
            watch_hex = types is self._types and bool(self._integers)
            with open_range(self._path, self._start, self._end, watch_hex, count_quotes=True) as self.stream:
                if self.stream.owns_nothing:
                    return  # every record of these bytes started in an earlier range
                skip = rows_done
                # pyarrow parses the first block while opening: errors come from there too.
                parse = functools.partial(_open_csv, self.stream.source, self._header, self._start > 0, types, block_size)
                try:
                    with read_ahead(parse) as parsed:
                        for batch in parsed:
                            # The bytes read so far, this batch's among them, hold no hex.
                            if self.stream.hex:
                                types = self._as_text  # this batch may hold hex: read it as text
                                break
                            batch, skip = batch.slice(min(skip, batch.num_rows)), max(skip - batch.num_rows, 0)
                            if types is self._as_text or self._cast:
                                batch = self._checked(batch, types is self._as_text)
                            rows_done += batch.num_rows
                            if batch.num_rows:
                                yield batch
                        else:
                            return
                except pa.ArrowInvalid as e:
                    if "straddling object" not in str(e) or block_size >= _MAX_BLOCK_SIZE:
                        raise
                    block_size *= 4

    def _checked(self, batch, integers_as_text):
        """The batch with its list and label columns cast, and its integer columns (when
        read as text) cast by the number rule."""
        columns = []
        for name, kind in self._kinds.items():
            column = batch.column(name)
            if name in self._cast:
                column = cast_column(column, kind, name, self._path)
            elif integers_as_text and name in self._integers:
                column = number_from_text(column, pa.int64())
            columns.append(column)
        return pa.RecordBatch.from_arrays(columns, names=list(self._kinds))


_MAX_BLOCK_SIZE = 1 << 30  # pyarrow's blocks are at most 2 GiB
# pyarrow builds the dictionary while it converts the text (the same UTF-8 check, empty
# fields kept as ""): the analysis then counts indices, not each value's hash.
_DICTIONARY = pa.dictionary(pa.int32(), pa.string())


def _check_quotes(path, stream, end):
    """pyarrow, like the record path's lenient reading, takes an unterminated quote as
    running to the end of the data. An odd quote count in the range is its only trace, or
    a range boundary inside a quoted value, or a stray quote inside a field (which is
    fine): find which, and raise for the first two, whatever the bad-record mode."""
    if stream.quotes % 2 == 0:
        return
    if end is not None:
        problem = _split_problem(path, stream.first) or _split_problem(path, stream.next)
        if problem is not None:
            raise InputDataError(problem)
    with open_input(path) as data:  # the strict parser finds malformed quoting
        lines = _PositionedLines(data)
        reader = csv.reader(lines, strict=True)
        while _next_record(reader, path, lines.position) is not None:
            pass


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
    UTF-8 since ``bad_utf8`` was last reset (then decoded with surrogateescape: each bad
    byte a lone surrogate, found per field by _NOT_UTF8)."""

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
                yield line.decode("utf-8", errors="surrogateescape")


_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # a byte surrogateescape could not decode


def _shown(record):
    """A record's fields with their bad bytes as \\xNN, for people and JSON."""
    return [f.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") for f in record]


def _records_skipping_bad(path, header, start, end, skip_rows, kinds, stop_at_bad=False):
    """The range's records after the first `skip_rows` data rows, parsed one by one with
    Python's csv module: RecordBatches of the good ones, a BadRecord for each bad one
    (wrong field count, unparseable number, bad UTF-8), in file order. `kinds`: {name:
    kind} of the columns read (kdp_beam.columns.read_kinds).

    Quoting is as lenient as pyarrow's (`"ab"c` is `abc`), and an unterminated quote is
    caught by the range's quote count, as on the fast path. `stop_at_bad`: only the first
    BadRecord (to name it in an error)."""
    numeric = {
        name: (header.index(name), kind) for name, kind in kinds.items() if (element_kind(kind) or kind) in _TYPE_NAMES
    }
    indices = [header.index(name) for name in kinds]
    declared = dict(zip(kinds, indices))
    with open_input(path) as raw:
        stream = RecordRange(raw, start, end, count_quotes=True, path=path)
        lines = _PositionedLines(stream, stream.first)
        reader = csv.reader(lines)
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
            problem = _record_problem(record, header, numeric, declared if lines.bad_utf8 else {})
            if problem is not None:
                reason, detail, column = problem
                yield BadRecord(path, reason, detail, _shown(record), column=column, **place)
                if stop_at_bad:
                    return
                continue
            if stop_at_bad:
                continue  # only looking for the first bad record
            good.append([record[i] for i in indices])
            if len(good) >= SKIP_BATCH_ROWS:
                yield _typed_batch(good, kinds)
                good = []
        _check_quotes(path, stream, end)
        if good:
            yield _typed_batch(good, kinds)


def _next_record(reader, path, offset):
    """The csv reader's next record (None at the end), or a clear error for malformed CSV."""
    try:
        return next(reader, None)
    except csv.Error as e:
        raise InputDataError(
            f"{path}: byte {offset}: malformed CSV ({e}), e.g. an unterminated quote or a stray "
            "one. This cannot be skipped: no record boundary after it can be trusted."
        ) from None


def _record_problem(record, header, numeric, not_utf8):
    """(reason, detail, column) for a record the analysis cannot use, else None.
    `not_utf8`: {name: index} of the declared columns to look for bytes that are not UTF-8
    in (those of a line that had some; an undeclared column's are not read, as pyarrow
    does not read them)."""
    if len(record) != len(header):
        detail = f"expected {len(header)} fields as in the header, found {len(record)}"
        return bad_records.WRONG_FIELD_COUNT, detail, None
    for name, index in not_utf8.items():
        if _NOT_UTF8.search(record[index]):
            return bad_records.BAD_UTF8, f"column {name!r}: not valid UTF-8", name
    for name, (index, kind) in numeric.items():
        field, element = record[index], element_kind(kind)
        if element is None:
            if not reads_as_number(field, ARROW_TYPES[kind]):
                detail = f"column {name!r}: cannot read {field!r:.100} as {_TYPE_NAMES[kind]}"
                return bad_records.UNPARSEABLE_NUMBER, detail, name
            continue
        separator = list_separator(kind)
        for value in field.split(separator) if field else ():
            if not reads_as_number(value, ARROW_TYPES[element]):
                detail = (
                    f"column {name!r}: cannot read {value!r:.100} (a value of {field!r:.100} split on "
                    f"{separator!r}) as {_TYPE_NAMES[element]}"
                )
                return bad_records.UNPARSEABLE_NUMBER, detail, name
    return None


def _typed_batch(rows, kinds):
    """A RecordBatch of good rows (each number passed reads_as_number), typed as
    declared, with the values the fast path would give."""
    columns = {}
    for i, (name, kind) in enumerate(kinds.items()):
        text = pa.array([r[i] for r in rows], pa.string())
        if kind in _TYPE_NAMES:
            columns[name] = number_from_text(text, ARROW_TYPES[kind])
        else:  # lists split, the label's empty fields null; other text as it is
            columns[name] = cast_column(text, kind, name, "")
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
    with open_input(path) as stream:
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
    return _read_header(path)[0]


def _read_header(path):
    """(the header row's field names or None for an empty file, whether a record that is
    not a blank line follows it)."""
    with open_input(path) as stream:
        # Bad bytes are decoded with escapes: they are the data's problem, reported later.
        reader = csv.reader(_PositionedLines(stream), strict=True)
        try:
            header = next(reader, None)
        except csv.Error as e:
            raise InputDataError(
                f"{path}: cannot read the CSV header ({e}). Quotes must enclose whole field "
                "names, and the first line must be the header."
            ) from None
        try:
            has_rows = header is not None and any(reader)
        except csv.Error:
            has_rows = True  # a malformed record: reported with its row by the reading
    return header, has_rows


def check_header(path, header, kinds):
    """Raises InputDataError for a declared column the header lacks, or names more than
    once (which of the columns is meant cannot be known). An undeclared column named more
    than once is harmless: it is not read."""
    missing = [name for name in kinds if name not in header]
    if missing:
        delimiter = next((d for d in (";", "\t") if len(header) == 1 and d in header[0]), None)
        seems = (
            f" The file seems to use {'a tab' if delimiter == chr(9) else repr(delimiter)} as its "
            "delimiter: kdp_beam reads comma-separated files; convert it."
            if delimiter
            else ""
        )
        raise InputDataError(
            f"{path}: declared column(s) {missing} are not in the CSV header "
            f"{header}. Fix the header or the declarations.{seems}"
        )
    counts = collections.Counter(header)
    for name in kinds:
        if counts[name] > 1:
            positions = [i + 1 for i, field in enumerate(header) if field == name]
            raise InputDataError(
                f"{path}: the CSV header names the declared column {name!r} {counts[name]} "
                f"times (columns {positions}), so which one to read cannot be known. "
                "Rename or remove the others in the header."
            )


def locate_bad_record(path, header, kinds, arrow_error):
    """A message naming the file, row, line and column of the first bad record.

    Runs only after pyarrow has failed (its errors lack row numbers): re-reads the file
    record by record with Python's csv module until it finds the first record it could not
    take; pyarrow's own message when there is none.
    """
    for element in _records_skipping_bad(path, header, 0, None, 0, kinds, stop_at_bad=True):
        if isinstance(element, BadRecord):
            where = f"{path}: row {element.row} (line {element.line})"
            if element.reason == bad_records.BAD_UTF8:
                return (
                    f"{where}, {element.detail}. kdp_beam reads UTF-8: re-encode the file, e.g. "
                    "iconv -f cp1252 -t utf-8 (for Windows-1252)"
                )
            if element.reason == bad_records.UNPARSEABLE_NUMBER:
                return f"{where}, {element.detail}. Fix the value, or {number_fix(kinds.get(element.column))}."
            return f"{where}: {element.detail}: {element.record!r:.200}"
    return f"{path}: cannot be read as CSV: {arrow_error}"
