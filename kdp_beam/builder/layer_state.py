"""Statistics into keras preprocessing layers: the state adapt() would have left."""

import keras

from kdp_beam.builder.layers import DateEncoding, idf_weights
from kdp_beam.errors import SpecError


# The one vocabulary token of a lookup whose feature had no value in the data. Inputs are
# not expected to equal it: the string has spaces, punctuation and capitals, which text
# tokenisation removes, and the integer is an arbitrary 64-bit value.
NO_VALUE_TOKENS = {"string": "[KDP_BEAM: NO VALUE IN THE DATA]", "int64": -7386491231508347117}


def set_statistics(preprocessor, stats):
    """Puts one feature's bundle statistics into its (unadapted) keras preprocessor.

    Leaves the layer exactly as its own adapt() would, with kdp_beam's statistics:
    Normalization gets float64 mean/variance (stored as keras stores adapted ones),
    Discretization its bin boundaries, StringLookup/IntegerLookup their vocabulary,
    TextVectorization its vocabulary (and idf weights for tf_idf), DateEncoding the year's
    mean and standard deviation. A lookup with no token in the data gets a placeholder
    (no_value_vocabulary), and with no value, Normalization and DateEncoding the identity
    and Discretization one bin.
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
        vocabulary = list(stats["vocabulary"]) or no_value_vocabulary(preprocessor)
        preprocessor.set_vocabulary(vocabulary)
        # Saved in the layer's JSON config rather than keras' newline-separated asset
        # file, so tokens with newlines or empty tokens survive .keras save/load.
        preprocessor.input_vocabulary = vocabulary
    elif isinstance(preprocessor, layers.TextVectorization):
        lookup = preprocessor._lookup_layer
        # The bundle keeps max_tokens - 1 tokens; "int" mode also reserves padding.
        reserved = 2 if lookup.output_mode == "int" else 1
        size = None if lookup.max_tokens is None else lookup.max_tokens - reserved
        vocabulary = list(stats["vocabulary"][:size])
        weights = None
        if lookup.output_mode == "tf_idf":
            document_counts = stats["vocabulary_document_counts"][:size] if vocabulary else [0]
            weights = idf_weights(document_counts, stats["count"])  # every row is a document
        vocabulary = vocabulary or no_value_vocabulary(lookup)
        preprocessor.set_vocabulary(vocabulary, idf_weights=weights)
        # In the JSON config, as for the lookups above.
        lookup.input_vocabulary = vocabulary
        lookup.input_idf_weights = None if weights is None else weights.tolist()
    elif isinstance(preprocessor, DateEncoding):
        preprocessor.set_statistics(stats["year_mean"], stats["year_variance"])


def no_value_vocabulary(lookup):
    """The vocabulary of a lookup whose feature had no value in the data: NO_VALUE_TOKENS'
    placeholder alone, so every input maps to OOV (and keras' OOV weight in tf_idf is the
    placeholder's: a term seen in no document). keras cannot hold an empty vocabulary:
    set_vocabulary refuses it, and adapt() on such data leaves the lookup table
    uninitialized ("Table not initialized" at the first call, a .keras file that does not
    load)."""
    if lookup.num_oov_indices == 0:
        raise SpecError(
            "the data had no value for it, and with num_oov_indices=0 no value could be "
            "encoded; declare num_oov_indices >= 1, or check the column"
        )
    return [NO_VALUE_TOKENS[lookup.vocabulary_dtype]]
