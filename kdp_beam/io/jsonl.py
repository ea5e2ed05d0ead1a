"""ReadJsonLines: JSON Lines files (one object per line) as typed RecordBatches."""

import codecs
import io
import itertools
import json
import logging
import re
import sys

import apache_beam as beam
import pyarrow as pa
import pyarrow.json as pa_json

from kdp_beam import bad_records
from kdp_beam.bad_records import BadRecord
from kdp_beam.columns import column_types
from kdp_beam.errors import InputDataError
from kdp_beam.io.files import READ_METRICS, ProgressLog, open_input
from kdp_beam.io.ranges import ReadByteRanges, RecordRange

_LOG = logging.getLogger(__name__)


class ReadJsonLines(ReadByteRanges):
    """Reads JSON Lines files into RecordBatches of the declared columns.

    Typed by the declarations through an explicit schema (float64, int64, string): a key
    absent from an object, or null, is missing; undeclared keys are ignored. Read as a
    block of about ``block_size`` bytes of whole lines at a time; an uncompressed file
    larger than ``split_size`` bytes is read in parallel as byte ranges, each owning the
    lines that start in it (0 disables splitting). One object per line: a
    line that is not a JSON object (an object spread over lines, or two on one line,
    included), or a value of the wrong type, raises InputDataError naming the file, line
    and key; under ``on_bad_record="skip"`` it becomes a BadRecord and reading goes on.
    """

    def _range_reader(self):
        return _ReadJsonRange(self.spec, self.block_size, self.on_bad_record)


class _ReadJsonRange(beam.DoFn):
    def __init__(self, spec, block_size, on_bad_record="fail"):
        self._types = column_types(spec)
        self._schema = pa.schema(list(self._types.items()))
        self._block_size = block_size
        self._skip = on_bad_record == "skip"

    def process(self, path_range):
        path, start, end = path_range
        progress = ProgressLog(path if end is None else f"{path} (bytes {start}-{end})")
        with open_input(path) as raw:  # decompresses by extension; a cut file is an error
            stream = RecordRange(raw, start, end)
            for block in _line_blocks(stream, self._block_size, stream.first):
                for element in self._read_block(path, block):
                    if not isinstance(element, BadRecord):
                        progress.add(element)
                    yield element
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
                table = self._arrow_table(block.data)
            except (UnicodeDecodeError, pa.ArrowInvalid):
                pass
        # pyarrow reads any stream of JSON objects: one spread over two lines, or two on
        # one line, are only caught by counting. Both readings agree when the counts do.
        if table is not None and table.num_rows == block.objects:
            yield from table.to_batches()
            return
        for element in _lines_skipping_bad(path, block, self._types, self._schema):
            if isinstance(element, BadRecord) and not self._skip:
                raise InputDataError(_describe(element))
            yield element

    def _arrow_table(self, data):
        """The block as one table of the declared columns (pyarrow's reading)."""
        table = pa_json.read_json(
            io.BytesIO(data),
            # pyarrow parses its own blocks in parallel: a few per block of lines.
            read_options=pa_json.ReadOptions(block_size=max(len(data) // 4, 1 << 20)),
            parse_options=pa_json.ParseOptions(
                explicit_schema=self._schema, unexpected_field_behavior="ignore"
            ),
        ).select(list(self._types)).combine_chunks()
        table.validate(full=True)  # e.g. "\\ud800" (a lone surrogate) is not UTF-8 either
        return table


class _Block:
    """Whole lines of a file: their bytes; the byte offset, line number and row number
    (lines not blank) before the first (relative to the range's start: file numbers only
    when it starts the file); how many lines are not blank, and whether each of them
    starts with "{"."""

    __slots__ = ("data", "offset", "line", "row", "numbered", "objects", "only_objects")

    def __init__(self, data, offset, line, row, numbered):
        self.data, self.offset, self.line, self.row = data, offset, line, row
        self.numbered = numbered
        lines = data.count(b"\n") + (not data.endswith(b"\n"))
        if data.count(b"\n{") + data.startswith(b"{") == lines:
            self.objects, self.only_objects = lines, True  # the usual case, at C speed
        else:
            self.objects = sum(1 for _ in _FILLED_LINE.finditer(data))
            self.only_objects = not _OTHER_LINE.search(data)


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


# A line with something other than white space on it; one that starts with no "{".
_FILLED_LINE = re.compile(rb"^[ \t\r]*[^ \t\r\n]", re.MULTILINE)
_OTHER_LINE = re.compile(rb"^[ \t\r]*[^{ \t\r\n]", re.MULTILINE)


def _lines_skipping_bad(path, block, types, schema, batch_rows=65536):
    """The block's objects read line by line: RecordBatches of the good ones and a
    BadRecord for each line that is not a JSON object of the declared types, in file
    order."""
    good, offset, row = [], block.offset, block.row
    for line_number, raw in enumerate(block.data.split(b"\n"), start=block.line):
        line_offset, offset = offset, offset + len(raw) + 1
        if not raw.strip(b" \t\r"):  # JSON's white space
            continue
        row += 1
        record, problem = _parse_line(raw, types)
        if problem is not None:
            reason, detail, column = problem
            text = raw.decode("utf-8", errors="backslashreplace").rstrip("\r\n")
            numbers = dict(row=row, line=line_number) if block.numbered else {}
            place = dict(byte_offset=line_offset, **numbers)
            yield BadRecord(path, reason, detail, text, column=column, **place)
            continue
        good.append(record)
        if len(good) >= batch_rows:
            yield pa.RecordBatch.from_pylist(good, schema=schema)
            good = []
    if good:
        yield pa.RecordBatch.from_pylist(good, schema=schema)


def _parse_line(raw, types):
    """(the declared values, None) for a usable line, else (None, (reason, detail, key))."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, (bad_records.BAD_UTF8, "not valid UTF-8", None)
    try:
        record = json.loads(text, object_pairs_hook=_object)  # NaN, Infinity: floats
    except json.JSONDecodeError as e:
        return None, (bad_records.NOT_JSON, f"not valid JSON ({e})", None)
    except _DuplicateKey as e:
        return None, (bad_records.NOT_JSON, f"key {e.args[0]!r} appears twice", e.args[0])
    if not isinstance(record, dict):
        return None, (bad_records.NOT_JSON, "not a JSON object", None)
    values = {}
    for name, arrow_type in types.items():
        value = record.get(name)
        if isinstance(value, str) and not _is_unicode(value):
            return None, (bad_records.BAD_UTF8, f"key {name!r}: a lone surrogate escape", name)
        if value is not None and not _ACCEPTS[arrow_type](value):
            detail = f"key {name!r}: {value!r:.100} is not {_TYPE_NAMES[arrow_type]}"
            return None, (bad_records.WRONG_TYPE, detail, name)
        # An integer in a float column: pyarrow converts it through int64, which may overflow.
        values[name] = float(value) if arrow_type == pa.float64() and value is not None else value
    return values, None


class _DuplicateKey(Exception):
    pass


def _object(pairs):
    """A JSON object; a key given twice is ambiguous (pyarrow refuses it too)."""
    record = dict(pairs)
    if len(record) != len(pairs):
        seen = set()
        raise _DuplicateKey(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return record


def _describe(bad):
    """The error for the first bad line in fail mode."""
    where = f"{bad.file}: line {bad.line}" if bad.line else f"{bad.file}: byte {bad.byte_offset}"
    if bad.reason == bad_records.WRONG_TYPE:
        return f"{where}, {bad.detail}. Fix the value or the declaration."
    return f"{where}: {bad.detail}"


def _is_unicode(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_float64(value):
    if isinstance(value, float):
        return True
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= sys.float_info.max


_ACCEPTS = {
    pa.float64(): _is_float64,
    pa.int64(): lambda v: isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63,
    pa.string(): lambda v: isinstance(v, str),
}
_TYPE_NAMES = {pa.float64(): "a number", pa.int64(): "an integer", pa.string(): "a string"}
