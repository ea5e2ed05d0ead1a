"""Distribution-aware numbers (docs/distribution.md): float_quantile_normal (x ->
Phi^-1(F(x)), F from the pass's quantile sketch), float_ple (piecewise-linear encoding over
the quantile bins) and float_auto (a transform chosen from the column's shape, then the
z-score). kdp_beam's extensions beyond keras.utils.FeatureSpace; one value per row, with
the number types' missing-value policy (fill_value: None for the mean; missing_indicator).
"""

from kdp_beam.errors import SpecError
from kdp_beam.feature_types.numeric import MAX_QUANTILE_BINS, NumberType
from kdp_beam.feature_types.options import boolean, float32, integer, one_of, shown
from kdp_beam.feature_types.registry import register_type

DEFAULT_NUM_QUANTILES = 1000  # the sketch's rank error (0.1%) is one step of the CDF
DEFAULT_PLE_BINS = 8
TRANSFORMS = ("none", "log1p", "signed_log", "yeo_johnson", "quantile_normal")
_OPTIONS = {"fill_value": None, "missing_indicator": False, "multivalent": False}
_QUANTILES_WHY = " (points from the data are within the quantile sketch's 0.1% rank error)"


class DistributionType(NumberType):
    """What the three share: one value per row, a kdp_beam layer as preprocessor (built by
    `layer`), the number types' missing policy, summary and report."""

    encoding_options = ("fill_value", "missing_indicator")

    def validate(self, options):
        if options["multivalent"] is not False:
            raise SpecError(
                f"{self.name} encodes one value per row; for a list of numbers declare "
                f"another number type with multivalent true (docs/multivalent.md), got multivalent={shown(options['multivalent'])}"
            )
        boolean(options["missing_indicator"], "missing_indicator")
        if options["fill_value"] is not None:
            float32(options["fill_value"], "fill_value (null: the mean)")
        return options

    def keras_own(self, feature_space, name, options, dtype=None, **policy):
        declaration = {"type": self.name, **options}
        return feature_space.feature("float32", self.layer(name, options), "float", declaration=declaration, **policy)

    def layer(self, name, options):
        raise NotImplementedError

    def check_points(self, stats, key):
        """`key`: finite, sorted points within [min, max], none without a value."""
        points = stats.numbers(key)
        if bool(points) != bool(stats.get("value_count")):
            stats.fail(key, f"has {len(points)} points, but {stats.get('value_count')} values were counted")
        if points and not (points[0] >= stats.get("min") and points[-1] <= stats.get("max")):
            stats.fail(key, f"lie outside [min, max] = [{stats.get('min')!r}, {stats.get('max')!r}]")
        epsilon = stats.number("quantile_epsilon", nullable=False)
        if not 0 < epsilon < 1:
            stats.fail("quantile_epsilon", f"is {epsilon!r}, not a rank error in (0, 1)")
        return points


def _num_quantiles(options):
    return integer(options["num_quantiles"], "num_quantiles", 2, MAX_QUANTILE_BINS, _QUANTILES_WHY)


@register_type
class FloatQuantileNormal(DistributionType):
    """Phi^-1(F(x)): F the CDF through `num_quantiles` + 1 quantile points from the pass,
    clipped as scikit-learn's QuantileTransformer; close to N(0, 1) whatever the shape."""

    name = "float_quantile_normal"
    options = {"num_quantiles": DEFAULT_NUM_QUANTILES, **_OPTIONS}

    def validate(self, options):
        options["num_quantiles"] = _num_quantiles(options)
        return super().validate(options)

    def analyzers(self, options, profile=False):
        from kdp_beam.analyzers.distribution import QuantilePointsAnalyzer

        return {**super().analyzers(options, profile), "quantiles": QuantilePointsAnalyzer(options["num_quantiles"])}

    def check_statistics(self, stats, options, profile=False):
        super().check_statistics(stats, options, profile)
        points = self.check_points(stats, "quantiles")
        if points and len(points) != options["num_quantiles"] + 1:
            stats.fail("quantiles", f"has {len(points)} points, not num_quantiles + 1 = {options['num_quantiles'] + 1}")

    def layer(self, name, options):
        from kdp_beam.builder.distribution import QuantileNormal

        return QuantileNormal(name=f"{name}_preprocessor")

    def set_statistics(self, preprocessor, stats, options):
        preprocessor.set_statistics(stats["quantiles"])


@register_type
class FloatPle(DistributionType):
    """Piecewise-linear encoding (Gorishniy et al. 2022): `num_bins` components in [0, 1]
    over the edges [min, bin_boundaries..., max] of equal-frequency bins from the pass."""

    name = "float_ple"
    options = {"num_bins": DEFAULT_PLE_BINS, **_OPTIONS}

    def validate(self, options):
        options["num_bins"] = integer(options["num_bins"], "num_bins", 1, MAX_QUANTILE_BINS, _QUANTILES_WHY)
        return super().validate(options)

    def analyzers(self, options, profile=False):
        from kdp_beam.analyzers.quantiles import QuantilesAnalyzer

        return {**super().analyzers(options, profile), "quantiles": QuantilesAnalyzer(options["num_bins"])}

    def check_statistics(self, stats, options, profile=False):
        from kdp_beam.bundle import checks

        super().check_statistics(stats, options, profile)
        checks.check_quantiles(stats, options["num_bins"])

    def layer(self, name, options):
        from kdp_beam.builder.distribution import PiecewiseLinearEncoding

        return PiecewiseLinearEncoding(options["num_bins"], name=f"{name}_preprocessor")

    @staticmethod
    def edges(stats):
        """[min, bin_boundaries..., max], or [] without a value."""
        if stats.get("min") is None:
            return []
        return [stats["min"], *stats["bin_boundaries"], stats["max"]]

    def set_statistics(self, preprocessor, stats, options):
        edges = self.edges(stats)
        if len(edges) == 2 and options["num_bins"] > 1:  # no boundaries: the sketch had one value
            edges = [edges[0]] * options["num_bins"] + [edges[1]]
        preprocessor.set_statistics(edges)

    def report_section(self, stats, options):
        from kdp_beam.tools import report_parts

        details, chart = super().report_section(stats, options)
        if stats.get("profile_quantiles") is None and self.edges(stats):
            chart = report_parts.histogram(self.edges(stats), "distribution (the encoding's bins)")
        return details, chart


@register_type
class FloatAuto(DistributionType):
    """A transform chosen from the column's shape (none, log1p, signed_log, yeo_johnson,
    quantile_normal; `transform` declares one), then (t(x) - mean) / std; the choice and its
    reason are in the bundle."""

    name = "float_auto"
    options = {"transform": None, "num_quantiles": DEFAULT_NUM_QUANTILES, **_OPTIONS}

    def validate(self, options):
        one_of(options["transform"], "transform (null: chosen from the data)", (None, *TRANSFORMS))
        options["num_quantiles"] = _num_quantiles(options)
        return super().validate(options)

    def analyzers(self, options, profile=False):
        from kdp_beam.analyzers.distribution import TransformAnalyzer

        analyzer = TransformAnalyzer(options["num_quantiles"], options["transform"])
        return {**super().analyzers(options, profile), "quantiles": analyzer}

    def check_statistics(self, stats, options, profile=False):
        super().check_statistics(stats, options, profile)
        self.check_points(stats, "quantiles")
        transform = stats.required("transform")
        if transform not in TRANSFORMS or (options["transform"] not in (None, transform)):
            stats.fail("transform", f"is {transform!r:.80}, not {options['transform'] or 'one of ' + str(list(TRANSFORMS))}")
        if not isinstance(stats.required("reason"), str):
            stats.fail("reason", "is not a sentence")
        stats.number("transform_mean", nullable=False)
        if not stats.number("transform_std", nullable=False) > 0:
            stats.fail("transform_std", "is not positive")
        lam = stats.number("yeo_johnson_lambda")
        if (lam is None) != (transform != "yeo_johnson") or (lam is not None and not -5 <= lam <= 5):
            stats.fail("yeo_johnson_lambda", f"is {lam!r} for transform {transform!r} (a lambda in [-5, 5] for yeo_johnson only)")
        candidates = stats.required("candidate_skewness")
        if not isinstance(candidates, dict) or sorted(candidates) != sorted(TRANSFORMS):
            stats.fail("candidate_skewness", f"is {candidates!r:.80}, not a skewness per transform {list(TRANSFORMS)}")

    def layer(self, name, options):
        from kdp_beam.builder.distribution import DistributionTransform

        return DistributionTransform(name=f"{name}_preprocessor")

    def set_statistics(self, preprocessor, stats, options):
        preprocessor.set_statistics(
            stats["transform"], stats["transform_mean"], stats["transform_std"],
            stats["yeo_johnson_lambda"], stats["quantiles"],
        )

    def summary(self, stats, options):
        described = super().summary(stats, options)
        before, after = stats["candidate_skewness"]["none"], stats["candidate_skewness"][stats["transform"]]
        if before is None or after is None or stats["reason"] == "declared":
            chosen = f"{stats['transform']} ({stats['reason']})" if stats["reason"] == "declared" else stats["transform"]
        elif stats["transform"] == "none":
            chosen = f"none (skew {before:.2g})"
        else:
            chosen = f"{stats['transform']} (skew {before:.2g} -> {after:.2g})"
        return ", ".join(part for part in (described, chosen) if part)

    def report_section(self, stats, options):
        from kdp_beam.tools import report_parts

        details, chart = super().report_section(stats, options)
        chosen = [("transform", stats["transform"]), ("reason", stats["reason"])]
        if stats["yeo_johnson_lambda"] is not None:
            chosen.append(("Yeo-Johnson λ", stats["yeo_johnson_lambda"]))
        chosen += [("transform mean", stats["transform_mean"]), ("transform std", stats["transform_std"])]
        candidates = report_parts.rows([(f"skewness after {t}", s) for t, s in stats["candidate_skewness"].items()])
        return details + report_parts.rows(chosen) + candidates, chart
