"""The statistics of the distribution-aware number types (docs/distribution.md): the
quantile points of the quantile-normal map, and the choice of a transform.

No TensorFlow: the transforms' maths here is numpy (the layers' TensorFlow twins are in
kdp_beam.builder.distribution, tested equal).
"""

import math
import statistics

import numpy as np

from kdp_beam.analyzers.moments import MomentsAnalyzer, finite_values
from kdp_beam.analyzers.quantiles import QuantilesAnalyzer
from kdp_beam.errors import InputDataError
from kdp_beam.slots import SlotsState

# The transforms chosen from, simplest first: a near-tie goes to the simpler.
TRANSFORMS = ("none", "log1p", "signed_log", "yeo_johnson", "quantile_normal")
PARAMETRIC = TRANSFORMS[:4]
# A column this close to normal keeps the plain z-score (|skewness|, |excess kurtosis|).
NORMAL_SKEWNESS = 0.5
NORMAL_KURTOSIS = 1.0
# Candidates within this of the smallest |skewness| count as tied (the simpler wins).
NEAR_TIE = 0.05
# scikit-learn PowerTransformer's bracket for the Yeo-Johnson lambda.
LAMBDA_BOUNDS = (-5.0, 5.0)
BOUNDS_THRESHOLD = 1e-7  # the CDF's clip, as kdp_beam.builder.distribution's
# The sketch's points the Yeo-Johnson fit and the sketched candidates' shapes are measured
# on, whatever num_quantiles the layer keeps: the sketch's 0.1% rank error allows them at
# no cost, and fewer (num_quantiles 2 gives 3 points) bias them. At the midpoints of
# equal-mass intervals, ranks (i + 1/2) / 1000: min and max, where the quantile-normal map
# jumps to its clip (about +-5.2), stand for one row each, not for 1/2000 of the data.
FIT_QUANTILES = 1000


class QuantilePointsAnalyzer(QuantilesAnalyzer):
    """``quantiles``: the n + 1 points [min, q_1/n, ..., max] at ranks 0, 1/n, ..., 1 of
    the finite values (empty when there is none), within ``quantile_epsilon`` in rank."""

    def finalize(self, acc):
        return {"quantiles": self.points(acc), "quantile_epsilon": self.epsilon}

    def points(self, acc):
        return acc.sketch.GetQuantiles(self.num_bins).to_pylist()[0] if acc.n else []


# --- the transforms, in numpy ---------------------------------------------------------------


def signed_log(x):
    return np.sign(x) * np.log1p(np.abs(x))


def yeo_johnson(x, lam):
    """Yeo & Johnson (2000), "A new family of power transformations to improve normality
    or symmetry", Biometrika 87(4), eq. 2 (expm1 / log1p: exact for small x, and for
    lambda near 0 or 2)."""
    x = np.asarray(x, np.float64)
    positive = x >= 0
    up, down = np.log1p(np.where(positive, x, 0.0)), np.log1p(np.where(positive, 0.0, -x))
    with np.errstate(over="ignore", invalid="ignore"):
        upper = up if lam == 0 else np.expm1(lam * up) / lam
        lower = -down if lam == 2 else -np.expm1((2.0 - lam) * down) / (2.0 - lam)
    return np.where(positive, upper, lower)


def quantile_normal(x, quantiles):
    """Phi^-1(F(x)), F linear through `quantiles` at equal ranks, averaged both ways where
    points repeat and clipped to [1e-7, 1 - 1e-7], as scikit-learn's QuantileTransformer
    (and the QuantileNormal layer) compute it."""
    q = np.asarray(quantiles, np.float64)
    ranks = np.linspace(0.0, 1.0, q.size)
    cdf = 0.5 * (np.interp(x, q, ranks) - np.interp(-x, -q[::-1], -ranks[::-1]))
    cdf = np.clip(cdf, BOUNDS_THRESHOLD, 1.0 - BOUNDS_THRESHOLD)
    return np.array([statistics.NormalDist().inv_cdf(p) for p in np.ravel(cdf)]).reshape(np.shape(cdf))


# --- statistics of weighted points (the sketch's quantiles) --------------------------------


def weighted_shape(values, weights):
    """(mean, std, skewness) of points with weights summing to 1; skewness None without
    spread or once a value overflows."""
    if values.size and values.min() == values.max() and math.isfinite(values[0]):
        # No spread: the weighted mean's rounding would leave deviations of an ulp, whose
        # "skewness" is noise (a constant column's was -1).
        return float(values[0]), 0.0, None
    with np.errstate(over="ignore", invalid="ignore"):
        mean = float(weights @ values)
        d = values - mean
        m2 = float(weights @ (d * d))
        m3 = float(weights @ (d * d * d))
    if not (math.isfinite(m2) and math.isfinite(m3)) or m2 <= 0:
        return mean, (math.sqrt(m2) if math.isfinite(m2) else math.inf), None
    return mean, math.sqrt(m2), m3 / m2**1.5


def yeo_johnson_log_likelihood(lam, points, weights):
    """Yeo & Johnson's profile log-likelihood per value (their section 3), of weighted
    points: -log(var(psi(x, lam))) / 2 + (lam - 1) E[sign(x) log(1 + |x|)]; -inf where the
    transformed values overflow or have no spread."""
    _, std, _ = weighted_shape(yeo_johnson(points, lam), weights)
    if not math.isfinite(std) or std <= 0:
        return -math.inf
    return -math.log(std) + (lam - 1.0) * float(weights @ signed_log(points))


def fit_yeo_johnson(points, weights, grid=41, tolerance=1e-6):
    """The lambda in LAMBDA_BOUNDS maximising the log-likelihood: the best of a grid, then
    a golden-section search between its neighbours (the likelihood is concave in lambda
    for most data; the grid keeps a second mode from trapping the search)."""
    low, high = LAMBDA_BOUNDS
    grid_points = np.linspace(low, high, grid)
    values = [yeo_johnson_log_likelihood(lam, points, weights) for lam in grid_points]
    best = int(np.argmax(values))
    a, b = grid_points[max(best - 1, 0)], grid_points[min(best + 1, grid - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = (yeo_johnson_log_likelihood(v, points, weights) for v in (c, d))
    while b - a > tolerance:
        if fc >= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = yeo_johnson_log_likelihood(c, points, weights)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = yeo_johnson_log_likelihood(d, points, weights)
    found = (a + b) / 2
    # The grid's best when the search's end is worse (an edge of the bracket).
    if values[best] > yeo_johnson_log_likelihood(found, points, weights):
        return float(grid_points[best])
    return float(found)


# --- the choice of a transform ---------------------------------------------------------------


def choose_transform(skewness, kurtosis, candidates):
    """(transform, reason) by the documented rule (docs/distribution.md): a column within
    NORMAL_SKEWNESS and NORMAL_KURTOSIS keeps "none"; otherwise the parametric candidate of
    smallest |skewness| (within NEAR_TIE, the simpler), or "quantile_normal" when none gets
    within NORMAL_SKEWNESS. `candidates`: {transform: skewness or None (not applicable)}."""
    if skewness is None or kurtosis is None:
        return "none", "no skewness (no value, or no spread): a plain z-score"
    if abs(skewness) < NORMAL_SKEWNESS and abs(kurtosis) < NORMAL_KURTOSIS:
        return "none", (
            f"skewness {skewness:.3g} and excess kurtosis {kurtosis:.3g} are within "
            f"±{NORMAL_SKEWNESS} and ±{NORMAL_KURTOSIS}: a plain z-score"
        )
    applicable = {t: abs(s) for t, s in candidates.items() if t in PARAMETRIC and s is not None}
    smallest = min(applicable.values())
    chosen = next(t for t in PARAMETRIC if t in applicable and applicable[t] <= smallest + NEAR_TIE)
    quantile = candidates.get("quantile_normal")
    if smallest >= NORMAL_SKEWNESS and quantile is not None and abs(quantile) + NEAR_TIE < smallest:
        return "quantile_normal", (
            f"skewness {skewness:.3g}; no parametric transform gets within ±{NORMAL_SKEWNESS} "
            f"(best: {chosen}, {candidates[chosen]:.3g}), quantile_normal gets {quantile:.3g}"
        )
    if chosen == "none":
        return "none", (
            f"skewness {skewness:.3g} (excess kurtosis {kurtosis:.3g}): no transform makes it "
            "less skewed, so a plain z-score"
        )
    closest = "" if smallest < NORMAL_SKEWNESS else " (the least skewed; none gets within ±0.5)"
    return chosen, f"skewness {skewness:.3g} -> {candidates[chosen]:.3g} after {chosen}{closest}"


class TransformAccumulator(SlotsState):
    """The quantile sketch, the moments of the values, of log1p (None once a value <= -1
    was seen: not applicable) and of signed_log."""

    __slots__ = ("quantiles", "raw", "log1p", "signed_log")

    def __init__(self, quantiles, raw, log1p, signed_log):
        self.quantiles, self.raw, self.log1p, self.signed_log = quantiles, raw, log1p, signed_log


class TransformAnalyzer:
    """The statistics of a chosen transform: the quantile points (as QuantilePointsAnalyzer), each
    candidate transform's skewness (``candidate_skewness``), the chosen ``transform`` and
    its ``reason``, ``transform_mean`` / ``transform_std`` of the transformed values and
    ``yeo_johnson_lambda``.

    none, log1p and signed_log get exact moments (the transformed values folded into
    MomentsAnalyzer's accumulators); yeo_johnson's lambda, mean, std and skewness, and
    quantile_normal's (through the layer's CDF of num_quantiles + 1 points), come from the
    sketch's FIT_QUANTILES points at the midpoints of equal-mass intervals (equal weights).

    Args:
        num_quantiles: n, the points' ranks 0, 1/n, ..., 1.
        transform: None to choose, or a declared one (reason "declared").
    Raises (finalize):
        InputDataError: a declared log1p of a column holding a value <= -1.
    """

    def __init__(self, num_quantiles, transform=None):
        self.transform = transform
        self._quantiles = QuantilePointsAnalyzer(num_quantiles)
        # Of the same sketch: ranks 0, 1/2000, ..., 1, of which the midpoints are taken.
        self._fit_points = QuantilePointsAnalyzer(2 * FIT_QUANTILES)
        self._moments = MomentsAnalyzer()
        self.epsilon = self._quantiles.epsilon

    def create_accumulator(self):
        moments = self._moments.create_accumulator
        return TransformAccumulator(self._quantiles.create_accumulator(), moments(), moments(), moments())

    def add_batch(self, acc, column):
        values = finite_values(column)[0]
        if not values.size:
            return acc
        self._quantiles.add_values(acc.quantiles, values)
        self._moments.add_values(acc.raw, values)
        self._moments.add_values(acc.signed_log, signed_log(values))
        if acc.log1p is not None and values.min() > -1:
            self._moments.add_values(acc.log1p, np.log1p(values))
        else:
            acc.log1p = None
        return acc

    def compact(self, acc):
        self._quantiles.compact(acc.quantiles)
        return acc

    def merge_accumulators(self, accs):
        accs = list(accs)
        log1p = [a.log1p for a in accs]
        return TransformAccumulator(
            self._quantiles.merge_accumulators([a.quantiles for a in accs]),
            self._moments.merge_accumulators([a.raw for a in accs]),
            None if None in log1p else self._moments.merge_accumulators(log1p),
            self._moments.merge_accumulators([a.signed_log for a in accs]),
        )

    def to_state(self, acc):
        """QuantilesAnalyzer's state (the sketch and n: what validate reads) and the moments."""
        state = self._quantiles.to_state(acc.quantiles)
        for slot in ("raw", "log1p", "signed_log"):
            moments = getattr(acc, slot)
            state[slot] = None if moments is None else self._moments.to_state(moments)
        return state

    def from_state(self, state):
        moments = {
            slot: None if state[slot] is None else self._moments.from_state(state[slot])
            for slot in ("raw", "log1p", "signed_log")
        }
        return TransformAccumulator(self._quantiles.from_state(state), **moments)

    def finalize(self, acc):
        points = self._quantiles.points(acc.quantiles)
        raw = self._moments.finalize(acc.raw)
        exact = {"none": raw, "signed_log": self._moments.finalize(acc.signed_log)}
        if acc.log1p is not None:
            exact["log1p"] = self._moments.finalize(acc.log1p)
        candidates = {t: (exact[t]["skewness"] if t in exact else None) for t in TRANSFORMS}
        lam, sketched = None, {}
        if points:
            # The fine points stand for the data; quantile_normal is measured through the
            # layer's own CDF (its `points`): with few points, or values many rows hold,
            # that is not N(0, 1).
            x = np.asarray(self._fit_points.points(acc.quantiles))[1::2]
            weights = np.full(x.size, 1.0 / x.size)
            lam = fit_yeo_johnson(x, weights)
            sketched["yeo_johnson"] = weighted_shape(yeo_johnson(x, lam), weights)
            sketched["quantile_normal"] = weighted_shape(quantile_normal(x, points), weights)
            candidates.update({t: shape[2] for t, shape in sketched.items()})
        if self.transform is None:
            transform, reason = choose_transform(raw["skewness"], raw["kurtosis"], candidates)
        else:
            transform, reason = self.transform, "declared"
            if transform == "log1p" and acc.log1p is None:
                raise InputDataError(
                    f"its declared transform log1p needs values > -1, but it holds {raw['min']!r}; "
                    "declare transform signed_log (or yeo_johnson), or leave transform out to choose"
                )
        mean, std = 0.0, 1.0
        if transform in exact and exact[transform]["mean"] is not None:
            mean, std = exact[transform]["mean"], math.sqrt(exact[transform]["variance"])
        elif transform in sketched:
            mean, std = sketched[transform][:2]
        return {
            "quantiles": points,
            "quantile_epsilon": self.epsilon,
            "transform": transform,
            "reason": reason,
            "transform_mean": mean,
            # A constant column is centred, not scaled (keras Normalization's guard).
            "transform_std": std if std > 0 and math.isfinite(std) else 1.0,
            "yeo_johnson_lambda": lam if transform == "yeo_johnson" else None,
            "candidate_skewness": candidates,
        }
