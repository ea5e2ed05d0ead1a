"""The vocabulary of a lookup whose feature had no value in the data."""

from kdp_beam.errors import SpecError


# The one vocabulary token of a lookup whose feature had no value in the data. Inputs are
# not expected to equal it: the string has spaces, punctuation and capitals, which text
# tokenisation removes, and the integer is an arbitrary 64-bit value.
NO_VALUE_TOKENS = {"string": "[KDP_BEAM: NO VALUE IN THE DATA]", "int64": -7386491231508347117}


def no_value_vocabulary(num_oov_indices, dtype):
    """The vocabulary of a lookup (of `dtype`, "string" or "int64") whose feature had no
    value in the data: NO_VALUE_TOKENS' placeholder alone, so every input maps to OOV (and keras' OOV weight in tf_idf is the
    placeholder's: a term seen in no document). keras cannot hold an empty vocabulary:
    set_vocabulary refuses it, and adapt() on such data leaves the lookup table
    uninitialized ("Table not initialized" at the first call, a .keras file that does not
    load)."""
    if num_oov_indices == 0:
        raise SpecError(
            "the data had no value for it, and with num_oov_indices=0 no value could be "
            "encoded; declare num_oov_indices >= 1, or check the column"
        )
    return [NO_VALUE_TOKENS[dtype]]
