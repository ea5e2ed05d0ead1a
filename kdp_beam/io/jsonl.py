"""ReadJsonLines: JSON Lines files (one object per line) as typed RecordBatches."""

import io
import json
import math

import apache_beam as beam
import pyarrow as pa
import pyarrow.json as pa_json
from apache_beam.io.filesystems import FileSystems

from kdp_beam.columns import column_types
from kdp_beam.errors import InputDataError
from kdp_beam.io.files import READ_METRICS, MatchInputFiles, ProgressLog

DEFAULT_BLOCK_SIZE = 4 << 20  # bytes of JSON text per RecordBatch


class ReadJsonLines(beam.PTransform):
    """Reads JSON Lines files into RecordBatches of the declared columns.

    Typed by the declarations through an explicit schema (float64, int64, string): a key
    absent from an object, or null, is missing; undeclared keys are ignored. Read as a
    stream of about ``block_size`` bytes per batch. A value of the wrong type raises
    InputDataError naming the file, line and key.
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
            | "ReadJsonFile" >> beam.ParDo(_ReadJsonFile(self.spec, self.block_size))
        )


class _ReadJsonFile(beam.DoFn):
    def __init__(self, spec, block_size):
        self._types = column_types(spec)
        self._block_size = block_size

    def process(self, metadata):
        path = metadata.path
        progress = ProgressLog(path)
        schema = pa.schema(list(self._types.items()))
        with FileSystems.open(path) as stream:
            if not stream.read(1):
                READ_METRICS.files.inc()
                return  # an empty file adds no rows
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
                    yield batch
            except pa.ArrowInvalid as e:
                raise InputDataError(locate_bad_line(path, self._types, e)) from None
        progress.done()
        READ_METRICS.files.inc()


_ACCEPTS = {
    pa.float64(): lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    pa.int64(): lambda v: isinstance(v, int) and not isinstance(v, bool),
    pa.string(): lambda v: isinstance(v, str),
}
_TYPE_NAMES = {pa.float64(): "a number", pa.int64(): "an integer", pa.string(): "a string"}


def locate_bad_line(path, types, arrow_error):
    """The file, line and key of the first value pyarrow could not read (its errors
    count rows per block), found by re-reading with Python's json module."""
    with FileSystems.open(path) as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        try:
            for line_number, line in enumerate(text, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line, parse_constant=lambda c: math.nan)
                except json.JSONDecodeError as e:
                    return f"{path}: line {line_number}: not valid JSON ({e})"
                if not isinstance(record, dict):
                    return f"{path}: line {line_number}: expected a JSON object, got {line[:80]!r}"
                for name, arrow_type in types.items():
                    value = record.get(name)
                    if value is not None and not _ACCEPTS[arrow_type](value):
                        return (
                            f"{path}: line {line_number}, key {name!r}: {value!r:.100} is not "
                            f"{_TYPE_NAMES[arrow_type]}. Fix the value or the declaration."
                        )
        except UnicodeDecodeError as e:
            return f"{path}: not valid UTF-8 ({e.reason})"
    return f"{path}: cannot be read as JSON Lines: {arrow_error}"
