"""Moments against an independent exact computation, on the columns that break float32."""

import math
import sys
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdp_beam.analyzers import CountAnalyzer, MomentsAnalyzer
from kdp_beam.errors import InputDataError
from tests.conftest import exact_moments


def analyze(batches, analyzer=None):
    analyzer = analyzer or MomentsAnalyzer()
    acc = analyzer.create_accumulator()
    for batch in batches:
        acc = analyzer.add_batch(acc, pa.array(batch, type=pa.float64()))
    return analyzer.finalize(acc)


rng = np.random.default_rng(42)


@pytest.mark.parametrize(
    "values",
    [
        rng.normal(1e8, 1e3, 50_000),  # large offset, small spread
        rng.normal(1.6e9, 30.0, 50_000).round(),  # timestamps
        np.full(1000, 123456789.125),  # constant
        np.array([7.5]),  # a single row
        rng.lognormal(0, 3, 10_000),  # heavy tail
    ],
    ids=["offset_1e8", "timestamps", "constant", "single_row", "lognormal"],
)
def test_moments_exact_on_awkward_columns(values):
    stats = analyze(np.array_split(values, 7))
    mean, variance = exact_moments(values.tolist())
    assert stats["value_count"] == values.size
    assert stats["mean"] == pytest.approx(mean, rel=1e-12)
    assert stats["variance"] == pytest.approx(variance, rel=1e-12, abs=0)
    assert stats["min"] == values.min() and stats["max"] == values.max()


def test_large_offset_variance_is_what_float32_loses():
    values = rng.normal(1e8, 1e3, 100_000)
    stats = analyze([values])
    assert stats["variance"] == pytest.approx(1e6, rel=0.02)  # float32 sums give < 0 here


def test_nulls_nan_and_inf_are_counted_and_excluded():
    column = [1.0, None, float("nan"), 3.0, float("inf"), float("-inf"), None, 5.0]
    counts = CountAnalyzer()
    acc = counts.add_batch(counts.create_accumulator(), pa.array(column, type=pa.float64()))
    assert counts.finalize(acc) == {"count": 8, "null_count": 2}
    stats = analyze([column])
    assert stats["nan_count"] == 1 and stats["inf_count"] == 2
    assert stats["value_count"] == 3
    assert stats["mean"] == 3.0 and stats["variance"] == pytest.approx(8 / 3)
    assert (stats["min"], stats["max"]) == (1.0, 5.0)


def test_all_null_column_has_no_moments():
    stats = analyze([[None, None], []])
    assert stats["value_count"] == 0
    assert stats["mean"] is None and stats["variance"] is None and stats["min"] is None


def test_integer_columns_are_exact():
    analyzer = MomentsAnalyzer()
    acc = analyzer.add_batch(analyzer.create_accumulator(), pa.array([2**40, 2**40 + 2], pa.int64()))
    stats = analyzer.finalize(acc)
    assert stats["mean"] == 2**40 + 1 and stats["variance"] == 1.0


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), min_size=1, max_size=200
    ),
    offset=st.sampled_from([0.0, 1e8, 1.6e9]),
    cuts=st.lists(st.integers(0, 200), max_size=8),
    seed=st.integers(0, 2**16),
)
def test_merge_is_order_and_batching_free(values, offset, cuts, seed):
    values = np.array(values) * 1e-3 + offset
    analyzer = MomentsAnalyzer()
    whole = analyze([values])
    # Re-batch, shuffle the batches, fold each into its own accumulator, merge in any order.
    shuffled = np.random.default_rng(seed).permutation(values)
    batches = np.split(shuffled, sorted(set(c % (len(values) + 1) for c in cuts)))
    accs = [analyzer.add_batch(analyzer.create_accumulator(), pa.array(b)) for b in batches]
    order = np.random.default_rng(seed + 1).permutation(len(accs))
    merged = analyzer.finalize(analyzer.merge_accumulators([accs[i] for i in order]))
    assert merged["value_count"] == whole["value_count"]
    assert merged["min"] == whole["min"] and merged["max"] == whole["max"]
    assert merged["mean"] == pytest.approx(whole["mean"], rel=1e-12)
    # Relative to the variance, with an absolute floor at float64 resolution of the values.
    floor = (1e-15 * max(abs(whole["min"]), abs(whole["max"]))) ** 2
    assert math.isclose(merged["variance"], whole["variance"], rel_tol=1e-12, abs_tol=floor)


FLOAT64_MAX = Fraction(sys.float_info.max)


def exact_variance(values):
    values = [Fraction(v) for v in values]
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / len(values)


@pytest.mark.parametrize(
    "values",
    [
        [1.34e154, -1.34e154],  # variance 1.7956e308: just fits
        [1.35e154, -1.35e154],  # 1.8225e308: just does not
        [1e160, -1e160],  # 1e320
        [1e154, -1e154] * 500,  # variance 1e308 fits, n * variance (M2) does not
        list(rng.normal(0, 1e154, 5000)),
        list(rng.normal(1e300, 1e284, 1000)),  # huge offset, spread of a few ulps
        [1.7e308, -1.7e308],
        [1.7e308, 1.7e308, 1.6e308],
        [1e-300, -1e-300, 5e-310],  # subnormals: no scaling, exact
    ],
    ids=["fits", "overflows", "1e160", "m2_overflows", "normal_1e154", "offset_1e300", "max", "max_offset", "tiny"],
)
def test_moments_of_huge_values_are_exact_or_refused(values):
    """The overflow boundary against exact rational arithmetic: a variance that fits
    float64 is right to rounding, one that does not is an InputDataError, never NaN/inf."""
    variance = exact_variance(values)
    batches = np.array_split(np.array(values), 7 if len(values) > 7 else 1)
    if variance > FLOAT64_MAX:
        with pytest.raises(InputDataError, match="exceeds the largest float64"):
            analyze(batches)
        return
    stats = analyze(batches)
    mean, _ = exact_moments(values)
    assert stats["mean"] == pytest.approx(mean, rel=1e-12)
    assert stats["variance"] == pytest.approx(float(variance), rel=1e-12, abs=0)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(min_value=-1e156, max_value=1e156), min_size=1, max_size=60),
    cuts=st.lists(st.integers(0, 60), max_size=5),
)
def test_moments_near_the_overflow_boundary(values, cuts):
    variance = exact_variance(values)
    batches = np.split(np.array(values), sorted(set(c % (len(values) + 1) for c in cuts)))
    if variance > FLOAT64_MAX * Fraction(101, 100):
        with pytest.raises(InputDataError):
            analyze(batches)
    elif variance < FLOAT64_MAX * Fraction(99, 100):
        stats = analyze(batches)
        floor = (1e-15 * max(abs(v) for v in values)) ** 2
        assert math.isclose(stats["variance"], float(variance), rel_tol=1e-12, abs_tol=floor)


def test_old_states_with_m2_still_merge():
    analyzer = MomentsAnalyzer()
    old = {"n": 2, "pivot": 1.0, "mean": 1.0, "m2": 2.0, "min": 1.0, "max": 3.0, "nan_count": 0, "inf_count": 0}
    assert analyzer.finalize(analyzer.from_state(old))["variance"] == 1.0
