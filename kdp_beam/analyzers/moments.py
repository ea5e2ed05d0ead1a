"""Mean, variance, min and max in float64 with a numerically stable parallel merge."""

import numpy as np

from kdp_beam.slots import SlotsState


def finite_values(column):
    """The non-null values of a numeric column as float64, split from NaN and +-inf.

    Returns (values, nan_count, inf_count).
    """
    values = column.drop_null().to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    finite = np.isfinite(values)
    if finite.all():
        return values, 0, 0
    nan_count = int(np.isnan(values).sum())
    return values[finite], nan_count, int(values.size - finite.sum()) - nan_count


class MomentsAccumulator(SlotsState):
    """n, mean, M2 (sum of squared deviations), min, max over finite values.

    The mean is held relative to a pivot (a data value): the difference of two means of
    values ~1.6e9 is then exact to the spread's precision, not to 1.6e9's (whose float64
    spacing, 2.4e-7, would otherwise cost ~1e-11 of relative variance in every merge).
    """

    __slots__ = ("n", "pivot", "mean", "m2", "min", "max", "nan_count", "inf_count")

    def __init__(self):
        self.n, self.pivot, self.mean, self.m2 = 0, 0.0, 0.0, 0.0
        self.min, self.max = np.inf, -np.inf
        self.nan_count = self.inf_count = 0


    def merge_moments(self, n, pivot, mean, m2, min_, max_):
        """Chan, Golub & LeVeque (1979), "Updating formulae and a pairwise algorithm for
        computing sample variances": exact to float64 rounding for any offset, unlike the
        sum-of-squares formula that loses everything on values ~1e8 with spread ~1e3."""
        if n == 0:
            return
        if self.n == 0:
            self.pivot = pivot
        total = self.n + n
        delta = ((pivot - self.pivot) + mean) - self.mean
        self.mean += delta * (n / total)
        self.m2 += m2 + delta * delta * (self.n * n / total)
        self.n = total
        self.min = min(self.min, min_)
        self.max = max(self.max, max_)


class MomentsAnalyzer:
    """Population mean and variance (as keras Normalization uses), min and max.

    NaN and +-inf are counted (``nan_count``, ``inf_count``) and left out of every moment;
    nulls are left out too (counted by CountAnalyzer). Each batch is reduced with a
    two-pass mean/M2 in numpy, then merged with Chan et al.'s formula.
    """

    def create_accumulator(self):
        return MomentsAccumulator()

    def add_batch(self, acc, column):
        values, nan_count, inf_count = finite_values(column)
        acc.nan_count += nan_count
        acc.inf_count += inf_count
        if values.size:
            pivot = values[0]
            shifted = values - pivot
            mean = shifted.mean()
            deviations = shifted - mean
            acc.merge_moments(
                values.size,
                float(pivot),
                float(mean),
                float(deviations @ deviations),
                float(values.min()),
                float(values.max()),
            )
        return acc

    def merge_accumulators(self, accs):
        merged = MomentsAccumulator()
        for acc in accs:
            merged.merge_moments(acc.n, acc.pivot, acc.mean, acc.m2, acc.min, acc.max)
            merged.nan_count += acc.nan_count
            merged.inf_count += acc.inf_count
        return merged

    def to_state(self, acc):
        """JSON-able state (min and max as null while empty: JSON has no infinity)."""
        state = {slot: getattr(acc, slot) for slot in MomentsAccumulator.__slots__}
        if acc.n == 0:
            state["min"] = state["max"] = None
        return {k: (float(v) if isinstance(v, np.floating) else v) for k, v in state.items()}

    def from_state(self, state):
        acc = MomentsAccumulator()
        for slot in MomentsAccumulator.__slots__:
            if state[slot] is not None:
                setattr(acc, slot, state[slot])
        return acc

    def finalize(self, acc):
        empty = acc.n == 0
        return {
            "nan_count": acc.nan_count,
            "inf_count": acc.inf_count,
            "value_count": acc.n,
            "mean": None if empty else acc.pivot + acc.mean,
            "variance": None if empty else float(max(acc.m2, 0.0) / acc.n),
            "min": None if empty else float(acc.min),
            "max": None if empty else float(acc.max),
        }
