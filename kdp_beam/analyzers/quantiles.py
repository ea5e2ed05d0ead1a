"""Equal-frequency bin boundaries from a mergeable quantile sketch."""

import base64
import math

import numpy as np
import pyarrow as pa
from tfx_bsl.sketches import QuantilesSketch

from kdp_beam.analyzers.moments import finite_values

DEFAULT_EPSILON = 1e-3
_MAX_NUM_ELEMENTS = 2**40  # the sketch sizes its levels for this many values


class QuantilesAccumulator:
    __slots__ = ("sketch", "n")

    def __init__(self, epsilon):
        self.sketch = QuantilesSketch(epsilon, _MAX_NUM_ELEMENTS, 1)
        self.n = 0

    def __getstate__(self):
        return (self.sketch, self.n)

    def __setstate__(self, state):
        self.sketch, self.n = state


class QuantilesAnalyzer:
    """``num_bins - 1`` boundaries splitting the finite values into equal-frequency bins.

    Uses tfx_bsl's QuantilesSketch: each boundary's rank is within ``epsilon * n`` of the
    exact quantile's rank (n = number of finite values). NaN, +-inf and nulls are left out.

    A batch of more than ``summary_points`` values is sorted and given to the sketch as
    that many weighted points at equal ranks (each standing for the values since the
    previous one), not value by value: numpy's sort costs a few percent of the sketch's
    insertion of every value. A point stands for at most n / m + 1 values of a batch of n,
    so the summaries move any rank by less than 2 N / m over all N values (a batch is
    summarised only when n > m); with m = 4 / epsilon that is epsilon / 2, and the sketch
    itself runs at epsilon / 2: together within epsilon, as stated.
    """

    def __init__(self, num_bins, epsilon=DEFAULT_EPSILON):
        self.num_bins = num_bins
        self.epsilon = epsilon
        self.summary_points = math.ceil(4 / epsilon)

    def create_accumulator(self):
        return QuantilesAccumulator(self.epsilon / 2)

    def add_batch(self, acc, column):
        return self.add_values(acc, finite_values(column)[0])

    def add_values(self, acc, values):
        """Folds in a float64 numpy array of finite values."""
        n = values.size
        if n > self.summary_points:
            m = self.summary_points
            # The minimum, then ceil(j n / m) for j = 1..m (1-based ranks; the last is the max).
            ranks = np.concatenate([[1], -(-np.arange(1, m + 1, dtype=np.int64) * n // m)])
            weights = np.diff(ranks, prepend=0).astype(np.float64)
            acc.sketch.AddValues(pa.array(np.sort(values)[ranks - 1]), pa.array(weights))
        elif n:
            acc.sketch.AddValues(pa.array(values))
        acc.n += n
        return acc

    def add_counts(self, acc, values, counts):
        """Folds in each of the finite `values` (numpy) seen `counts` times, as one weighted
        entry: few distinct values of many rows cost what the distinct values cost."""
        if values.size:
            acc.sketch.AddValues(pa.array(values, pa.float64()), pa.array(counts, pa.float64()))
            acc.n += int(counts.sum())
        return acc

    def compact(self, acc):
        """The sketch compacted, before it is sent (AnalyzerCombineFn.compact): tfx_bsl
        keeps its summary levels until then, so a worker's accumulator grew with its
        batches (the 10 numeric features of the CSV 10M x 20 read in one process: 4.8 MB
        pickled after 76 batches, 18.6 MB after 610), where a compacted one stays ~4.9 MB.
        Its error bound already allows for one Compact (a no-op on a sketch that has
        merged compacted ones)."""
        acc.sketch.Compact()
        return acc

    def merge_accumulators(self, accs):
        merged = self.create_accumulator()
        for acc in accs:
            merged.sketch.Merge(acc.sketch)
            merged.n += acc.n
        return merged

    def to_state(self, acc):
        """The sketch in tfx_bsl's own serialisation (the bytes its pybind11 state methods
        produce: a protocol buffer, not a Python pickle), base64."""
        return {"sketch": base64.b64encode(acc.sketch.__getstate__()).decode("ascii"), "n": acc.n}

    def from_state(self, state):
        acc = self.create_accumulator()
        acc.sketch = QuantilesSketch.__new__(QuantilesSketch)
        acc.sketch.__setstate__(base64.b64decode(state["sketch"]))
        acc.n = int(state["n"])
        return acc

    def finalize(self, acc):
        boundaries = []
        if acc.n and self.num_bins > 1:
            quantiles = acc.sketch.GetQuantiles(self.num_bins).to_pylist()[0]
            boundaries = quantiles[1:-1]  # drop the min and max
        return {"bin_boundaries": boundaries, "quantile_epsilon": self.epsilon}


class ProfileAnalyzer(QuantilesAnalyzer):
    """The distribution of a numeric feature for reports: min, the 5%, 10%, ... 95%
    quantiles and max (``profile_quantiles``), within ``profile_epsilon`` in rank."""

    def __init__(self, points=20, epsilon=0.01):
        super().__init__(points, epsilon)

    def finalize(self, acc):
        quantiles = acc.sketch.GetQuantiles(self.num_bins).to_pylist()[0] if acc.n else []
        return {"profile_quantiles": quantiles, "profile_epsilon": self.epsilon}
