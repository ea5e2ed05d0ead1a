"""Statistics into keras preprocessing layers: the state adapt() would have left."""

import keras

from kdp_beam.builder.layers import DateEncoding, idf_weights


def set_statistics(preprocessor, stats):
    """Puts one feature's bundle statistics into its (unadapted) keras preprocessor.

    Leaves the layer exactly as its own adapt() would, with kdp_beam's statistics:
    Normalization gets float64 mean/variance (stored as keras stores adapted ones),
    Discretization its bin boundaries, StringLookup/IntegerLookup their vocabulary,
    TextVectorization its vocabulary (and idf weights for tf_idf), DateEncoding the year's
    mean and standard deviation.
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
    elif isinstance(preprocessor, layers.TextVectorization):
        lookup = preprocessor._lookup_layer
        # The bundle keeps max_tokens - 1 tokens; "int" mode also reserves padding.
        reserved = 2 if lookup.output_mode == "int" else 1
        size = None if lookup.max_tokens is None else lookup.max_tokens - reserved
        vocabulary = stats["vocabulary"][:size]
        if not vocabulary:
            return
        weights = None
        if lookup.output_mode == "tf_idf":
            document_counts = stats["vocabulary_document_counts"][:size]
            weights = idf_weights(document_counts, stats["count"])  # every row is a document
        preprocessor.set_vocabulary(vocabulary, idf_weights=weights)
        # In the JSON config, as for the lookups above.
        lookup.input_vocabulary = list(vocabulary)
        lookup.input_idf_weights = None if weights is None else weights.tolist()
    elif isinstance(preprocessor, DateEncoding):
        preprocessor.set_statistics(stats["year_mean"], stats["year_variance"])
