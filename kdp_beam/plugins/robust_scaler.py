"""A robust scaler: (x - median) / IQR from one pass — a complete plug-in feature type.

    {"type": "robust_scaler", "epsilon": 0.001}

A missing value (null, NaN) is scaled as the median: 0.

Outliers move the mean and variance a normalizer uses; the median and the interquartile
range barely move. They come from tfx_bsl's quantile sketch (rank error `epsilon`), which
merges across workers and keeps its state for kdp-beam merge. Import this module (or
`kdp-beam analyze --plugin kdp_beam.plugins.robust_scaler`) to register the type.
"""

from kdp_beam.errors import SpecError
from kdp_beam.feature_types import FeatureType, register_type


class Quartiles:
    """The analyzer: median, quartiles and IQR of a float column (the four verbs, plus
    to_state / from_state so bundles merge)."""

    def __init__(self, epsilon):
        from kdp_beam.analyzers.quantiles import QuantilesAnalyzer

        self._quantiles = QuantilesAnalyzer(4, epsilon)  # min, q1, median, q3, max

    def create_accumulator(self):
        return self._quantiles.create_accumulator()

    def add_batch(self, acc, column):
        return self._quantiles.add_batch(acc, column)

    def merge_accumulators(self, accs):
        return self._quantiles.merge_accumulators(accs)

    def compact(self, acc):
        return self._quantiles.compact(acc)

    def to_state(self, acc):
        return self._quantiles.to_state(acc)

    def from_state(self, state):
        return self._quantiles.from_state(state)

    def finalize(self, acc):
        if not acc.n:
            return {"median": None, "q1": None, "q3": None, "iqr": None}
        _, q1, median, q3, _ = acc.sketch.GetQuantiles(4).to_pylist()[0]
        return {"median": median, "q1": q1, "q3": q3, "iqr": q3 - q1}


@register_type
class RobustScaler(FeatureType):
    """A number scaled by its median and interquartile range."""

    name = "robust_scaler"
    options = {"epsilon": 1e-3}

    def validate(self, options):
        epsilon = options["epsilon"]
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not 0 < epsilon < 1:
            raise SpecError(f"epsilon must be a rank error in (0, 1), got {epsilon!r:.80}")
        return options

    def column_kind(self, options):
        return "float"

    def analyzers(self, options, profile=False):
        return {**super().analyzers(options, profile), "quartiles": Quartiles(options["epsilon"])}

    def check_statistics(self, stats, options, profile=False):
        super().check_statistics(stats, options, profile)
        values = [stats.number(key) for key in ("q1", "median", "q3")]
        if None not in values and not values[0] <= values[1] <= values[2]:
            stats.fail("median", f"quartiles {values} are not in order")

    def keras_feature(self, feature_space, name, options):
        import keras

        preprocessor = keras.layers.Normalization(name=f"{name}_preprocessor")
        return feature_space.feature("float32", preprocessor, "float", declaration={"type": self.name, **options})

    def missing_fill(self, options, feature):
        # A missing value (NaN, None) becomes the median, as the number types' become the
        # mean: scaled to 0. None until the statistics are known; then saved with the model.
        return getattr(feature, "fill", None), False

    def resolved_fill(self, stats, options):
        return 0.0 if stats["median"] is None else stats["median"]

    def set_statistics(self, preprocessor, stats, options):
        median = stats["median"] or 0.0
        iqr = stats["iqr"] or 1.0  # a constant column: centred, not scaled
        if not preprocessor.built:
            preprocessor.build((None, 1))
        preprocessor.adapt_mean.assign([median])
        preprocessor.adapt_variance.assign([iqr * iqr])
        preprocessor.finalize_state()

    def summary(self, stats, options):
        if stats["median"] is None:
            return ""
        return f"median {stats['median']:.6g}, IQR {stats['iqr']:.6g}"
