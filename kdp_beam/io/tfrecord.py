"""ReadTFRecord: files of serialized tf.Example as typed pyarrow RecordBatches."""

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.io.tfrecordio import ReadAllFromTFRecord
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

from kdp_beam.columns import cast_column, column_types
from kdp_beam.errors import InputDataError
from kdp_beam.io.files import READ_METRICS, MatchInputFiles

DEFAULT_BATCH_RECORDS = 8192
_SCHEMA_TYPES = {
    pa.float64(): schema_pb2.FLOAT,
    pa.int64(): schema_pb2.INT,
    pa.string(): schema_pb2.BYTES,
}


class ReadTFRecord(beam.PTransform):
    """Reads TFRecord files of tf.Example into RecordBatches of the declared features.

    Records are read with Beam's TFRecord source (splittable, .gz by extension) and
    decoded in batches by tfx_bsl's C++ tf.Example decoder, typed by a schema built from
    the declarations: float_list (float32, widened exactly to float64), int64_list,
    bytes_list (must be UTF-8). A feature absent from a record, or with an empty list, is
    missing. Each feature holds at most one value per record: kdp_beam features are
    scalars, and a record with more raises InputDataError naming the file and feature.
    """

    def __init__(self, file_pattern, spec, batch_records=DEFAULT_BATCH_RECORDS):
        super().__init__()
        self.file_pattern = file_pattern
        self.spec = spec
        self.batch_records = batch_records

    def expand(self, pbegin):
        return (
            pbegin
            | "MatchFiles" >> MatchInputFiles(self.file_pattern)
            | "CountFiles" >> beam.Map(_count_file)
            | "ReadRecords" >> ReadAllFromTFRecord(with_filename=True)
            | "Batch"
            >> beam.BatchElements(
                min_batch_size=self.batch_records, max_batch_size=self.batch_records
            )
            | "Decode" >> beam.ParDo(_DecodeExamples(self.spec))
        )


def _count_file(metadata):
    READ_METRICS.files.inc()
    return metadata.path


class _DecodeExamples(beam.DoFn):
    def __init__(self, spec):
        self._types = column_types(spec)
        self._decoder = None

    def setup(self):
        schema = schema_pb2.Schema()
        for name, arrow_type in self._types.items():
            schema.feature.add(name=name, type=_SCHEMA_TYPES[arrow_type])
        self._decoder = ExamplesToRecordBatchDecoder(schema.SerializeToString())

    def process(self, named_records):
        files = [name for name, _ in named_records]
        try:
            decoded = self._decoder.DecodeBatch([record for _, record in named_records])
        except Exception as e:  # tfx_bsl raises plain RuntimeError/ValueError
            raise InputDataError(
                f"cannot decode tf.Example records from {sorted(set(files))[:3]}: {e}. "
                "Check the feature types against the declarations."
            ) from None
        columns = [
            _scalar_column(decoded.column(name), arrow_type, name, files)
            for name, arrow_type in self._types.items()
        ]
        batch = pa.RecordBatch.from_arrays(columns, names=list(self._types))
        READ_METRICS.batches.inc()
        READ_METRICS.rows.inc(batch.num_rows)
        yield batch


def _scalar_column(lists, arrow_type, name, files):
    """One value (or null) per record from a column of value lists."""
    lengths = pc.list_value_length(lists).fill_null(0)
    if len(lists) and pc.max(lengths).as_py() > 1:
        row = pc.index(pc.greater(lengths, 1), True).as_py()
        raise InputDataError(
            f"{files[row]}: a record has {lengths[row].as_py()} values for feature {name!r}; "
            "kdp_beam features hold one value per record. Split the list into features "
            "or aggregate it before analysis."
        )
    null = pa.scalar(None, lists.type)
    lists = pc.if_else(pc.equal(lengths, 0), null, lists)
    return cast_column(pc.list_element(lists, 0), arrow_type, name, files[0] if files else "")
