"""The fused analyzer: one batch feeds all features; results are order- and batching-free."""

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kdp_beam.analyzers import DatasetAnalyzer, analyze_batches
from kdp_beam.errors import InputDataError
from kdp_beam.spec import FeatureSpec

SPEC = FeatureSpec(
    {
        "x": "float_normalized",
        "q": {"type": "float_discretized", "num_bins": 4},
        "s": {"type": "string_categorical", "max_tokens": 4},
        "i": "integer_categorical",
        "h": {"type": "string_hashed", "num_bins": 4},
    }
)

rows = st.integers(1, 300)


@st.composite
def tables(draw):
    n = draw(rows)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.normal(draw(st.sampled_from([0.0, 1e8, 1.6e9])), 10.0, n)
    x[rng.random(n) < 0.1] = np.nan
    return pa.table(
        {
            "x": pa.array(x, from_pandas=draw(st.booleans())),  # NaN or null holes
            "q": rng.normal(0, 1, n),
            "s": rng.choice(["a", "b", "", "é", "long" * 20], n),
            "i": rng.integers(-1, 5, n),
            "h": rng.choice(["u", "v"], n),
        }
    )


def split(table, cuts, seed):
    """The table's rows shuffled, cut into batches at `cuts`, batches in random order."""
    rng = np.random.default_rng(seed)
    shuffled = table.take(rng.permutation(table.num_rows))
    bounds = sorted({0, table.num_rows, *(c % (table.num_rows + 1) for c in cuts)})
    batches = [shuffled.slice(a, b - a).to_batches()[0] for a, b in zip(bounds, bounds[1:]) if b > a]
    return [batches[i] for i in rng.permutation(len(batches))]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=tables(), cuts=st.lists(st.integers(0, 300), max_size=6), seed=st.integers(0, 999))
def test_resharding_and_reordering_give_the_same_statistics(table, cuts, seed):
    whole = analyze_batches(SPEC, table.to_batches())
    analyzer = DatasetAnalyzer(SPEC)
    # Each batch on its own "worker", merged in a random tree.
    accs = [analyzer.add_batch(analyzer.create_accumulator(), b) for b in split(table, cuts, seed)]
    while len(accs) > 1:
        k = 2 + seed % (len(accs) - 1)  # merge 2..all of them
        accs = [analyzer.merge_accumulators(accs[:k])] + accs[k:]
        seed += 7
    merged = analyzer.finalize(accs[0])
    assert merged["row_count"] == whole["row_count"] == table.num_rows
    for name, stats in whole["features"].items():
        for key, value in stats.items():
            other = merged["features"][name][key]
            if key == "bin_boundaries":
                ordered = np.sort(table[name].to_numpy())
                for a, b in zip(value, other):  # both within the sketch's rank error
                    ranks = np.searchsorted(ordered, [a, b]) / ordered.size
                    assert abs(ranks[0] - ranks[1]) <= 2 * stats["quantile_epsilon"] + 1 / ordered.size
            elif isinstance(value, float):
                assert math.isclose(value, other, rel_tol=1e-12, abs_tol=1e-9 * max(1.0, stats["variance"] or 0)), (name, key)
            else:
                assert value == other, (name, key)


def test_one_batch_feeds_every_feature():
    table = pa.table({"x": [1.0, 2.0], "q": [0.5, 0.7], "s": ["a", "a"], "i": [3, 3], "h": ["u", "v"]})
    stats = analyze_batches(SPEC, table.to_batches())["features"]
    assert stats["x"]["mean"] == 1.5 and stats["s"]["vocabulary"] == ["a"]
    assert stats["i"]["vocabulary"] == [3] and stats["h"]["count"] == 2


def test_missing_or_mistyped_columns_are_errors_naming_the_feature():
    with pytest.raises(InputDataError, match="'q'"):
        analyze_batches(SPEC, pa.table({"x": [1.0]}).to_batches())
    bad = pa.table({"x": ["a"], "q": [1.0], "s": ["a"], "i": [1], "h": ["u"]})
    with pytest.raises(InputDataError, match="'x'"):
        analyze_batches(SPEC, bad.to_batches())
