"""float_auto's analysis: the Yeo-Johnson fit against a brute-force grid, the choice rule,
and candidate moments equal to numpy's under any sharding and merge order."""

import json

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdp_beam.analyzers import distribution as d
from kdp_beam.errors import InputDataError


def two_pass_skewness(values):
    dev = values - values.mean()
    return float((dev**3).mean() / (dev**2).mean() ** 1.5)


@pytest.mark.parametrize(
    "sample",
    [
        lambda rng: rng.lognormal(0, 1, 5000),
        lambda rng: rng.gamma(2.0, 3.0, 5000),
        lambda rng: -rng.exponential(4.0, 5000),
        lambda rng: rng.normal(10, 2, 5000),
        lambda rng: rng.standard_t(3, 5000),
    ],
    ids=["lognormal", "gamma", "negative_exponential", "normal", "student_t"],
)
def test_yeo_johnson_fit_is_the_grid_maximum(sample):
    points = np.quantile(sample(np.random.default_rng(3)), (np.arange(1000) + 0.5) / 1000)
    weights = np.full(points.size, 1 / points.size)
    found = d.fit_yeo_johnson(points, weights)
    grid = np.linspace(-5, 5, 10_001)  # steps of 1e-3
    likelihoods = [d.yeo_johnson_log_likelihood(lam, points, weights) for lam in grid]
    best = grid[int(np.argmax(likelihoods))]
    assert abs(found - best) <= 1e-3 or found in (-5.0, 5.0) and best == found
    assert d.yeo_johnson_log_likelihood(found, points, weights) >= max(likelihoods) - 1e-9


@pytest.mark.parametrize(
    "skewness, kurtosis, candidates, chosen",
    [
        (0.3, 0.5, {"none": 0.3, "log1p": 0.01}, "none"),  # close to normal: kept
        (0.3, 2.0, {"none": 0.3, "log1p": 0.01, "signed_log": 0.2, "yeo_johnson": 0.02}, "log1p"),
        (3.0, 9.0, {"none": 3.0, "log1p": 0.30, "signed_log": 0.30, "yeo_johnson": 0.27}, "log1p"),  # near tie
        (3.0, 9.0, {"none": 3.0, "log1p": None, "signed_log": 0.9, "yeo_johnson": 0.1}, "yeo_johnson"),
        (5.0, 40.0, {"none": 5.0, "log1p": 2.0, "signed_log": 1.0, "yeo_johnson": 0.8, "quantile_normal": 0.0}, "quantile_normal"),
        # No parametric one within 0.5, and quantile_normal no better: the least skewed.
        (5.8, 41.0, {"none": 5.8, "log1p": 3.75, "signed_log": 3.75, "yeo_johnson": 2.75, "quantile_normal": 3.07}, "yeo_johnson"),
        (5.8, 41.0, {"none": 5.8, "log1p": 3.75, "signed_log": 3.75, "yeo_johnson": 2.75, "quantile_normal": 2.72}, "yeo_johnson"),
        (0.01, -2.0, {"none": 0.01, "log1p": 0.01, "signed_log": 0.01, "yeo_johnson": 0.02}, "none"),  # two values
        (None, None, {"none": None}, "none"),  # constant or empty
    ],
)
def test_choice_rule(skewness, kurtosis, candidates, chosen):
    assert d.choose_transform(skewness, kurtosis, candidates)[0] == chosen


def shards_of(values, cuts):
    cuts = sorted(set(cuts) | {0, values.size})
    return [values[a:b] for a, b in zip(cuts, cuts[1:])]


def analysed(analyzer, shards, order, via_state=False):
    accs = []
    for shard in shards:
        acc = analyzer.add_batch(analyzer.create_accumulator(), pa.array(shard))
        if via_state:  # as a bundle keeps it (kdp-beam merge)
            acc = analyzer.from_state(json.loads(json.dumps(analyzer.to_state(acc))))
        accs.append(acc)
    return analyzer.finalize(analyzer.merge_accumulators([accs[i] for i in order]))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 3000), max_size=5), st.randoms(use_true_random=False), st.booleans())
def test_exact_candidates_equal_numpy_under_any_sharding(cuts, random, via_state):
    values = 1e3 + np.random.default_rng(1).gamma(1.5, 40.0, 3000)
    shards = shards_of(values, cuts)
    order = list(range(len(shards)))
    random.shuffle(order)
    stats = analysed(d.TransformAnalyzer(100), shards, order, via_state)
    for transform, t in (("none", values), ("log1p", np.log1p(values)), ("signed_log", d.signed_log(values))):
        want = two_pass_skewness(t)
        assert abs(stats["candidate_skewness"][transform] - want) <= 1e-9 * abs(want), transform
    assert len(stats["quantiles"]) == 101 and stats["quantiles"][0] == values.min() and stats["quantiles"][-1] == values.max()


def test_log1p_is_not_a_candidate_once_one_shard_holds_a_value_at_most_minus_one():
    rng = np.random.default_rng(2)
    shards = [rng.exponential(1.0, 500), np.array([-1.0, 3.0]), rng.exponential(1.0, 500)]
    for order in ([0, 1, 2], [2, 0, 1]):
        stats = analysed(d.TransformAnalyzer(50), shards, order, via_state=True)
        assert stats["candidate_skewness"]["log1p"] is None and stats["transform"] != "log1p"
    with pytest.raises(InputDataError, match="log1p needs values > -1"):
        analysed(d.TransformAnalyzer(50, "log1p"), shards, [0, 1, 2])


def test_a_constant_and_an_empty_column_keep_the_identity_z_score():
    constant = analysed(d.TransformAnalyzer(10), [np.full(100, 7.0)], [0])
    assert constant["transform"] == "none" and constant["transform_std"] == 1.0 and constant["transform_mean"] == 7.0
    empty = d.TransformAnalyzer(10)
    stats = empty.finalize(empty.create_accumulator())
    assert stats["transform"] == "none" and stats["quantiles"] == [] and stats["transform_std"] == 1.0


def test_yeo_johnson_mean_and_std_come_from_the_points():
    values = np.random.default_rng(4).lognormal(0, 1, 20_000)
    stats = analysed(d.TransformAnalyzer(1000, "yeo_johnson"), [values], [0])
    t = d.yeo_johnson(values, stats["yeo_johnson_lambda"])
    assert abs(stats["transform_mean"] - t.mean()) < 0.01 * t.std()
    assert abs(stats["transform_std"] / t.std() - 1) < 0.01


def test_a_column_without_spread_has_no_sketched_skewness():
    """The weighted mean of equal points is off by an ulp: the deviations' "skewness" was
    -1 (yeo_johnson's, in the bundle and the report) for a constant column."""
    for values in (np.full(100, 7.0), np.full(3, -2.5e-300), np.array([1e9])):
        stats = analysed(d.TransformAnalyzer(10), [values], [0])
        assert stats["candidate_skewness"] == dict.fromkeys(d.TRANSFORMS), values[0]
        assert stats["transform"] == "none" and stats["transform_std"] == 1.0


def standardised(values, stats):
    """The float_auto encoding in numpy (the layers' twins): (t(x) - mean) / std."""
    t = {
        "yeo_johnson": lambda: d.yeo_johnson(values, stats["yeo_johnson_lambda"]),
        "quantile_normal": lambda: d.quantile_normal(values, stats["quantiles"]),
        "log1p": lambda: np.log1p(values),
        "signed_log": lambda: d.signed_log(values),
        "none": lambda: values,
    }[stats["transform"]]()
    return (t - stats["transform_mean"]) / stats["transform_std"]


_rng = np.random.default_rng(5)
LOGNORMAL = _rng.lognormal(0, 1, 20_000)
ZEROS90 = np.where(_rng.random(20_000) < 0.9, 0.0, _rng.exponential(3.0, 20_000))


@pytest.mark.parametrize("num_quantiles", [2, 3, 10, 1000])
@pytest.mark.parametrize("transform", ["yeo_johnson", "quantile_normal", None])
@pytest.mark.parametrize("values", [LOGNORMAL, ZEROS90], ids=["lognormal", "zeros90"])
def test_the_encoding_is_standardised_and_its_skewness_is_the_recorded_one(values, transform, num_quantiles):
    """Whatever num_quantiles and however many rows share a value, float_auto's output has
    mean 0 and std 1 and the skewness its candidate_skewness records. The sketched
    statistics were measured on the layer's num_quantiles + 1 points: at 2, yeo_johnson's
    output had std 0.54 and quantile_normal's skewness -1.05 (recorded: 0); with 90% zeros
    quantile_normal was chosen (skewness 3.1) over yeo_johnson (2.75) and left at std 0.58."""
    stats = analysed(d.TransformAnalyzer(num_quantiles, transform), [values], [0])
    out = standardised(values, stats)
    assert abs(out.mean()) < 0.05 and abs(out.std() - 1) < 0.05, (stats["transform"], out.mean(), out.std())
    recorded = stats["candidate_skewness"][stats["transform"]]
    # (1,000 points of the sketch stand for the data: its tails, which the skewness
    # weighs most, are where they are coarsest.)
    assert abs(two_pass_skewness(out) - recorded) < max(0.1, 0.2 * abs(recorded)), (stats["transform"], recorded)
    if transform is None:  # the rule: the least skewed parametric one, or a better quantile_normal
        parametric = min(abs(s) for t, s in stats["candidate_skewness"].items() if t in d.PARAMETRIC and s is not None)
        if stats["transform"] == "quantile_normal":
            assert parametric >= d.NORMAL_SKEWNESS and abs(recorded) + d.NEAR_TIE < parametric
        else:
            assert abs(recorded) <= parametric + d.NEAR_TIE
