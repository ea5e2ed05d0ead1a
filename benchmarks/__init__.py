"""The seed benchmark: kdp_beam against Keras FeatureSpace, KDP, tf.Transform and a floor."""
