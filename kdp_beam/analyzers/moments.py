"""Mean, variance, skewness, kurtosis, min, max and the shares of zero, whole, positive and
negative values, in float64 with a numerically stable parallel merge."""

import math

import numpy as np
import pyarrow as pa

from kdp_beam.errors import InputDataError
from kdp_beam.slots import SlotsState

# Batches whose largest |value| is beyond 2**200 (~1.6e60) or below 2**-200 (~6e-61) are
# scaled by a power of two first: beyond, a fourth power (of up to 2**804) would near inf;
# below, the fourth power of a spread of a few ulps would fall under the smallest float64.
# The scaling is exact, so it costs no precision, and the common case skips it.
_SCALE_BEYOND_EXPONENT = 200

# The shares finalize gives, of the finite values (negative: n - zero - positive).
SHARES = ("zero_fraction", "integer_fraction", "positive_fraction", "negative_fraction")
# The slots a kdp_beam 0.4 state has not: None, unknown, once merged with one.
_UNKNOWABLE = ("m3", "m4", "zero_count", "integer_count", "positive_count")


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


def _scale_exponent(low, high):
    """The power of two the central moments of values in [low, high] are held divided by:
    0 unless the largest |value| lies outside 2**+-200. A function of min and max, so every
    batching of the same values holds them at the same scale."""
    exponent = math.frexp(max(-low, high))[1]
    return exponent if abs(exponent) > _SCALE_BEYOND_EXPONENT else 0


class MomentsAccumulator(SlotsState):
    """n, mean, the central moments m2 (the population variance), m3, m4 (mean cubed and
    fourth-power deviation), min, max over finite values; counts of zero, whole and
    positive values.

    The mean is held relative to a pivot (a data value): the difference of two means of
    values ~1.6e9 is then exact to the spread's precision, not to 1.6e9's (whose float64
    spacing, 2.4e-7, would otherwise cost ~1e-11 of relative variance in every merge).
    The central moments are held normalised (M_k / n, not the sums M_k, which overflow
    float64 first), and divided by 2**(k * _scale_exponent(min, max)): every value held is
    then finite, and no fourth power underflows, whenever the statistics themselves are.
    m3, m4 and the counts are None when unknown: merged from a kdp_beam 0.4 state.
    """

    __slots__ = (
        "n", "pivot", "mean", "variance", "min", "max", "nan_count", "inf_count",
        "m3", "m4", "zero_count", "integer_count", "positive_count",
    )  # fmt: skip

    def __init__(self):
        self.n, self.pivot, self.mean, self.variance = 0, 0.0, 0.0, 0.0
        self.min, self.max = np.inf, -np.inf
        self.nan_count = self.inf_count = 0
        self.m3 = self.m4 = 0.0
        self.zero_count = self.integer_count = self.positive_count = 0

    def exponent(self):
        return _scale_exponent(self.min, self.max) if self.n else 0

    def rescaled(self, exponent):
        """(m2, m3, m4) held at 2**exponent (>= its own: exact, or underflows only where
        the other side's moments outweigh these by ~2**-1000)."""
        shift = self.exponent() - exponent
        if not shift:
            return self.variance, self.m3, self.m4
        m3, m4 = (None, None) if self.m3 is None else (math.ldexp(self.m3, 3 * shift), math.ldexp(self.m4, 4 * shift))
        return math.ldexp(self.variance, 2 * shift), m3, m4

    def merge(self, other):
        """Adds `other`'s values. Chan, Golub & LeVeque (1979), "Updating formulae and a
        pairwise algorithm for computing sample variances", for m2, and its extension to
        m3 and m4 by Pébay (2008), "Formulas for robust, one-pass parallel computation of
        covariances and arbitrary-order statistical moments" (SAND2008-6212, eq. 3.1 and
        the M4 update of section 3): exact to float64 rounding for any offset, unlike the
        power-sum formulas that lose everything on values ~1e8 with spread ~1e3. In weights
        (w_a + w_b = 1, each M_k / n) so that no term exceeds the merged moment."""
        if other.n == 0:
            return
        if self.n == 0:
            self.pivot = other.pivot
        low, high = min(self.min, other.min), max(self.max, other.max)
        exponent = _scale_exponent(low, high)
        m2_a, m3_a, m4_a = self.rescaled(exponent)
        m2_b, m3_b, m4_b = other.rescaled(exponent)
        total = self.n + other.n
        w_a, w_b = self.n / total, other.n / total
        delta = ((other.pivot - self.pivot) + other.mean) - self.mean
        self.mean += delta * w_b
        d = math.ldexp(delta, -exponent) if exponent else delta
        both = w_a * w_b
        if m3_a is None or m3_b is None:
            self.m3 = self.m4 = None
        else:
            self.m4 = (
                m4_a * w_a + m4_b * w_b
                + both * (w_a * w_a - w_a * w_b + w_b * w_b) * d**4
                + 6 * both * (d * d) * (w_a * m2_b + w_b * m2_a)
                + 4 * both * d * (m3_b - m3_a)
            )  # fmt: skip
            self.m3 = m3_a * w_a + m3_b * w_b + both * (w_a - w_b) * d**3 + 3 * both * d * (m2_b - m2_a)
        self.variance = m2_a * w_a + m2_b * w_b + d * both * d
        for count in ("zero_count", "integer_count", "positive_count"):
            mine, theirs = getattr(self, count), getattr(other, count)
            setattr(self, count, None if mine is None or theirs is None else mine + theirs)
        self.n = total
        self.min, self.max = low, high


def _ldexp_or_inf(x, exponent):
    """x * 2**exponent, +-inf past float64 (math.ldexp raises instead)."""
    try:
        return math.ldexp(x, exponent)
    except OverflowError:
        return math.copysign(math.inf, x)


class MomentsAnalyzer:
    """Population mean, variance (as keras Normalization uses), skewness and excess
    kurtosis, min, max, and the shares of zero, whole, positive and negative values.

    NaN and +-inf are counted (``nan_count``, ``inf_count``) and left out of every moment;
    nulls are left out too (counted by CountAnalyzer). Each batch is reduced with a
    two-pass computation in numpy (scaled by a power of two when its values pass 2**200,
    so no fourth power overflows), then merged with Chan et al.'s and Pébay's formulas.
    Statistics that do not fit float64 raise InputDataError in finalize, never a NaN or
    inf in a bundle.
    """

    def create_accumulator(self):
        return MomentsAccumulator()

    def add_batch(self, acc, column):
        values, nan_count, inf_count = finite_values(column)
        acc.nan_count += nan_count
        acc.inf_count += inf_count
        return self.add_values(acc, values, whole=pa.types.is_integer(column.type))

    def add_values(self, acc, values, whole=False):
        """Folds a float64 numpy array of finite values into `acc` (`whole`: they are known
        to be whole numbers, read from an integer column). Returns acc."""
        if not values.size:
            return acc
        batch = MomentsAccumulator()
        batch.n, batch.pivot = values.size, float(values[0])
        batch.min, batch.max = float(values.min()), float(values.max())
        exponent = _scale_exponent(batch.min, batch.max)
        scaled = np.ldexp(values, -exponent) if exponent else values
        shifted = scaled - scaled[0]
        mean = shifted.mean()
        batch.mean = _ldexp_or_inf(float(mean), exponent)
        # Sums without BLAS (not `d @ d` or np.dot): BLAS wakes its thread pool for each
        # call, whose spinning cost ~1.5 CPU-s per million rows of 10 numeric columns on
        # two cores, more than the rest of the analysis. numpy's sum is pairwise.
        deviations = np.subtract(shifted, mean, out=shifted)
        squares = np.square(deviations)
        batch.variance = float(squares.sum()) / values.size
        batch.m3 = float(np.multiply(squares, deviations, out=deviations).sum()) / values.size
        batch.m4 = float(np.square(squares, out=squares).sum()) / values.size
        batch.zero_count = int(np.count_nonzero(values == 0))
        batch.positive_count = int(np.count_nonzero(values > 0))
        if whole:
            batch.integer_count = values.size
        else:  # into the spent deviations: no new array
            batch.integer_count = int(np.count_nonzero(np.floor(values, out=deviations) == values))
        acc.merge(batch)
        return acc

    def merge_accumulators(self, accs):
        merged = MomentsAccumulator()
        for acc in accs:
            merged.merge(acc)
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
        """The accumulator of a to_state(); also of kdp_beam 0.4's, without m3, m4 and the
        counts (unknown: None) and with an unscaled variance, and of the older one that
        held M2 = n * variance."""
        state = dict(state)
        if "m2" in state:
            m2 = state.pop("m2")
            state["variance"] = m2 / state["n"] if state["n"] else 0.0
        acc = MomentsAccumulator()
        for slot in MomentsAccumulator.__slots__:
            if slot in state and (state[slot] is not None or slot in _UNKNOWABLE):
                setattr(acc, slot, state[slot])
        if "m3" not in state and acc.n:  # kdp_beam 0.4: its shape is unknown
            acc.variance = math.ldexp(acc.variance, -2 * acc.exponent())
            for slot in _UNKNOWABLE:
                setattr(acc, slot, None)
        return acc

    def finalize(self, acc):
        """The statistics; raises InputDataError when the mean or the variance of finite
        values exceeds float64 (a variance beyond ~1.8e308: values spread beyond ~1e154).
        Skewness and kurtosis are ratios of moments held at one scale, so they are right
        also where m4 itself (beyond values ~1e77) would not fit float64."""
        empty = acc.n == 0
        variance = _ldexp_or_inf(max(acc.variance, 0.0), 2 * acc.exponent())
        if not empty and not (math.isfinite(acc.pivot + acc.mean) and math.isfinite(variance)):
            raise InputDataError(
                f"the variance of its values (from {acc.min!r} to {acc.max!r}) exceeds the largest "
                "float64 (~1.8e308), so no mean and variance can be stored; scale the column "
                "(divide it by a power of ten) before analysis, or declare it as a category if "
                "the numbers are codes"
            )
        # Undefined without spread (a constant column, a single value); unknown after a
        # merge with a kdp_beam 0.4 state.
        shaped = acc.variance > 0 and acc.m3 is not None
        shares = dict.fromkeys(SHARES)
        if not empty and acc.zero_count is not None:
            negative = acc.n - acc.zero_count - acc.positive_count
            counts = (acc.zero_count, acc.integer_count, acc.positive_count, negative)
            shares = {key: count / acc.n for key, count in zip(SHARES, counts)}
        return {
            "nan_count": acc.nan_count,
            "inf_count": acc.inf_count,
            "value_count": acc.n,
            "mean": None if empty else acc.pivot + acc.mean,
            "variance": None if empty else float(variance),
            "min": None if empty else float(acc.min),
            "max": None if empty else float(acc.max),
            "skewness": acc.m3 / acc.variance**1.5 if shaped else None,
            "kurtosis": acc.m4 / acc.variance**2 - 3 if shaped else None,
            **shares,
        }
