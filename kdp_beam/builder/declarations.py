"""Between kdp_beam declarations and keras.utils.FeatureSpace features, both ways."""

import keras

# Not exported by keras, but what FeatureSpace.float() uses as its identity preprocessor.
from keras.src.layers.preprocessing.feature_space import TFDIdentity

from kdp_beam import spec as kspec
from kdp_beam.builder.layers import DateEncoding
from kdp_beam.builder.names import layer_name
from kdp_beam.errors import BundleError, SpecError

# Options whose value changes the statistics or the encoding; output_mode only changes
# how the FeatureSpace encodes, so code may differ from the bundle there.
_STATISTICS_OPTIONS = (
    "num_bins",
    "bin_boundaries",
    "max_tokens",
    "num_oov_indices",
    "dtype",
    "missing_token",
    "standardize",
    "split",
    "ngrams",
    "format",
)
_NUMERIC_MISSING = ("fill_value", "missing_indicator")


_DTYPES = {"float": "float32", "integer": "int64", "string": "string"}


def keras_feature(feature_space_class, name, declaration, statistics=None):
    """The FeatureSpace feature (an unadapted preprocessor) for a declaration; a custom
    feature's layer is built by its plug-in from `statistics`. Layers are named after
    layer_name(name), which any column name has."""
    fs, o, t = feature_space_class, declaration.options, declaration.type
    name = layer_name(name)
    if t == "custom":
        from kdp_beam.plugins import create_statistic

        layer = create_statistic(o["statistic"], o["options"]).build_layer(
            statistics, name=f"{name}_preprocessor"
        )
        return fs.feature(
            dtype=_DTYPES[declaration.column_kind],
            preprocessor=layer,
            output_mode="float",
            statistic=o["statistic"],
            statistic_options=o["options"],
        )
    missing = {k: o[k] for k in _NUMERIC_MISSING if k in o}
    if t == "float":
        return fs.float(name=name, **missing)
    if t == "float_rescaled":
        return fs.float_rescaled(scale=o["scale"], offset=o["offset"], name=name, **missing)
    if t == "float_normalized":
        return fs.float_normalized(name=name, **missing)
    if t == "float_discretized":
        if o["bin_boundaries"] is None:
            return fs.float_discretized(
                o["num_bins"], output_mode=o["output_mode"], name=name, **missing
            )
        feature = fs.float_discretized(
            None,
            bin_boundaries=o["bin_boundaries"],
            output_mode=o["output_mode"],
            name=name,
            **missing,
        )
        # keras needs num_bins to size a one-hot output, even with fixed boundaries.
        feature.preprocessor.num_bins = len(o["bin_boundaries"]) + 1
        return feature
    if t in ("integer_categorical", "string_categorical"):
        return getattr(fs, t)(
            max_tokens=o["max_tokens"],
            num_oov_indices=o["num_oov_indices"],
            output_mode=o["output_mode"],
            name=name,
            missing_token=o["missing_token"],
        )
    if t in ("text", "date"):
        return getattr(fs, t)(name=name, **o)
    if t in ("string_hashed", "integer_hashed"):
        return getattr(fs, t)(o["num_bins"], output_mode=o["output_mode"], name=name)
    if t == "passthrough":
        return fs.passthrough(dtype=o["dtype"], name=name)
    raise AssertionError(f"unhandled feature type {t}")


def declaration_of(name, feature):
    """The kdp_beam declaration of a keras FeatureSpace feature, from its preprocessor.

    Returns None for a custom preprocessor kdp_beam has no analyzer for. Raises SpecError
    naming the feature when its options are invalid (kdp_beam.spec's rules).
    """
    try:
        return _declaration_of(feature)
    except SpecError as e:
        raise SpecError(f"feature {name!r}: {e}") from None


def _declaration_of(feature):
    p, mode = feature.preprocessor, feature.output_mode
    if getattr(feature, "statistic", None) is not None:
        return kspec.Feature(
            "custom", statistic=feature.statistic, options=feature.statistic_options
        )
    layers = keras.layers
    numeric = {
        "fill_value": getattr(feature, "fill_value", None),
        "missing_indicator": getattr(feature, "missing_indicator", False),
    }
    if isinstance(p, layers.Normalization):
        return kspec.Feature("float_normalized", **numeric)
    if isinstance(p, layers.Discretization):
        if p.summary is not None:  # adaptable: boundaries come from the data
            return kspec.Feature(
                "float_discretized", num_bins=p.num_bins, output_mode=mode, **numeric
            )
        return kspec.Feature(
            "float_discretized", bin_boundaries=list(p.bin_boundaries), output_mode=mode, **numeric
        )
    if isinstance(p, (layers.StringLookup, layers.IntegerLookup)):
        kind = "string" if isinstance(p, layers.StringLookup) else "integer"
        return kspec.Feature(
            f"{kind}_categorical",
            max_tokens=p.max_tokens,
            num_oov_indices=p.num_oov_indices,
            output_mode=mode,
            missing_token=getattr(feature, "missing_token", None),
        )
    if isinstance(p, layers.TextVectorization):
        if callable(p._standardize) or callable(p._split) or p._split == "character":
            return None  # custom tokenisation: adapted the keras way
        ngrams = p._ngrams_arg
        return kspec.Feature(
            "text",
            max_tokens=p._lookup_layer.max_tokens,
            output_mode=p._output_mode,
            ngrams=list(ngrams) if isinstance(ngrams, tuple) else ngrams,
            sequence_length=p._output_sequence_length,
            standardize=p._standardize,
            split=p._split,
        )
    if isinstance(p, DateEncoding):
        return kspec.Feature(
            "date",
            format=p.format,
            components=p.components,
            missing_indicator=p.missing_indicator,
        )
    if isinstance(p, layers.Hashing):
        kind = "string" if feature.dtype == "string" else "integer"
        return kspec.Feature(f"{kind}_hashed", num_bins=p.num_bins, output_mode=mode)
    if isinstance(p, layers.Rescaling):
        return kspec.Feature(
            "float_rescaled", scale=float(p.scale), offset=float(p.offset), **numeric
        )
    if isinstance(p, TFDIdentity):
        if feature.dtype == "float32" and mode == "float":
            return kspec.Feature("float", **numeric)
        return kspec.Feature("passthrough", dtype=feature.dtype)
    return None


def spec_of(feature_space):
    """The FeatureSpec of a keras FeatureSpace's features and crosses (custom features,
    and crosses of them, left out)."""
    declarations = {}
    for name, feature in feature_space.features.items():
        declaration = declaration_of(name, feature)
        if declaration is not None:
            declarations[name] = declaration
    crosses = [
        kspec.Cross(c.feature_names, c.crossing_dim, c.output_mode)
        for c in feature_space.crosses
        if all(name in declarations for name in c.feature_names)
    ]
    return kspec.FeatureSpec(
        declarations,
        crosses=crosses,
        output_mode=feature_space.output_mode,
        crossing_dim=feature_space.crossing_dim,
        hashing_dim=feature_space.hashing_dim,
        num_discretization_bins=feature_space.num_discretization_bins,
    )


def check_compatible(name, code_declaration, bundle_spec, source):
    """Raises BundleError when the bundle did not analyse `name` as the code declares it."""
    if name not in bundle_spec.features:
        raise BundleError(
            f"feature {name!r} is not in the bundle at {source}; it has "
            f"{sorted(bundle_spec.features)}. Re-run the analysis with this feature declared."
        )
    if code_declaration.type == "custom" or bundle_spec.features[name].type == "custom":
        if code_declaration != bundle_spec.features[name]:
            raise BundleError(
                f"feature {name!r} is declared {code_declaration.to_json()} here, but the "
                f"bundle at {source} analysed {bundle_spec.features[name].to_json()}."
            )
        return
    # Compare as keras sees them, so equivalent declarations (float / passthrough float32)
    # agree.
    from kdp_beam.builder.feature_space import FeatureSpace

    analysed = declaration_of(name, keras_feature(FeatureSpace, name, bundle_spec.features[name]))
    if analysed.type != code_declaration.type:
        raise BundleError(
            f"feature {name!r} is declared {code_declaration.type} here, but the bundle at "
            f"{source} analysed it as {analysed.type}. Re-run the analysis or fix the code."
        )
    for option in _STATISTICS_OPTIONS:
        here, there = code_declaration.options.get(option), analysed.options.get(option)
        if here != there:
            raise BundleError(
                f"feature {name!r}: {option}={here!r} here, but the bundle at {source} was "
                f"analysed with {option}={there!r}. Re-run the analysis or fix the code."
            )
