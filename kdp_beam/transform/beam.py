"""TransformFeatures: raw RecordBatches (as the readers give them) -> the model's encoding,
on Beam, one element per batch.

Each worker builds the encoder once (the DoFn's setup loads the bundle and traces the
model): the DoFn pickles the bundle's path, never the model, so the path must be readable
from the workers (a local path on the local runners, gs:// or s3:// elsewhere), and the
workers need TensorFlow.
"""

import apache_beam as beam
import pyarrow as pa

from kdp_beam import bad_records
from kdp_beam.bad_records import BadRecord
from kdp_beam.errors import SpecError
from kdp_beam.io.files import BAD_RECORDS, BATCHES

# Output batches stay at most this many rows and about this many bytes (one-hot floats make
# ~4 KB a row): bigger input batches are cut, zero copy, before they are encoded. Smaller
# ones are not merged: the readers' batches are already thousands of rows.
MAX_BATCH_ROWS = 65536
MAX_BATCH_BYTES = 64 << 20


class _EncodeBatches(beam.DoFn):
    def __init__(self, bundle_path, keep, skip, out_of_fold=False):
        self._bundle_path, self._keep, self._skip, self._out_of_fold = bundle_path, keep, skip, out_of_fold
        self._encoder = None

    def setup(self):
        from kdp_beam.transform.encode import shared_encoder  # TensorFlow: on the workers only

        self._encoder = shared_encoder(self._bundle_path, self._keep, self._out_of_fold)
        self._rows = max(1, min(MAX_BATCH_ROWS, MAX_BATCH_BYTES // _row_bytes(self._encoder.schema)))

    def process(self, batch):
        for start in range(0, batch.num_rows, self._rows):
            encoded, bad = self._encoder.encode_or_skip(batch.slice(start, self._rows), self._skip)
            for record in bad:
                yield beam.pvalue.TaggedOutput(BAD_RECORDS, record)
            if encoded.num_rows:
                yield encoded


def _row_bytes(schema):
    """An encoded row's bytes, about (text counted as 16 bytes a value)."""
    total = 0
    for field in schema:
        arrow = field.type.value_type if pa.types.is_fixed_size_list(field.type) else field.type
        width = field.type.list_size if pa.types.is_fixed_size_list(field.type) else 1
        total += width * (arrow.bit_width // 8 if pa.types.is_primitive(arrow) else 16)
    return max(total, 1)


class TransformFeatures(beam.PTransform):
    """A PCollection of raw RecordBatches, or a reader's outputs -> the encoded batches.

    ``p | ReadInput(pattern, spec, columns=encoder.columns) | TransformFeatures(bundle)``.
    The input batches have the bundle's features' columns as the readers give them (and
    the keep columns); each output batch has the schema
    ``kdp_beam.transform.encode.output_schema(bundle, keep)`` (BatchEncoder.schema): every value what
    ``FeatureSpace.from_artifacts(bundle, output_mode="dict")`` gives for its row.

    Args:
        bundle: the bundle directory (a path the workers can read: local, gs://, s3://).
        keep: {column: read kind} of columns copied beside the encoding (keep_kinds), or
            their names (kinds as keep_kinds decides them without the input: features as
            read, the label by its statistics, others as text).
        on_bad_record: "fail": a row holding a value the model refuses (a float beyond
            float32) fails the job with an InputDataError naming the file, row, column and
            value; "skip": it is left out as a BadRecord (reason "out_of_range").
        out_of_fold: encode the target features declared with folds out of fold
            (kdp_beam.transform.folds; the input must hold the fold key); others as the model.

    Returns a PCollection[RecordBatch] for a PCollection (then on_bad_record must be
    "fail": skipped rows would have nowhere to go), or for a reader's outputs
    ``{"batches": encoded, "bad_records": the reader's and the encoder's BadRecords}``.
    """

    def __init__(self, bundle, keep=(), on_bad_record="fail", out_of_fold=False):
        super().__init__()
        bad_records.check_policy(on_bad_record)
        if not isinstance(bundle, str):
            raise SpecError(f"TransformFeatures takes the bundle's path (workers load it), got {type(bundle).__name__}")
        self.bundle = bundle
        self.keep = keep
        self.on_bad_record = on_bad_record
        self.out_of_fold = out_of_fold

    def expand(self, read):
        from kdp_beam.beam.analyze import _as_read_outputs

        given_dict = isinstance(read, dict)
        read = _as_read_outputs(read)
        if not given_dict and self.on_bad_record == "skip":
            raise SpecError(
                'TransformFeatures(on_bad_record="skip") takes a reader\'s outputs {"batches", "bad_records"}, '
                "and gives them back, with the rows it left out among the bad records"
            )
        keep = self.keep if isinstance(self.keep, dict) else _keep_without_input(self.bundle, self.keep)
        encoded = read[BATCHES] | "Encode" >> beam.ParDo(
            _EncodeBatches(self.bundle, keep, self.on_bad_record == "skip", self.out_of_fold)
        ).with_output_types(pa.RecordBatch, **{BAD_RECORDS: BadRecord}).with_outputs(BAD_RECORDS, main=BATCHES)
        if not given_dict:
            return encoded[BATCHES]
        bad = [read[BAD_RECORDS], encoded[BAD_RECORDS]] if BAD_RECORDS in read else [encoded[BAD_RECORDS]]
        return {BATCHES: encoded[BATCHES], BAD_RECORDS: bad | "BadRecords" >> beam.Flatten()}


def _keep_without_input(bundle, keep):
    from kdp_beam.transform.encode import keep_kinds

    return keep_kinds(bundle, keep, None, None) if keep else {}
