"""The Beam adapters of the pure analyzers (kdp_beam.analyzers), as tf.Transform keeps its
Beam implementations in tensorflow_transform.beam: the statistics know no Beam; these
modules run them over PCollections of RecordBatches."""
