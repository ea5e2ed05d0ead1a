"""Moments against an independent exact computation, on the columns that break float32."""

import json
import math
import sys
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
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
@example(values=[0.0, 999999367.0, -999998397.0], offset=0.0, cuts=[], seed=0)  # a fresh clone's CI found it
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
    # Relative to the statistic, with an absolute floor at float64 resolution of the values:
    # the mean of values ~1e6 that cancel (0.32 of -999998.397, 0, 999999.367) is exact to
    # ~1e-10 whatever the order, not to 1e-12 of itself.
    resolution = 1e-15 * max(abs(whole["min"]), abs(whole["max"]))
    assert math.isclose(merged["mean"], whole["mean"], rel_tol=1e-12, abs_tol=resolution)
    floor = resolution**2
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


# --- skewness, kurtosis and the shares (issue 19) ---------------------------------------


def exact_shape(values):
    """Independent reference in exact rational arithmetic: (skewness, excess kurtosis),
    None without spread, each rounded once to float."""
    values = [Fraction(v) for v in values]
    n = len(values)
    mean = sum(values) / n
    m2, m3, m4 = (sum((v - mean) ** k for v in values) / n for k in (2, 3, 4))
    if m2 == 0:
        return None, None
    skewness = math.sqrt(m3 * m3 / m2**3)  # m3 / m2 ** 1.5, squared to stay rational
    return (skewness if m3 >= 0 else -skewness), float(m4 / (m2 * m2)) - 3


def assert_shape_exact(stats, values):
    """Skewness and kurtosis to 1e-9: relative, with a floor of 1e-9 (a skewness near 0 is
    m3 ~ 0 cancelling at the scale of m2 ** 1.5); kurtosis relative to kurtosis + 3 (>= 1)."""
    skewness, kurtosis = exact_shape(values)
    if skewness is None:
        assert stats["skewness"] is None and stats["kurtosis"] is None
        return
    assert math.isclose(stats["skewness"], skewness, rel_tol=1e-9, abs_tol=1e-9), (stats["skewness"], skewness)
    assert math.isclose(stats["kurtosis"] + 3, kurtosis + 3, rel_tol=1e-9), (stats["kurtosis"], kurtosis)


def exact_shares(values):
    values = [Fraction(v) for v in values]
    n = len(values)
    return {
        "zero_fraction": sum(v == 0 for v in values) / n,
        "integer_fraction": sum(v.denominator == 1 for v in values) / n,
        "positive_fraction": sum(v > 0 for v in values) / n,
        "negative_fraction": sum(v < 0 for v in values) / n,
    }


SHAPE_COLUMNS = {
    "normal": rng.normal(0, 1, 20_000),
    "lognormal": rng.lognormal(0, 1.5, 20_000),
    "offset_1e9": 1e9 + rng.normal(0, 1e-3, 20_000),  # small noise on a large offset
    "timestamps": rng.normal(1.6e9, 30.0, 20_000).round(),
    "constant": np.full(1000, 123456789.125),
    "single_row": np.array([7.5]),
    "huge_1e150": rng.normal(1e150, 1e150, 5000),  # m4 ~ 1e600: held scaled
    "huge_1e80": rng.lognormal(0, 1, 5000) * 1e80,  # m4 ~ 1e320: as the contract's example
    "offset_1e200_constant": np.full(50, 1e200),  # any spread at 1e200 overflows the variance
    "tiny_1e-300": rng.lognormal(0, 1, 5000) * 1e-300,  # variance underflows; the shape does not
    "integers": rng.poisson(3, 20_000).astype(np.float64),
    "mixed_sign": np.concatenate([rng.exponential(1, 9000), -rng.exponential(5, 1000), np.zeros(500)]),
}


@pytest.mark.parametrize("values", SHAPE_COLUMNS.values(), ids=SHAPE_COLUMNS.keys())
def test_shape_and_shares_are_exact_on_awkward_columns(values):
    stats = analyze(np.array_split(rng.permutation(values), 7))
    assert_shape_exact(stats, values.tolist())
    for key, share in exact_shares(values.tolist()).items():
        assert stats[key] == float(share), key  # exact counts, divided once


def test_integer_columns_count_as_whole_without_looking():
    analyzer = MomentsAnalyzer()
    acc = analyzer.add_batch(analyzer.create_accumulator(), pa.array([-3, 0, 0, 5, 2**60], pa.int64()))
    stats = analyzer.finalize(acc)
    assert (stats["integer_fraction"], stats["zero_fraction"]) == (1.0, 0.4)
    assert (stats["positive_fraction"], stats["negative_fraction"]) == (0.4, 0.2)
    assert_shape_exact(stats, [-3, 0, 0, 5, 2**60])


def test_an_empty_column_has_no_shape_nor_shares():
    stats = analyze([[None], []])
    assert all(stats[key] is None for key in ("skewness", "kurtosis", *exact_shares([1.0])))


_SCALES = [(0.0, 1.0), (1e9, 1e-3), (1.6e9, 30.0), (0.0, 1e-300), (0.0, 1e80), (0.0, 1e150), (1e150, 1e140)]


@settings(max_examples=80, deadline=None)
@given(
    noise=st.lists(st.floats(min_value=-1, max_value=1), min_size=1, max_size=120),
    where=st.sampled_from(_SCALES),
    cuts=st.lists(st.integers(0, 120), max_size=8),
    seed=st.integers(0, 2**16),
)
def test_shape_is_exact_under_any_sharding_and_merge_order(noise, where, cuts, seed):
    offset, scale = where
    values = offset + np.array(noise) * scale
    shuffled = np.random.default_rng(seed).permutation(values)
    batches = np.split(shuffled, sorted(set(c % (len(values) + 1) for c in cuts)))
    analyzer = MomentsAnalyzer()
    accs = [analyzer.add_batch(analyzer.create_accumulator(), pa.array(b)) for b in batches]
    order = np.random.default_rng(seed + 1).permutation(len(accs))
    # Merged as Beam may: in any order, in a tree, and through the JSON state.
    halves = [analyzer.merge_accumulators([accs[i] for i in order[::2]]), analyzer.merge_accumulators([accs[i] for i in order[1::2]])]
    halves[1] = analyzer.from_state(json.loads(json.dumps(analyzer.to_state(halves[1]))))
    stats = analyzer.finalize(analyzer.merge_accumulators(halves))
    assert_shape_exact(stats, values.tolist())
    for key, share in exact_shares(values.tolist()).items():
        assert stats[key] == float(share), key


def test_add_values_is_add_batch_on_finite_values():
    values = rng.lognormal(0, 1, 1000)
    analyzer = MomentsAnalyzer()
    acc = analyzer.add_values(analyzer.create_accumulator(), values)
    assert analyzer.finalize(acc) == analyze([values])


OLD_STATE = {"n": 2, "pivot": 1.0, "mean": 1.0, "variance": 1.0, "min": 1.0, "max": 3.0, "nan_count": 0, "inf_count": 0}


@pytest.mark.parametrize("scale", [1.0, 1e150], ids=["plain", "huge"])
def test_a_kdp_beam_0_4_state_merges_to_an_unknown_shape_never_a_wrong_one(scale):
    analyzer = MomentsAnalyzer()
    old = {**OLD_STATE, **{k: OLD_STATE[k] * scale for k in ("pivot", "mean", "min", "max")}}
    old["variance"] = OLD_STATE["variance"] * scale**2  # 0.4 held it unscaled
    new = analyzer.add_batch(analyzer.create_accumulator(), pa.array([5.0 * scale, 6.0 * scale]))
    merged = analyzer.merge_accumulators([analyzer.from_state(old), new])
    stats = analyzer.finalize(analyzer.from_state(json.loads(json.dumps(analyzer.to_state(merged)))))
    mean, variance = exact_moments([1.0 * scale, 3.0 * scale, 5.0 * scale, 6.0 * scale])
    assert stats["mean"] == pytest.approx(mean, rel=1e-12)
    assert stats["variance"] == pytest.approx(variance, rel=1e-12)
    assert all(stats[key] is None for key in ("skewness", "kurtosis", *exact_shares([1.0])))
    # An empty 0.4 state hides nothing: the shape stays known.
    empty = analyzer.from_state({**OLD_STATE, "n": 0, "variance": 0.0, "min": None, "max": None})
    assert analyzer.finalize(analyzer.merge_accumulators([empty, new]))["skewness"] == 0.0


def checked(stats):
    """checks.check_moments on a feature's statistics (as the loader calls it)."""
    from kdp_beam.bundle.checks import Statistics, check_moments

    check_moments(Statistics("x", stats, lambda name: f"/b/{name}", row_count=stats["count"]))


def bundle_stats(values):
    return {"count": len(values), "null_count": 0, **analyze([values])}


@pytest.mark.parametrize(
    "values", [[1.0, 2.0, 10.0], [4.0, 4.0], [-2.5, 0.0, 0.0, 3.0], [7.0]], ids=["skewed", "constant", "mixed", "one"]
)
def test_the_written_shape_passes_the_check(values):
    checked(bundle_stats(values))


@pytest.mark.parametrize(
    "edit, key",
    [
        ({"skewness": 0.5}, "skewness"),  # of a constant column (below)
        ({"kurtosis": None}, "skewness"),
        ({"kurtosis": -2.5}, "kurtosis"),  # below Pearson's bound skewness**2 - 2
        ({"kurtosis": 1e6}, "kurtosis"),  # beyond n - 3
        ({"zero_fraction": 0.5}, "zero_fraction"),  # zero + positive + negative != 1
        ({"positive_fraction": 1.5, "negative_fraction": -0.5}, "positive_fraction"),
        ({"integer_fraction": 0.123}, "integer_fraction"),  # not a count / n
        ({"integer_fraction": None}, "integer_fraction"),
        ({"negative_fraction": 0.25, "positive_fraction": 0.75}, "negative_fraction"),  # min >= 0
        ("drop kurtosis", "kurtosis"),
    ],
)
def test_impossible_shapes_are_refused_naming_the_key(edit, key):
    from kdp_beam.errors import BundleError

    stats = bundle_stats([1.0, 2.0, 2.0, 10.0])
    if edit == "drop kurtosis":
        del stats["kurtosis"]
    elif "skewness" in edit:
        stats = {**bundle_stats([3.0, 3.0]), **edit}
    else:
        stats.update(edit)
    with pytest.raises(BundleError, match=f"/b/statistics.json: feature 'x': {key} "):
        checked(stats)


def test_an_older_bundle_without_the_shape_passes_and_a_merged_unknown_one_too():
    stats = bundle_stats([1.0, 2.0, 10.0])
    checked({k: v for k, v in stats.items() if k not in ("skewness", "kurtosis", *exact_shares([1.0]))})
    checked({**stats, **dict.fromkeys(("skewness", "kurtosis", *exact_shares([1.0]))) })


def test_a_beam_run_writes_the_exact_shape_and_the_summary_and_report_show_it(tmp_path):
    """Real CSV shards through the pipeline; the oracle reads the files with Python's csv
    module and computes two-pass moments in numpy float64 (and counts exactly)."""
    import csv
    import glob

    from kdp_beam.bundle.loader import load_bundle
    from kdp_beam.job import run_analysis
    from kdp_beam.spec import FeatureSpec
    from tests.conftest import write_shards

    rows = 30_000
    signed = rng.normal(0, 3, rows).round(1)
    signed[::7] = 0.0
    table = pa.table({
        "heavy": rng.lognormal(2, 1.2, rows),
        "counts": rng.poisson(2, rows),
        "signed": pa.array(signed, mask=np.arange(rows) % 11 == 0),
    })
    pattern = write_shards(table, tmp_path / "in", 3)
    spec = FeatureSpec({"heavy": "float_normalized", "counts": "float", "signed": {"type": "float_discretized", "num_bins": 4}})
    run_analysis(spec, pattern, str(tmp_path / "b"))
    bundle = load_bundle(str(tmp_path / "b"))  # and the loader's checks pass
    read = {name: [] for name in table.column_names}
    for path in sorted(glob.glob(pattern)):
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                for name, text in row.items():
                    if text != "":
                        read[name].append(float(text))
    for name, values in read.items():
        values = np.array(values)
        d = values - values.mean()
        m2, m3, m4 = (np.mean(d**k) for k in (2, 3, 4))
        stats = bundle.features[name]
        assert stats["skewness"] == pytest.approx(m3 / m2**1.5, rel=1e-9, abs=1e-9), name
        assert stats["kurtosis"] == pytest.approx(m4 / m2**2 - 3, rel=1e-9), name
        assert stats["zero_fraction"] == np.count_nonzero(values == 0) / values.size, name
        assert stats["integer_fraction"] == np.count_nonzero(values == np.floor(values)) / values.size, name
        assert stats["negative_fraction"] == np.count_nonzero(values < 0) / values.size, name
        kind, options = spec.features[name].kind, spec.features[name].options
        line = kind.summary(stats, options)
        assert line.endswith(f", skew {stats['skewness']:.2g}"), line
        details, _ = kind.report_section(stats, options)
        assert "<th>skewness</th>" in details and "<th>negative share</th>" in details
    assert bundle.features["counts"]["integer_fraction"] == 1.0
