"""A robust scaler: (x - median) / IQR, from one pass (a plug-in example).

    {"type": "custom", "statistic": "robust_scaler", "options": {"epsilon": 0.001}}

Outliers move the mean and variance a normalizer uses; the median and the interquartile
range barely move. Statistics come from tfx_bsl's quantile sketch (rank error `epsilon`),
which merges across workers and keeps its state for kdp-beam merge.
"""

from kdp_beam.analyzers.quantiles import QuantilesAnalyzer
from kdp_beam.plugins import Statistic, register_statistic


@register_statistic("robust_scaler")
class RobustScaler(Statistic):
    column_kind = "float"

    def __init__(self, epsilon=1e-3):
        super().__init__(epsilon=epsilon)
        self._quantiles = QuantilesAnalyzer(4, epsilon)  # min, q1, median, q3, max

    def create_accumulator(self):
        return self._quantiles.create_accumulator()

    def add_batch(self, acc, column):
        return self._quantiles.add_batch(acc, column)

    def merge_accumulators(self, accs):
        return self._quantiles.merge_accumulators(accs)

    def to_state(self, acc):
        return self._quantiles.to_state(acc)

    def from_state(self, state):
        return self._quantiles.from_state(state)

    def finalize(self, acc):
        if not acc.n:
            return {"median": None, "q1": None, "q3": None, "iqr": None}
        _, q1, median, q3, _ = acc.sketch.GetQuantiles(4).to_pylist()[0]
        return {"median": median, "q1": q1, "q3": q3, "iqr": q3 - q1}

    def build_layer(self, statistics, name):
        import keras

        median = statistics["median"] or 0.0
        iqr = statistics["iqr"] or 1.0  # a constant column: centred, not scaled
        return keras.layers.Normalization(mean=median, variance=iqr * iqr, name=name)
