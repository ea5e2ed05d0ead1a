"""Keras encodings of multivalent features: a list of values per row (docs/multivalent.md).

A multivalent feature's model input is a dense (rows, values) tensor padded with "" (strings),
NaN (numbers) or the declared ``pad_value`` (integers, default -1); FeatureSpace pads a
RaggedTensor, a SparseTensor, lists of lists and arrays of lists to it
(kdp_beam.builder.inputs). A padding position and a missing element are the same there, so
neither is ever a value: a list's encoding is that of the values it holds.

Its FeatureSpace feature's preprocessor is keras' own layer, applied to every position, and
a kdp_beam layer after it (kdp_beam.builder.layers, made by ``values_layer``, called on
the padded input and the preprocessor's output) turns the positions into the row's encoding:

- categoricals: StringLookup / IntegerLookup with the padding as mask_token. "multi_hot"
  (the default) and "count" are keras' own: vocabulary + OOV columns, as the scalar's
  one_hot, the padding dropped; "int" gives each position's index (0 padding, then the OOV
  indices, then the tokens, as TextVectorization) truncated or padded to sequence_length.
- hashed: Hashing into num_bins, the scalar's bins; "multi_hot" / "count" are num_bins
  columns; "int" gives bin + 1 per position (0 padding).
- numbers: the scalar type's layer (identity, Rescaling, Normalization, Discretization)
  on each value; pooled ("mean", the default, "sum", "max") into one value per row (or, for
  discretized numbers with one_hot, the pooled one-hot of their bins); a row with no value pools to
  what a missing scalar encodes to (fill_value, or the mean). With sequence_length, the
  values in order, truncated or padded with 0 (discretized "int": bin + 1, 0
  padding; "one_hot": sequence_length one-hots of num_bins), plus a ``<name>_mask``
  output of sequence_length 0/1 columns, 1 where a value is.
"""

import math

import keras

from kdp_beam.builder.layers import FillEmptyRows, FillMissing, PadValues, PoolValues, ToFloat32
from kdp_beam.errors import SpecError
from kdp_beam.feature_types import multivalent
from kdp_beam.feature_types.categorical import CategoricalType
from kdp_beam.feature_types.hashed import HashedType
from kdp_beam.feature_types.numeric import FloatDiscretized

MASK_SUFFIX = "_mask"


def is_list_feature(feature):
    """Whether a FeatureSpace feature record is a multivalent feature's."""
    return multivalent.is_multivalent(getattr(feature, "declaration", None) or {})


def pad_value(dtype, options):
    """What pads a dense list input of `dtype`: "" (strings), NaN (numbers), pad_value."""
    if dtype == "string":
        return ""
    if dtype.startswith("int"):
        return options["pad_value"]
    return math.nan


def _integer_pad(kind, options):
    return options["pad_value"] if kind.dtype == "int64" else None


def keras_feature(kind, feature_space, name, options):
    """The FeatureSpace feature of a multivalent declaration of one of the 8 list types."""
    declaration = {"type": kind.name, **options}
    mode = options["output_mode"] if "output_mode" in options else None
    if isinstance(kind, CategoricalType):
        lookup = getattr(keras.layers, kind.lookup_layer)(
            num_oov_indices=options["num_oov_indices"],
            mask_token=pad_value(kind.dtype, options),
            output_mode=mode,
            name=f"{name}_preprocessor",
        )
        return feature_space.feature(kind.dtype, lookup, "int" if mode == "int" else "float", declaration=declaration)
    if isinstance(kind, HashedType):
        hashing = keras.layers.Hashing(num_bins=options["num_bins"], name=f"{name}_preprocessor")
        return feature_space.feature(kind.dtype, hashing, "int" if mode == "int" else "float", declaration=declaration)
    # A number type: keras' own layer for one value, applied to each.
    feature = kind.keras_own(
        feature_space, name, options,
        fill_value=options["fill_value"], missing_indicator=options["missing_indicator"],
    )
    feature.output_mode = "int" if mode == "int" else "float"
    return feature


def discretization_bins(options):
    return options["num_bins"] if options["bin_boundaries"] is None else len(options["bin_boundaries"]) + 1


def values_layer(kind, options, name):
    """The kdp_beam layer after a multivalent feature's preprocessor, named `name`."""
    mode = options.get("output_mode")
    length = options["sequence_length"]
    if isinstance(kind, CategoricalType):  # "multi_hot", "count": keras' lookup's own
        if mode != "int":
            return ToFloat32(name=name)
        return PadValues(length, pad_value=_integer_pad(kind, options), name=name)
    if isinstance(kind, HashedType):
        pad = _integer_pad(kind, options)
        if mode == "int":
            return PadValues(length, shift=1, pad_value=pad, name=name)
        pooling = "max" if mode == "multi_hot" else "sum"
        return PoolValues(pooling, depth=options["num_bins"], pad_value=pad, name=name)
    one_hot = isinstance(kind, FloatDiscretized) and mode == "one_hot"
    depth = discretization_bins(options) if one_hot else None
    if length is None:
        return PoolValues(options["pooling"], depth=depth, name=name)
    shift = 1 if isinstance(kind, FloatDiscretized) and mode == "int" else 0
    return PadValues(length, depth=depth, shift=shift, mask=True, name=name)


def fill_layer(options, fill, indicator, name):
    """The layer of a feature's missing-value policy (FeatureType.missing_fill) before its
    preprocessor: FillEmptyRows for a list, FillMissing for one value."""
    kind = FillEmptyRows if multivalent.is_multivalent(options) else FillMissing
    return kind(fill, indicator, name=name)


def check_vocabulary(vocabulary, kind, options):
    """Refuses a vocabulary holding an integer list's pad_value, which the model could not
    tell from the padding (it would never encode)."""
    if kind.dtype == "int64" and options["pad_value"] in vocabulary:
        raise SpecError(
            f"the data holds the value {options['pad_value']}, the pad_value of its lists, which "
            "the model reads as no value; declare a pad_value the data does not hold"
        )
