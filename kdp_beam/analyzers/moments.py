"""Mean, variance, min and max in float64 with a numerically stable parallel merge."""

import math

import numpy as np

from kdp_beam.errors import InputDataError
from kdp_beam.slots import SlotsState

# Values beyond 2**500 (~3e150) are scaled by a power of two before squaring: (2**512)**2
# is already inf. The scaling is exact, so it costs no precision, and the common case skips it.
_SCALE_ABOVE_EXPONENT = 500


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
    """n, mean, variance (population: mean squared deviation), min, max over finite values.

    The mean is held relative to a pivot (a data value): the difference of two means of
    values ~1.6e9 is then exact to the spread's precision, not to 1.6e9's (whose float64
    spacing, 2.4e-7, would otherwise cost ~1e-11 of relative variance in every merge).
    The variance is held rather than M2 = n * variance, which overflows float64 first: every
    value held is then finite whenever the statistics themselves fit float64.
    """

    __slots__ = ("n", "pivot", "mean", "variance", "min", "max", "nan_count", "inf_count")

    def __init__(self):
        self.n, self.pivot, self.mean, self.variance = 0, 0.0, 0.0, 0.0
        self.min, self.max = np.inf, -np.inf
        self.nan_count = self.inf_count = 0

    def merge_moments(self, n, pivot, mean, variance, min_, max_):
        """Chan, Golub & LeVeque (1979), "Updating formulae and a pairwise algorithm for
        computing sample variances": exact to float64 rounding for any offset, unlike the
        sum-of-squares formula that loses everything on values ~1e8 with spread ~1e3.
        In weights (w_a + w_b = 1) so that no term exceeds the merged variance."""
        if n == 0:
            return
        if self.n == 0:
            self.pivot = pivot
        total = self.n + n
        w_self, w_other = self.n / total, n / total
        delta = ((pivot - self.pivot) + mean) - self.mean
        self.mean += delta * w_other
        self.variance = self.variance * w_self + variance * w_other + delta * (w_self * w_other) * delta
        self.n = total
        self.min = min(self.min, min_)
        self.max = max(self.max, max_)


def _sum_of_squares(deviations):
    """Sum of squares, pairwise (numpy's sum), in place. Not `d @ d` or np.dot: BLAS wakes
    its thread pool for each call, whose spinning cost ~1.5 CPU-s per million rows of 10
    numeric columns on two cores, more than the rest of the analysis."""
    return float(np.square(deviations, out=deviations).sum())


def _ldexp_or_inf(x, exponent):
    """x * 2**exponent, +-inf past float64 (math.ldexp raises instead)."""
    try:
        return math.ldexp(x, exponent)
    except OverflowError:
        return math.copysign(math.inf, x)


class MomentsAnalyzer:
    """Population mean and variance (as keras Normalization uses), min and max.

    NaN and +-inf are counted (``nan_count``, ``inf_count``) and left out of every moment;
    nulls are left out too (counted by CountAnalyzer). Each batch is reduced with a
    two-pass mean/variance in numpy (scaled by a power of two when its values pass ~3e150,
    so no square overflows), then merged with Chan et al.'s formula. Statistics that do not
    fit float64 raise InputDataError in finalize, never a NaN or inf in a bundle.
    """

    def create_accumulator(self):
        return MomentsAccumulator()

    def add_batch(self, acc, column):
        values, nan_count, inf_count = finite_values(column)
        acc.nan_count += nan_count
        acc.inf_count += inf_count
        if values.size:
            low, high = float(values.min()), float(values.max())
            exponent = math.frexp(max(-low, high))[1]
            exponent = exponent if exponent > _SCALE_ABOVE_EXPONENT else 0
            scaled = np.ldexp(values, -exponent) if exponent else values
            shifted = scaled - scaled[0]
            mean = shifted.mean()
            deviations = shifted - mean
            acc.merge_moments(
                values.size,
                float(values[0]),
                _ldexp_or_inf(float(mean), exponent),
                # inf when the batch's own variance exceeds float64: finalize refuses it.
                _ldexp_or_inf(_sum_of_squares(deviations) / values.size, 2 * exponent),
                low,
                high,
            )
        return acc

    def merge_accumulators(self, accs):
        merged = MomentsAccumulator()
        for acc in accs:
            merged.merge_moments(acc.n, acc.pivot, acc.mean, acc.variance, acc.min, acc.max)
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
        """The accumulator of a to_state(), also of the older one that held M2 = n * variance."""
        state = dict(state)
        if "m2" in state:
            m2 = state.pop("m2")
            state["variance"] = m2 / state["n"] if state["n"] else 0.0
        acc = MomentsAccumulator()
        for slot in MomentsAccumulator.__slots__:
            if state[slot] is not None:
                setattr(acc, slot, state[slot])
        return acc

    def finalize(self, acc):
        """The statistics; raises InputDataError when the mean or the variance of finite
        values exceeds float64 (a variance beyond ~1.8e308: values spread beyond ~1e154)."""
        empty = acc.n == 0
        if not empty and not (math.isfinite(acc.pivot + acc.mean) and math.isfinite(acc.variance)):
            raise InputDataError(
                f"the variance of its values (from {acc.min!r} to {acc.max!r}) exceeds the largest "
                "float64 (~1.8e308), so no mean and variance can be stored; scale the column "
                "(divide it by a power of ten) before analysis, or declare it as a category if "
                "the numbers are codes"
            )
        return {
            "nan_count": acc.nan_count,
            "inf_count": acc.inf_count,
            "value_count": acc.n,
            "mean": None if empty else acc.pivot + acc.mean,
            "variance": None if empty else float(max(acc.variance, 0.0)),
            "min": None if empty else float(acc.min),
            "max": None if empty else float(acc.max),
        }
