"""Hashed categories: string_hashed and integer_hashed (keras' FeatureSpace types). Nothing
to learn beyond the counts: a value's bin is its hash modulo num_bins."""

import math

from kdp_beam.feature_types import multivalent
from kdp_beam.feature_types.base import FeatureType
from kdp_beam.feature_types.options import ONE_HOT_OR_INT, REQUIRED, integer, width
from kdp_beam.feature_types.registry import register_type

MAX_INFERRED_BINS = 1 << 16


def inferred_bins(distinct):
    """infer's num_bins: twice the distinct count, to a power of two, at most 2^16."""
    return int(min(2 ** math.ceil(math.log2(max(2 * distinct, 2))), MAX_INFERRED_BINS))


class HashedType(FeatureType):
    options = {"num_bins": REQUIRED, "output_mode": "one_hot", **multivalent.OPTIONS}
    keras_arguments = ("num_bins", "output_mode")
    bare_defaults = {"num_bins": "hashing_dim"}
    encoding_options = ("output_mode", *multivalent.ENCODING_OPTIONS)

    def validate(self, options):
        multivalent.validate(options)
        multivalent.validate_output_mode(options, ONE_HOT_OR_INT)
        options["num_bins"] = integer(options["num_bins"], "num_bins", 1, *width("num_bins", options["output_mode"]))
        return options

    def column_kind(self, options):
        return "string" if self.dtype == "string" else "integer"

    def crossable(self, options):
        return not multivalent.is_multivalent(options)

    def keras_feature(self, feature_space, name, options):
        if multivalent.is_multivalent(options):
            from kdp_beam.builder.multivalent import keras_feature

            return keras_feature(self, feature_space, name, options)
        return self.keras_own(feature_space, name, options, self.dtype)

    def from_keras(self, feature):
        import keras

        # keras' integer_hashed declares int32 inputs, kdp_beam's int64.
        if isinstance(feature.preprocessor, keras.layers.Hashing) and (feature.dtype == "string") == (self.dtype == "string"):
            return {"num_bins": feature.preprocessor.num_bins, "output_mode": feature.output_mode, **multivalent.OPTIONS}
        return None

    def report_section(self, stats, options):
        return "", "<p class=note>hashed: no statistics beyond counts</p>"

    def propose(self, sample):
        why = self.why_hashed(sample)
        if why is None:
            return None
        bins = inferred_bins(sample.distinct)
        return {"type": self.name, "num_bins": bins}, f"{why} hashed into {bins} bins"


@register_type
class IntegerHashed(HashedType):
    """Integers hashed into num_bins bins, read as int64."""

    name = "integer_hashed"
    options = {**HashedType.options, **multivalent.INTEGER_OPTIONS}
    dtype = "int64"
    infer_rank = 50

    def why_hashed(self, sample):
        import pyarrow as pa

        why = sample.identifier_reason() if pa.types.is_integer(sample.kind) else None
        return None if why is None else f"integers, {sample.share}: identifiers ({why});"


@register_type
class StringHashed(HashedType):
    """Strings hashed into num_bins bins."""

    name = "string_hashed"
    dtype = "string"
    infer_rank = 60

    def why_hashed(self, sample):
        if sample.text is None:
            return None
        return f"{sample.what}, {sample.share}: too many for a vocabulary,"
