"""ReadJsonLines: JSON Lines files (one object per line) as typed RecordBatches."""

import json
import math

import apache_beam as beam
import pyarrow as pa
import pyarrow.json as pa_json
from apache_beam.io.filesystems import FileSystems

from kdp_beam import bad_records
from kdp_beam.bad_records import BadRecord
from kdp_beam.columns import column_types
from kdp_beam.errors import InputDataError
from kdp_beam.io.files import READ_METRICS, MatchInputFiles, ProgressLog

DEFAULT_BLOCK_SIZE = 4 << 20  # bytes of JSON text per RecordBatch


class ReadJsonLines(beam.PTransform):
    """Reads JSON Lines files into RecordBatches of the declared columns.

    Typed by the declarations through an explicit schema (float64, int64, string): a key
    absent from an object, or null, is missing; undeclared keys are ignored. Read as a
    stream of about ``block_size`` bytes per batch. A line that is not a JSON object, or a
    value of the wrong type, raises InputDataError naming the file, line and key; under
    ``on_bad_record="skip"`` it becomes a BadRecord and reading goes on (the file is
    re-read line by line after the rows already emitted).
    """

    def __init__(self, file_pattern, spec, block_size=DEFAULT_BLOCK_SIZE, on_bad_record="fail"):
        super().__init__()
        bad_records.check_policy(on_bad_record)
        self.file_pattern = file_pattern
        self.spec = spec
        self.block_size = block_size
        self.on_bad_record = on_bad_record

    def expand(self, pbegin):
        return (
            pbegin
            | "MatchFiles" >> MatchInputFiles(self.file_pattern)
            | "ReadJsonFile"
            >> beam.ParDo(_ReadJsonFile(self.spec, self.block_size, self.on_bad_record))
        )


class _ReadJsonFile(beam.DoFn):
    def __init__(self, spec, block_size, on_bad_record="fail"):
        self._types = column_types(spec)
        self._block_size = block_size
        self._skip = on_bad_record == "skip"

    def process(self, metadata):
        with FileSystems.open(metadata.path) as stream:
            empty = not stream.read(1)  # an empty file adds no rows
        if not empty:
            yield from self._read(metadata.path)
        READ_METRICS.files.inc()

    def _read(self, path):
        progress = ProgressLog(path)
        schema = pa.schema(list(self._types.items()))
        rows_done = 0
        with FileSystems.open(path) as stream:
            try:
                reader = pa_json.open_json(
                    stream,
                    read_options=pa_json.ReadOptions(block_size=self._block_size),
                    parse_options=pa_json.ParseOptions(
                        explicit_schema=schema, unexpected_field_behavior="ignore"
                    ),
                )
                for batch in reader:
                    batch = batch.select(list(self._types))
                    progress.add(batch)
                    rows_done += batch.num_rows
                    yield batch
            except pa.ArrowInvalid as e:
                if not self._skip:
                    raise InputDataError(locate_bad_line(path, self._types, e)) from None
                for element in _lines_skipping_bad(path, self._types, rows_done, schema):
                    if not isinstance(element, BadRecord):
                        progress.add(element)
                    yield element
        progress.done()


def _lines_skipping_bad(path, types, skip_rows, schema, batch_rows=65536, stop_at_bad=False):
    """The file's objects after the first `skip_rows`, read line by line: RecordBatches of
    the good ones, a BadRecord for each line that is not a JSON object of the declared
    types, in file order; only the first BadRecord with `stop_at_bad` (to name it in an
    error)."""
    good, row, offset = [], 0, 0
    with FileSystems.open(path) as stream:
        for line_number, raw in enumerate(stream, start=1):
            line_offset, offset = offset, offset + len(raw)
            if not raw.strip():
                continue
            row += 1
            if row <= skip_rows:
                continue
            record, problem = _parse_line(raw, types)
            if problem is not None:
                reason, detail, column = problem
                text = raw.decode("utf-8", errors="backslashreplace").rstrip("\r\n")
                place = dict(byte_offset=line_offset, row=row, line=line_number)
                yield BadRecord(path, reason, detail, text, column=column, **place)
                if stop_at_bad:
                    return
                continue
            if stop_at_bad:
                continue  # only looking for the first bad line
            good.append({name: record.get(name) for name in types})
            if len(good) >= batch_rows:
                yield pa.RecordBatch.from_pylist(good, schema=schema)
                good = []
    if good:
        yield pa.RecordBatch.from_pylist(good, schema=schema)


def _parse_line(raw, types):
    """(the object, None) for a usable line, else (None, (reason, detail, key))."""
    try:
        record = json.loads(raw.decode("utf-8"), parse_constant=lambda c: math.nan)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return None, (bad_records.NOT_JSON, f"not valid JSON ({e})", None)
    if not isinstance(record, dict):
        return None, (bad_records.NOT_JSON, "not a JSON object", None)
    for name, arrow_type in types.items():
        value = record.get(name)
        if value is not None and not _ACCEPTS[arrow_type](value):
            detail = f"key {name!r}: {value!r:.100} is not {_TYPE_NAMES[arrow_type]}"
            return None, (bad_records.WRONG_TYPE, detail, name)
    return record, None


_ACCEPTS = {
    pa.float64(): lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    pa.int64(): lambda v: isinstance(v, int) and not isinstance(v, bool),
    pa.string(): lambda v: isinstance(v, str),
}
_TYPE_NAMES = {pa.float64(): "a number", pa.int64(): "an integer", pa.string(): "a string"}


def locate_bad_line(path, types, arrow_error):
    """The file, line and key of the first line pyarrow could not read (its errors count
    rows per block), found by re-reading line by line as the skip mode does."""
    schema = pa.schema(list(types.items()))
    for bad in _lines_skipping_bad(path, types, 0, schema, stop_at_bad=True):
        if bad.reason == bad_records.WRONG_TYPE:
            return f"{path}: line {bad.line}, {bad.detail}. Fix the value or the declaration."
        return f"{path}: line {bad.line}: {bad.detail}"
    return f"{path}: cannot be read as JSON Lines: {arrow_error}"
