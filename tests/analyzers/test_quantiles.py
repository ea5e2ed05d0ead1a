"""Bin boundaries against exact quantiles, within the sketch's stated rank error."""

import numpy as np
import pyarrow as pa
import pytest

from kdp_beam.analyzers import QuantilesAnalyzer
from kdp_beam.analyzers.quantiles import ProfileAnalyzer


def boundaries_of(batches, num_bins):
    analyzer = QuantilesAnalyzer(num_bins)
    accs = [analyzer.add_batch(analyzer.create_accumulator(), pa.array(b)) for b in batches]
    return analyzer.finalize(analyzer.merge_accumulators(accs))


@pytest.mark.parametrize("num_bins", [2, 5, 32])
@pytest.mark.parametrize("seed", [0, 1])
def test_boundaries_are_within_epsilon_rank_of_exact_quantiles(num_bins, seed):
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.lognormal(0, 2, 150_000), rng.normal(1e8, 1.0, 50_000)])
    rng.shuffle(values)
    stats = boundaries_of(np.array_split(values, 13), num_bins)
    epsilon = stats["quantile_epsilon"]
    ordered = np.sort(values)
    assert len(stats["bin_boundaries"]) == num_bins - 1
    for i, boundary in enumerate(stats["bin_boundaries"], start=1):
        target = i / num_bins * len(values)
        below = np.searchsorted(ordered, boundary, side="left")
        at_or_below = np.searchsorted(ordered, boundary, side="right")
        assert below - epsilon * len(values) <= target <= at_or_below + epsilon * len(values)


def test_nan_inf_and_nulls_are_left_out():
    stats = boundaries_of(
        [pa.array([1.0, 2.0, None, np.nan, np.inf, 3.0, 4.0], pa.float64())], num_bins=2
    )
    assert stats["bin_boundaries"] in ([2.0], [3.0])


def test_empty_input_has_no_boundaries():
    assert boundaries_of([pa.array([], pa.float64())], 4)["bin_boundaries"] == []


@pytest.mark.parametrize("analyzer", [QuantilesAnalyzer(50), ProfileAnalyzer()], ids=["quantiles", "profile"])
def test_batches_summarised_before_the_sketch_keep_the_stated_error_and_the_range(analyzer):
    """Batches of far more values than the summary's points (and one of fewer, added value
    by value), with ties, a far cluster and a single huge batch: every quantile within
    epsilon in rank of the exact one, the min and max exact."""
    rng = np.random.default_rng(7)
    values = np.concatenate([
        rng.integers(0, 5, 300_000).astype(np.float64),  # ties: point masses
        rng.lognormal(0, 3, 200_000),
        rng.normal(-1e9, 1.0, 1_000),
    ])
    rng.shuffle(values)
    batches = [values[:600_000], values[600_000:600_100], values[600_100:]]
    acc = analyzer.create_accumulator()
    for batch in batches:
        acc = analyzer.add_batch(acc, pa.array(batch))
    assert_points_within_epsilon(acc.sketch, analyzer, np.sort(values))


def assert_points_within_epsilon(sketch, analyzer, ordered):
    """The sketch's num_bins + 1 points: the min and max exact, each within epsilon in rank
    of the exact quantile of the sorted values."""
    points, n = sketch.GetQuantiles(analyzer.num_bins).to_pylist()[0], len(ordered)
    assert points[0] == ordered[0] and points[-1] == ordered[-1]
    for i, point in enumerate(points):
        target = i / analyzer.num_bins * n
        below = np.searchsorted(ordered, point, side="left")
        at_or_below = np.searchsorted(ordered, point, side="right")
        assert below - analyzer.epsilon * n <= target <= at_or_below + analyzer.epsilon * n


@pytest.mark.parametrize("analyzer", [QuantilesAnalyzer(50), ProfileAnalyzer()], ids=["quantiles", "profile"])
def test_a_compacted_accumulator_does_not_grow_with_the_batches(analyzer):
    """What Beam sends of a worker (AnalyzerCombineFn.compact) is the same size after 40 or
    400 batches; uncompacted, the sketch keeps its summary levels and grows."""
    import pickle

    rng = np.random.default_rng(5)
    sizes = {}
    for batches in (40, 400):
        acc = analyzer.create_accumulator()
        for _ in range(batches):
            acc = analyzer.add_batch(acc, pa.array(rng.lognormal(0, 1.5, 5_000)))
        sizes[batches] = len(pickle.dumps(acc)), len(pickle.dumps(analyzer.compact(acc)))
    (small, small_compacted), (large, large_compacted) = sizes[40], sizes[400]
    assert large > 2 * small and large > 2 * large_compacted
    assert abs(large_compacted - small_compacted) <= 0.1 * small_compacted


@pytest.mark.parametrize("analyzer", [QuantilesAnalyzer(50), ProfileAnalyzer()], ids=["quantiles", "profile"])
def test_workers_accumulators_compacted_before_the_merge_keep_the_stated_error(analyzer):
    """As Beam sends them: 6 workers' accumulators of 60 batches each, compacted, pickled,
    merged: every point within epsilon in rank, the min and max exact."""
    import pickle

    rng = np.random.default_rng(11)
    workers = [[rng.lognormal(w % 3, 1.5, 5_000) for _ in range(60)] for w in range(6)]
    sent = []
    for batches in workers:
        acc = analyzer.create_accumulator()
        for batch in batches:
            acc = analyzer.add_batch(acc, pa.array(batch))
        sent.append(pickle.loads(pickle.dumps(analyzer.compact(acc))))
    merged = analyzer.merge_accumulators(sent)
    values = np.sort(np.concatenate([b for batches in workers for b in batches]))
    assert merged.n == len(values)
    assert_points_within_epsilon(merged.sketch, analyzer, values)
