"""tf.Transform AnalyzeDataset (scale_to_z_score + compute_and_apply_vocabulary) on the
local Beam runner, reading the CSV with tfx_bsl's CSV TFXIO as its documentation shows."""

import csv
import os

import apache_beam as beam
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from apache_beam.options.pipeline_options import PipelineOptions
from tensorflow_transform.tf_metadata import schema_utils
from tfx_bsl.public import tfxio

from benchmarks.contenders import arguments


def main():
    args, floats, strings, files = arguments()
    with open(files[0], newline="") as f:
        header = next(csv.reader(f))
    feature_spec = {n: tf.io.FixedLenFeature([], tf.float32) for n in floats}
    feature_spec |= {n: tf.io.FixedLenFeature([], tf.string) for n in strings}
    for extra in set(header) - set(feature_spec):
        feature_spec[extra] = tf.io.FixedLenFeature([], tf.string)
    schema = schema_utils.schema_from_feature_spec(feature_spec)

    def preprocessing_fn(inputs):
        outputs = {n: tft.scale_to_z_score(inputs[n]) for n in floats}
        outputs |= {n: tft.compute_and_apply_vocabulary(inputs[n]) for n in strings}
        return outputs

    source = tfxio.BeamRecordCsvTFXIO(physical_format="text", column_names=header, schema=schema)
    options = PipelineOptions(["--runner=FnApiRunner"])
    with beam.Pipeline(options=options) as pipeline:
        with tft_beam.Context(temp_dir=os.path.join(args.workdir, "tft_tmp")):
            raw = (
                pipeline
                | beam.io.ReadFromText(args.pattern, skip_header_lines=1, coder=beam.coders.BytesCoder())
                | source.BeamSource()
            )
            transform_fn = (raw, source.TensorAdapterConfig()) | tft_beam.AnalyzeDataset(
                preprocessing_fn
            )
            _ = transform_fn | tft_beam.WriteTransformFn(os.path.join(args.workdir, "tft_out"))


if __name__ == "__main__":
    main()
