"""Transform at scale (issue 18): raw RecordBatches -> the model's encoding, on Beam.

- kdp_beam.transform.encode: ``BatchEncoder`` (one batch, the FeatureSpace's own layers in
  one tf.function) and ``keep_kinds`` (how --keep columns are read);
- kdp_beam.transform.beam: ``TransformFeatures``, the PTransform.

Imports nothing heavy: TensorFlow comes with kdp_beam.transform.encode, Beam with
kdp_beam.transform.beam.
"""
