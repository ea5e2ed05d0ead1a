"""Numbers: float, float_rescaled, float_normalized, float_discretized (keras'
FeatureSpace types), read as float64, with kdp_beam's missing-value policy: a missing
value (null, NaN) is filled with `fill_value` (None: the mean from the pass), and
`missing_indicator` adds a 0/1 column (docs/missing-values.md)."""

from kdp_beam.bundle.checks import SHARES
from kdp_beam.errors import SpecError
from kdp_beam.feature_types import multivalent
from kdp_beam.feature_types.base import FeatureType
from kdp_beam.feature_types.options import (
    MAX_ENCODED_WIDTH,
    ONE_HOT_OR_INT,
    as_float32,
    boolean,
    float32,
    integer,
    one_of,
    shown,
)
from kdp_beam.feature_types.registry import register_type

MAX_QUANTILE_BINS = 1000  # bins from the data: 1 / the quantile sketch's rank error
# (analyzers.quantiles.DEFAULT_EPSILON); narrower bins would be the sketch's noise.
_MISSING = {"fill_value": None, "missing_indicator": False, **multivalent.NUMBER_OPTIONS}


class NumberType(FeatureType):
    """What every number type shares: the column, the missing policy, the moments, the
    float32 limits of the model, the summary, the report and infer's view."""

    keras_arguments = ()  # keras' float() and float_normalized() take only a name
    encoding_options = ("fill_value", "missing_indicator", *multivalent.ENCODING_OPTIONS)

    def validate(self, options):
        multivalent.validate(options, pooled=True)
        boolean(options["missing_indicator"], "missing_indicator")
        if options["fill_value"] is not None:
            float32(options["fill_value"], "fill_value (null: the mean)")
            if multivalent.is_multivalent(options) and options["sequence_length"] is not None:
                # FillEmptyRows fills a pooled row only: a sequence would ignore it silently.
                raise SpecError(
                    "fill_value is what a row with no value pools to; a sequence (sequence_length) "
                    "marks such a row by its mask, all 0: leave fill_value out, or pool"
                )
        return options

    def column_kind(self, options):
        return "float"

    def keras_feature(self, feature_space, name, options):
        if multivalent.is_multivalent(options):
            from kdp_beam.builder.multivalent import keras_feature

            return keras_feature(self, feature_space, name, options)
        return self.keras_own(
            feature_space,
            name,
            options,
            fill_value=options["fill_value"],
            missing_indicator=options["missing_indicator"],
        )

    @staticmethod
    def missing_options(feature):
        """The missing-value policy a keras feature record carries (keras' own: none)."""
        return {
            "fill_value": getattr(feature, "fill_value", None),
            "missing_indicator": getattr(feature, "missing_indicator", False),
        }

    def missing_fill(self, options, feature):
        if not self.fills(options):  # a list's sequence: no value is filled, the mask says where
            return (None, True) if options["missing_indicator"] else None
        fill = getattr(feature, "fill", None)  # resolved by an earlier pass, saved with the model
        return (options["fill_value"] if fill is None else fill), options["missing_indicator"]

    @staticmethod
    def fills(options):
        """Whether missing values are filled: one value per row, or a list pooled (a row with
        no value pools to the fill); a list's sequence output is padded instead."""
        return not multivalent.is_multivalent(options) or options["sequence_length"] is None

    def resolved_fill(self, stats, options):
        if not self.fills(options):
            return None
        if options["fill_value"] is not None:
            return options["fill_value"]
        return 0.0 if stats.get("mean") is None else stats["mean"]

    def held_statistics(self, options):
        """The statistics the model holds: the mean when it fills missing values."""
        return ["mean"] if options["fill_value"] is None else []

    def beyond_float32(self, stats, options, inputs=False):
        from kdp_beam.model_limits import first_beyond_float32

        keys = (["min", "max"] if inputs else []) + self.held_statistics(options)
        held = [(key, stats.get(key)) for key in keys]
        held += [("bin boundary", b) for b in stats.get("bin_boundaries") or ()]
        return first_beyond_float32(held)

    def summary(self, stats, options):
        if stats.get("mean") is None:
            return ""
        line = f"mean {stats['mean']:.6g}, range [{stats['min']:.6g}, {stats['max']:.6g}]"
        skewness = stats.get("skewness")  # null: no spread, or an older bundle
        return line if skewness is None else f"{line}, skew {skewness:.2g}"

    def report_section(self, stats, options):
        import math

        from kdp_beam.tools import report_parts

        mean, variance = stats.get("mean"), stats.get("variance")
        std = None if variance is None else math.sqrt(variance)
        pairs = [("mean", mean), ("std", std), ("min", stats.get("min"))]
        points = stats.get("profile_quantiles") or []
        if points:
            for percent in (25, 50, 75):
                pairs.append((f"{percent}%", points[round(percent / 100 * (len(points) - 1))]))
        pairs += [("max", stats.get("max")), ("NaN", stats.get("nan_count")), ("±inf", stats.get("inf_count"))]
        pairs += [("skewness", stats.get("skewness")), ("kurtosis (excess)", stats.get("kurtosis"))]
        pairs += [(f"{key.split('_')[0]} share", stats.get(key)) for key in SHARES]
        chart = report_parts.profile_histogram(stats)
        if chart is None and stats.get("bin_boundaries"):
            edges = [stats["min"], *stats["bin_boundaries"], stats["max"]]
            chart = report_parts.histogram(edges, "distribution (the discretization bins)")
        return report_parts.rows(pairs), chart or "<p class=note>histogram: analyse with --profile</p>"


@register_type
class Float(NumberType):
    """A number fed to the model as float32 (missing values filled)."""

    name = "float"
    options = {**_MISSING}

    def from_keras(self, feature):
        from kdp_beam.builder.keras_internals import is_identity_layer

        if is_identity_layer(feature.preprocessor) and feature.dtype == "float32" and feature.output_mode == "float":
            return self.missing_options(feature)
        return None


@register_type
class FloatRescaled(NumberType):
    """x * scale + offset."""

    name = "float_rescaled"
    options = {"scale": 1.0, "offset": 0.0, **_MISSING}
    keras_arguments = ("scale", "offset")
    encoding_options = ("scale", "offset", *NumberType.encoding_options)

    def validate(self, options):
        for arg in ("scale", "offset"):
            float32(options[arg], arg)
        return super().validate(options)

    def from_keras(self, feature):
        import keras

        p = feature.preprocessor
        if isinstance(p, keras.layers.Rescaling):
            return {"scale": float(p.scale), "offset": float(p.offset), **self.missing_options(feature)}
        return None


@register_type
class FloatNormalized(NumberType):
    """(x - mean) / std, with the mean and variance from the pass (exact in float64)."""

    name = "float_normalized"
    options = {**_MISSING}

    def held_statistics(self, options):
        return ["mean", "variance"]

    def from_keras(self, feature):
        import keras

        if isinstance(feature.preprocessor, keras.layers.Normalization):
            return self.missing_options(feature)
        return None

    def set_statistics(self, preprocessor, stats, options):
        if preprocessor.input_mean is not None:
            return  # mean and variance given at construction
        if not preprocessor.built:
            preprocessor.build((None, 1))
        empty = stats["mean"] is None  # no finite value: the identity, as keras' defaults
        preprocessor.adapt_mean.assign([0.0 if empty else stats["mean"]])
        preprocessor.adapt_variance.assign([1.0 if empty else stats["variance"]])
        preprocessor.finalize_state()

    def propose(self, sample):
        import pyarrow as pa

        if pa.types.is_floating(sample.kind):
            return self.name, f"floating point ({sample.share}): normalised with the mean and variance"
        if pa.types.is_integer(sample.kind):  # not few values, not identifiers (ranked after those)
            return self.name, f"integers, {sample.share}: a quantity, normalised"
        return None

    infer_rank = 70


@register_type
class FloatDiscretized(NumberType):
    """Bins: `num_bins` equal-frequency bins from the pass's quantile sketch, or fixed
    `bin_boundaries`."""

    name = "float_discretized"
    options = {"num_bins": None, "bin_boundaries": None, "output_mode": "one_hot", **_MISSING}
    keras_arguments = ("num_bins", "bin_boundaries", "output_mode")
    bare_defaults = {"num_bins": "num_discretization_bins"}
    encoding_options = ("output_mode", *NumberType.encoding_options)

    def validate(self, options):
        one_of(options["output_mode"], "output_mode", ONE_HOT_OR_INT)
        super().validate(options)
        if options["output_mode"] == "int" and options["pooling"] is not None:
            raise SpecError("bin indices (output_mode 'int') are not pooled: give a sequence_length, or output_mode 'one_hot'")
        num_bins, boundaries = options["num_bins"], options["bin_boundaries"]
        if (num_bins is None) == (boundaries is None):
            raise SpecError("give exactly one of num_bins or bin_boundaries")
        if num_bins is not None:
            options["num_bins"] = integer(
                num_bins, "num_bins", 1, MAX_QUANTILE_BINS,
                " (bins from the data are equal-frequency within the quantile sketch's 0.1% "
                "rank error; give bin_boundaries for finer bins)",
            )
            return options
        if not isinstance(boundaries, (list, tuple)) or not 1 <= len(boundaries) < MAX_ENCODED_WIDTH:
            raise SpecError(
                f"bin_boundaries must be a list of 1 to {MAX_ENCODED_WIDTH - 1:,} numbers, "
                f"got {shown(boundaries)}"
            )
        values = [float(float32(b, "each of bin_boundaries")) for b in boundaries]
        rounded = [as_float32(b) for b in values]
        if any(a >= b for a, b in zip(rounded, rounded[1:])):
            raise SpecError(
                "bin_boundaries must increase strictly, also once rounded to the model's "
                f"float32 (a repeated boundary makes a bin no value falls in), got {shown(boundaries)}"
            )
        options["bin_boundaries"] = values
        return options

    def crossable(self, options):
        return not multivalent.is_multivalent(options)

    def analyzers(self, options, profile=False):
        found = super().analyzers(options, profile)
        if options["bin_boundaries"] is None:
            from kdp_beam.analyzers.quantiles import QuantilesAnalyzer

            found["quantiles"] = QuantilesAnalyzer(options["num_bins"])
        return found

    def check_statistics(self, stats, options, profile=False):
        super().check_statistics(stats, options, profile)
        if options["bin_boundaries"] is None:
            from kdp_beam.bundle import checks

            checks.check_quantiles(stats, options["num_bins"])

    def keras_feature(self, feature_space, name, options):
        feature = super().keras_feature(feature_space, name, options)
        if options["bin_boundaries"] is not None and not multivalent.is_multivalent(options):
            # keras needs num_bins to size a one-hot output, even with fixed boundaries.
            feature.preprocessor.num_bins = len(options["bin_boundaries"]) + 1
        return feature

    def from_keras(self, feature):
        import keras

        p = feature.preprocessor
        if not isinstance(p, keras.layers.Discretization):
            return None
        adaptable = p.summary is not None  # boundaries come from the data
        return {
            "num_bins": p.num_bins if adaptable else None,
            "bin_boundaries": None if adaptable else list(p.bin_boundaries),
            "output_mode": feature.output_mode,
            **self.missing_options(feature),
        }

    def set_statistics(self, preprocessor, stats, options):
        if preprocessor.summary is not None:  # boundaries were not fixed at construction
            preprocessor.bin_boundaries = list(stats["bin_boundaries"])
