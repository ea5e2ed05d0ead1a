"""Statistics into keras preprocessing layers: the state adapt() would have left."""

import keras


def set_statistics(preprocessor, stats):
    """Puts one feature's bundle statistics into its (unadapted) keras preprocessor.

    Leaves the layer exactly as its own adapt() would, with kdp_beam's statistics:
    Normalization gets float64 mean/variance (stored as keras stores adapted ones),
    Discretization its bin boundaries, StringLookup/IntegerLookup their vocabulary.
    Layers with nothing to learn (Hashing, Rescaling, identity) are left as they are.
    """
    layers = keras.layers
    if isinstance(preprocessor, layers.Normalization):
        if preprocessor.input_mean is not None:
            return  # mean and variance given at construction
        if not preprocessor.built:
            preprocessor.build((None, 1))
        empty = stats["mean"] is None  # no finite value: the identity, as keras' defaults
        preprocessor.adapt_mean.assign([0.0 if empty else stats["mean"]])
        preprocessor.adapt_variance.assign([1.0 if empty else stats["variance"]])
        preprocessor.finalize_state()
    elif isinstance(preprocessor, layers.Discretization):
        if preprocessor.summary is not None:  # boundaries were not fixed at construction
            preprocessor.bin_boundaries = list(stats["bin_boundaries"])
    elif isinstance(preprocessor, (layers.StringLookup, layers.IntegerLookup)):
        vocabulary = stats["vocabulary"]
        if vocabulary:
            preprocessor.set_vocabulary(vocabulary)
            # Saved in the layer's JSON config rather than keras' newline-separated asset
            # file, so tokens with newlines or empty tokens survive .keras save/load.
            preprocessor.input_vocabulary = list(vocabulary)
