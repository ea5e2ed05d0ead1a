"""ReadJsonLines: JSON Lines files (one object per line) as typed RecordBatches."""

import codecs
import io
import itertools
import json
import logging
import re

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from kdp_beam import bad_records
from kdp_beam.bad_records import BadRecord
from kdp_beam.columns import (
    ARROW_TYPES,
    LabelKind,
    UnreadableValue,
    cast_column,
    element_kind,
    kinds_read,
    label_of_value,
    read_problem,
)
from kdp_beam.errors import InputDataError
from kdp_beam.io.files import READ_METRICS, ProgressLog, emitted, open_input
from kdp_beam.io.ranges import ReadByteRanges, RecordRange
from kdp_beam.io.read_ahead import read_ahead

_LOG = logging.getLogger(__name__)


class ReadJsonLines(ReadByteRanges):
    """Reads JSON Lines files into RecordBatches of the declared columns.

    Typed by the declarations through an explicit schema (float64, int64, string) and the
    one reading rule of kdp_beam.columns (so true / false in a string column are "true" /
    "false", and an error in a numeric one): a key absent from an object, or null, is
    missing; undeclared keys are ignored, whatever they hold. Read as a block of about
    ``block_size`` bytes of whole lines at a time; an uncompressed file larger than
    ``split_size`` bytes is read in parallel as byte ranges, each owning the lines that
    start in it (0 disables splitting). A multivalent feature reads an array, or a string
    split on its separator (kdp_beam.columns.cast_list; null, [] and "" are no values).
    One object per line: a line that is not a JSON object (an object spread over lines,
    or two on one line, included), a declared key given twice, or a value of the wrong
    type (an array where one value is declared, an array inside an array, a string that
    is not a number in a multivalent number feature) raises InputDataError naming the
    file, line and key; under ``on_bad_record="skip"`` it becomes a BadRecord, on the
    ``"bad_records"`` output (a Reader's outputs, kdp_beam.io.files: ``{"batches":
    RecordBatches, "bad_records": BadRecords}``), and reading goes on.

    The spec's label and fold key are read beside the features (kdp_beam.columns.
    read_kinds): a class label's strings, numbers and booleans all as their text (1 and
    1.0 are "1", true is "true"; null, NaN and "" missing); a regression label as a float
    feature is read (a string there is a bad record).
    """

    def _range_reader(self):
        return _ReadJsonRange(self.spec, self.block_size, self.on_bad_record, self.columns)


class _ReadJsonRange(beam.DoFn):
    def __init__(self, spec, block_size, on_bad_record="fail", columns=None):
        self._kinds = kinds_read(spec, columns)
        self._schema = pa.schema([(name, ARROW_TYPES[kind]) for name, kind in self._kinds.items()])
        self._asked = self._schema  # what pyarrow is asked for (see _pyarrow_table)
        # Cast after pyarrow's reading: lists normalised, the label's values as text.
        self._cast = any(element_kind(kind) or kind == "label" for kind in self._kinds.values())
        self._block_size = block_size
        self._skip = on_bad_record == "skip"

    def process(self, path_range):
        path, start, end = path_range
        progress = ProgressLog(path, None if end is None else (start, end))
        with open_input(path) as raw:  # decompresses by extension; a cut file is an error
            stream = RecordRange(raw, start, end, path=path)

            def parse():  # in read_ahead's thread: the blocks' batches and bad records
                for block in _line_blocks(stream, self._block_size, stream.first):
                    yield from self._read_block(path, block)

            with read_ahead(parse) as elements:
                yield from emitted(elements, progress)
        progress.done()
        if start == 0:
            READ_METRICS.files.inc()
        if end is None and progress.rows == 0:
            _LOG.warning("kdp_beam: %s has no good JSON object; it adds no rows", path)

    def _read_block(self, path, block):
        """pyarrow's reading of a block of whole lines when it is one object per line, else
        the line-by-line reading (which names the bad lines)."""
        table = None
        # pyarrow must not see a line that does not start an object: a leading "null"
        # crashes it (pyarrow 25), a later one becomes a row of nulls.
        if block.only_objects:
            try:
                block.data.decode("utf-8")  # pyarrow's JSON parser lets invalid UTF-8 through
                table = self._pyarrow_table(path, block.data)
            except (UnicodeDecodeError, UnreadableValue):  # the line by line reading names it
                pass
        # pyarrow reads any stream of JSON objects: one spread over two lines, or two on
        # one line, would pass unseen. Every line starts with "{" and ends with "}"
        # (only_objects), and a line break inside a JSON text after "}" can only be
        # followed by ",", "]" or "}": so no object spans lines, each line holds at least
        # one, and equal counts mean exactly one each.
        if table is not None and table.num_rows == block.objects:
            yield from table.to_batches()
            return
        for element in _lines_skipping_bad(path, block, self._kinds, self._schema):
            if isinstance(element, BadRecord) and not self._skip:
                raise InputDataError(_describe(element))
            yield element

    def _pyarrow_table(self, path, data):
        """pyarrow's reading of a block, or None when it fails. pyarrow reads a JSON type
        as one Arrow type: a column its error names as holding another type that the one
        rule reads (_asked_instead: true / false in a string feature or list, a string in
        a multivalent one, numbers or booleans in a label) is asked for as that type from
        then on (until a block holds the declared type there), and read by the one rule, as
        the line-by-line reading does. A label's numbers are asked for as int64, then (a
        number that is not one: pyarrow's error does not name the column) as float64, kept
        only when every number is exact in it (below 2^53): the line-by-line reading gives
        an integer's every digit."""
        while True:
            try:
                # pyarrow parses its own blocks in parallel: a few per block of lines.
                table = _arrow_table(data, self._asked, max(len(data) // 4, 1 << 20))
                break
            except pa.ArrowInvalid as e:
                integers = [f.name for f in self._asked if f.type == pa.int64() and self._kinds[f.name] == "label"]
                if integers and str(e).startswith(_NOT_INT64):
                    for name in integers:
                        self._asked = self._asked.set(self._asked.get_field_index(name), pa.field(name, pa.float64()))
                    continue
                changed = _CHANGED.search(str(e))
                name = changed and changed.group(1)
                instead = name in self._kinds and _asked_instead(self._kinds[name], *changed.group(2, 3))
                if not instead or self._asked.field(name).type != self._schema.field(name).type:
                    self._asked = self._schema
                    return None
                index = self._asked.get_field_index(name)
                self._asked = self._asked.set(index, pa.field(name, instead))
        if self._asked is self._schema and not self._cast:
            return table
        if not _exact_labels(table, self._kinds):
            self._asked = self._schema
            return None
        columns = {n: cast_column(table.column(n), k, n, path) for n, k in self._kinds.items()}
        return pa.table(columns)


_NOT_INT64 = "Failed to convert JSON to int64"


def _exact_labels(table, kinds):
    """Whether the label columns read as float64 (asked so by _pyarrow_table) hold only
    numbers exact in float64: an integer from 2^53 on may not be, and its text would lose
    digits."""
    for name, kind in kinds.items():
        column = table.column(name)
        if kind == "label" and column.type == pa.float64():
            largest = pc.max(pc.abs(column.filter(pc.is_finite(column)))).as_py()
            if largest is not None and largest >= 2.0**53:
                return False
    return True


def _arrow_table(data, schema, block_size):
    """Whole lines as one table of the declared columns: pyarrow's reading, in blocks of
    `block_size` bytes (a line longer than that fails). Its parser is iterative: any depth
    of nesting is read or refused with ArrowInvalid, never a crash."""
    table = pa_json.read_json(
        io.BytesIO(data),
        read_options=pa_json.ReadOptions(block_size=block_size),
        parse_options=pa_json.ParseOptions(
            explicit_schema=schema, unexpected_field_behavior="ignore"
        ),
    ).select(schema.names).combine_chunks()
    table.validate(full=True)  # e.g. "\\ud800" (a lone surrogate) is not UTF-8 either
    return table


class _Block:
    """Whole lines of a file: their bytes; the byte offset, line number and row number
    (lines not blank) before the first (relative to the range's start: file numbers only
    when it starts the file); how many lines are not blank, and whether each of them
    starts with "{" and ends with "}" (but for spaces, tabs and a CR)."""

    __slots__ = ("data", "offset", "line", "row", "numbered", "objects", "only_objects")

    def __init__(self, data, offset, line, row, numbered):
        self.data, self.offset, self.line, self.row = data, offset, line, row
        self.numbered = numbered
        lines = _braced_lines(data)
        if lines is not None:
            self.objects, self.only_objects = lines, True  # the usual case, at numpy speed
        else:
            self.objects = sum(1 for _ in _FILLED_LINE.finditer(data))
            self.only_objects = not _OTHER_LINE.search(data) and not _UNCLOSED_LINE.search(data)


def _braced_lines(data):
    """The number of lines of `data` (bytes, not empty) when each starts with "{" and ends
    with "}" (or "}" and a CR), else None."""
    text = np.frombuffer(data, np.uint8)
    breaks = np.flatnonzero(text == ord("\n"))
    firsts, lasts = np.append(0, breaks + 1), np.append(breaks - 1, text.size - 1)
    if data.endswith(b"\n"):
        firsts, lasts = firsts[:-1], lasts[:-1]
    lasts = lasts - (text[lasts] == ord("\r"))
    if (text[firsts] == ord("{")).all() and (text[lasts] == ord("}")).all():
        return firsts.size
    return None


def _line_blocks(stream, block_size, offset):
    """A stream of whole lines starting at byte `offset` of its file as _Blocks, about
    `block_size` bytes each (a longer line is a block of its own), without a byte order
    mark at the start of the file."""
    pending, line, row, numbered = [], 1, 0, offset == 0
    first = stream.read(max(block_size, len(codecs.BOM_UTF8)))
    if offset == 0 and first.startswith(codecs.BOM_UTF8):
        first, offset = first[len(codecs.BOM_UTF8) :], len(codecs.BOM_UTF8)
    rest = iter(lambda: stream.read(block_size), b"")
    for chunk in itertools.chain([first] if first else [], rest, [b""]):  # b"": the end
        cut = chunk.rfind(b"\n") + 1
        if chunk and not cut:
            pending.append(chunk)  # no line ends in this chunk
            continue
        data = b"".join(pending + [chunk[:cut]])
        pending = [chunk[cut:]]
        if data:
            block = _Block(data, offset, line, row, numbered)
            yield block
            offset, line, row = offset + len(data), line + data.count(b"\n"), row + block.objects


# pyarrow's error for a column of its schema (or the values of a list column: "/[]") that
# holds another JSON type.
_CHANGED = re.compile(r"Column\(/(.*?)(/\[\])?\) changed from \w+ to (\w+)")


def _asked_instead(kind, in_list, found):
    """The Arrow type to ask pyarrow for a column of `kind` whose values (`in_list`: the
    values of its lists) pyarrow found to be JSON's `found` type, when the one rule reads
    those; else None (the block is read line by line)."""
    if kind == "label" and not in_list:
        return {"boolean": pa.bool_(), "number": pa.int64()}.get(found)
    if found == "boolean" and (kind == "string" and not in_list or kind == "list<string>" and in_list):
        return pa.list_(pa.bool_()) if in_list else pa.bool_()
    if found == "string" and element_kind(kind) and not in_list:
        return pa.string()  # split on the separator
    return None

# A line with something other than white space on it; one that starts with no "{"; one
# that ends (before white space) with no "}".
_FILLED_LINE = re.compile(rb"^[ \t\r]*[^ \t\r\n]", re.MULTILINE)
_OTHER_LINE = re.compile(rb"^[ \t\r]*[^{ \t\r\n]", re.MULTILINE)
_UNCLOSED_LINE = re.compile(rb"[^} \t\r\n][ \t\r]*$", re.MULTILINE)


def _lines_skipping_bad(path, block, kinds, schema, batch_rows=65536):
    """The block's objects read line by line: RecordBatches of the good ones and a
    BadRecord for each line that is not a JSON object of the declared kinds, in file
    order."""
    good, offset, row = [], block.offset, block.row
    for line_number, raw in enumerate(block.data.split(b"\n"), start=block.line):
        line_offset, offset = offset, offset + len(raw) + 1
        if not raw.strip(b" \t\r"):  # JSON's white space
            continue
        row += 1
        record, problem = _parse_line(raw, kinds, schema)
        if problem is not None:
            reason, detail, column = problem
            text = raw.decode("utf-8", errors="backslashreplace").rstrip("\r\n")
            numbers = dict(row=row, line=line_number) if block.numbered else {}
            place = dict(byte_offset=line_offset, **numbers)
            yield BadRecord(path, reason, detail, text, column=column, **place)
            continue
        good.append(record)
        if len(good) >= batch_rows:
            yield _record_batch(good, kinds, schema)
            good = []
    if good:
        yield _record_batch(good, kinds, schema)


def _record_batch(records, kinds, schema):
    """The good records' values as a RecordBatch, lists normalised (cast_column)."""
    batch = pa.RecordBatch.from_pylist(records, schema=schema)
    if not any(element_kind(kind) for kind in kinds.values()):
        return batch
    return pa.RecordBatch.from_arrays(
        [cast_column(batch.column(name), kind, name, "") for name, kind in kinds.items()], names=list(kinds)
    )


def _parse_line(raw, kinds, schema):
    """(the declared values, None) for a usable line, else (None, (reason, detail, key))."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, (bad_records.BAD_UTF8, "not valid UTF-8", None)
    try:
        record = _DECODER.decode(text)  # NaN, Infinity: floats
    except json.JSONDecodeError as e:
        return None, (bad_records.NOT_JSON, f"not valid JSON ({e})", None)
    except RecursionError:
        return _parse_deep_line(raw, schema)
    if not isinstance(record, dict):
        return None, (bad_records.NOT_JSON, "not a JSON object", None)
    twice = next((name for name in getattr(record, "twice", ()) if name in kinds), None)
    if twice is not None:
        return None, (bad_records.NOT_JSON, f"key {twice!r} appears twice", twice)
    values = {}
    for name, kind in kinds.items():
        values[name], problem = _read_value(name, record.get(name), kind)
        if problem is not None:
            return None, problem
    return values, None


def _read_value(name, value, kind):
    """(a JSON value as its column kind reads it, None), or (None, (reason, detail, key))
    by the one rule of kdp_beam.columns, and the range of the kind's type."""
    if element_kind(kind) is not None and isinstance(value, (str, list)):
        return _read_list(name, value, kind)
    # Per JSON type, looked up; the label's and fold key's messages name them (LabelKind).
    problem = read_problem(_JSON_TYPES[type(value)], kind) if isinstance(kind, LabelKind) else _PROBLEMS[type(value), kind]
    if problem is not None:
        detail = f"key {name!r}: {value!r:.100} is not {_TYPE_NAMES[kind]}: {problem}"
        return None, (bad_records.WRONG_TYPE, detail, name)
    if isinstance(value, bool):
        return ("true" if value else "false"), None
    if isinstance(value, str) and not _is_unicode(value):
        return None, (bad_records.BAD_UTF8, f"key {name!r}: a lone surrogate escape", name)
    if kind == "label":  # a class's text, as the vectorised reading gives it
        return label_of_value(value), None
    if isinstance(value, int) and kind == "integer" and not -(2**63) <= value < 2**63:
        detail = (
            f"key {name!r}: {value!r:.100} is beyond int64: declare a float feature, or "
            "write such ids as strings"
        )
        return None, (bad_records.WRONG_TYPE, detail, name)
    if isinstance(value, int) and kind == "float":
        # Converted here: pyarrow converts an integer through int64, which may overflow.
        try:
            return float(value), None
        except OverflowError:
            detail = f"key {name!r}: {value!r:.100} is beyond float64"
            return None, (bad_records.WRONG_TYPE, detail, name)
    return value, None


def _read_list(name, value, kind):
    """_read_value of an array or a string (split on the separator) for a multivalent
    feature: its values, each by the rule of its kind."""
    if isinstance(value, str):
        if not _is_unicode(value):
            return None, (bad_records.BAD_UTF8, f"key {name!r}: a lone surrogate escape", name)
        try:
            return cast_column(pa.array([value]), kind, name, "").to_pylist()[0], None
        except UnreadableValue as e:
            return None, (bad_records.UNPARSEABLE_NUMBER, f"key {name!r}: {e.problem}", name)
    values, element = [], element_kind(kind)
    for item in value:
        if isinstance(item, (list, dict)):
            detail = f"key {name!r}: {item!r:.100} in a list: a list of lists (or objects) is not read"
            return None, (bad_records.WRONG_TYPE, detail, name)
        item, problem = _read_value(name, item, element)
        if problem is not None:
            return None, problem
        values.append(item)
    return values, None


_TYPE_NAMES = {
    "float": "a number",
    "integer": "an integer",
    "string": "a string",
    "date": "a string",
    "label": "one value (a string, number or boolean)",
    "list<float>": "a list of numbers",
    "list<integer>": "a list of integers",
    "list<string>": "a list of strings",
}


def _parse_deep_line(raw, schema):
    """A line nested too deeply for Python's recursive parser, read as the fast path reads
    it: by pyarrow, whose parser is iterative (and which must not see a line that does not
    start an object)."""
    if not raw.lstrip(b" \t\r").startswith(b"{"):
        return None, (bad_records.NOT_JSON, "not a JSON object", None)
    try:
        table = _arrow_table(raw, schema, len(raw) + 1)
    except pa.ArrowInvalid as e:
        reason = " ".join(str(e).split())
        detail = f"nested too deeply for Python's JSON parser; pyarrow's reading fails ({reason})"
        return None, (bad_records.NOT_JSON, detail, None)
    return table.to_pylist()[0], None


class _Object(dict):
    """A JSON object whose keys include some given more than once (``twice``)."""

    __slots__ = ("twice",)


# The Arrow type of each Python type json.loads returns, and read_problem of each with
# each kind, looked up per value rather than decided again.
_JSON_TYPES = {
    type(None): pa.null(),
    bool: pa.bool_(),
    int: pa.int64(),
    float: pa.float64(),
    str: pa.string(),
    list: pa.list_(pa.null()),
    dict: pa.struct([]),
    _Object: pa.struct([]),
}
_PROBLEMS = {
    (python_type, kind): read_problem(arrow_type, kind)
    for python_type, arrow_type in _JSON_TYPES.items()
    for kind in ARROW_TYPES
}


def _object(pairs):
    """A JSON object, flagged when it gives a key twice: a declared key given twice is
    ambiguous (pyarrow refuses it too); an undeclared one is ignored, as pyarrow does."""
    record = dict(pairs)
    if len(record) != len(pairs):
        seen = set()
        record = _Object(record)
        record.twice = {k for k, _ in pairs if k in seen or seen.add(k)}
    return record


_DECODER = json.JSONDecoder(object_pairs_hook=_object)  # one: json.loads builds one per call


def _describe(bad):
    """The error for the first bad line in fail mode: with its line number, counted from
    the start of the file when the range it is in starts later (only here: never on the
    fast path)."""
    line = bad.line or _line_number(bad.file, bad.byte_offset)
    where = f"{bad.file}: line {line}" if line else f"{bad.file}: byte {bad.byte_offset}"
    if bad.reason == bad_records.WRONG_TYPE:
        return f"{where}, {bad.detail}."
    if bad.reason == bad_records.UNPARSEABLE_NUMBER:
        return f"{where}, {bad.detail}. Fix the value, or declare a string feature."
    return f"{where}: {bad.detail}"


LINE_COUNT_LIMIT = 1 << 30  # bytes read at most to number the line of an error


def _line_number(path, offset):
    """The number of the line starting at byte `offset` of an uncompressed file (split
    files are never compressed), or None past LINE_COUNT_LIMIT."""
    if offset > LINE_COUNT_LIMIT:
        return None
    newlines = 0
    with open_input(path) as stream:
        while offset > 0:
            chunk = stream.read(min(offset, 1 << 24))
            if not chunk:
                break
            newlines += chunk.count(b"\n")
            offset -= len(chunk)
    return newlines + 1


def _is_unicode(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
