"""Multivalent features (a list of values per row): statistics equal to an independent
computation in Python / numpy over the same lists, whatever the batching, sharding and
merge order; the same from a real Beam run (keyed vocabularies over several shards) and
from kdp-beam merge; checked by the loader; shown in the summary and the report.

The batches are built directly as pa.list_ columns, in every form a user's own pipeline may
hand the analysis (a row with no values an empty list or a null, a missing element a null,
for strings also ""): the analysis normalises them as the readers do (columns.cast_list)."""

import math
from collections import Counter

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kdp_beam.analyzers import DatasetAnalyzer, analyze_batches
from kdp_beam.beam.analyze import AnalyzeFeatures
from kdp_beam.bundle.loader import load_bundle
from kdp_beam.bundle.writer import WriteArtifacts, write_bundle
from kdp_beam.job import pipeline_options
from kdp_beam.spec import FeatureSpec
from kdp_beam.summary import summary_table
from kdp_beam.tools.merge import merge_bundles
from kdp_beam.tools.report import render_report
from tests.test_bundle_validation import DELETE, edit_vocabulary, edited, refusal, set_statistic, vocabulary_file

FEATURES = {
    "tags": {"type": "string_categorical", "multivalent": True, "max_tokens": 5},
    "ids": {"type": "integer_categorical", "multivalent": True},
    "top": {"type": "string_categorical", "multivalent": True, "max_tokens": 3, "counting": "approximate"},
    "x": {"type": "float_discretized", "multivalent": True, "num_bins": 3},
    "y": {"type": "float_normalized", "multivalent": True, "pooling": "sum"},
    "h": {"type": "string_hashed", "multivalent": True, "num_bins": 8},
    "z": "float_normalized",  # a scalar beside the lists
}
SPEC = FeatureSpec(FEATURES, profile=True)
TYPES = {"tags": pa.string(), "ids": pa.int64(), "top": pa.string(), "x": pa.float64(), "y": pa.float64(), "h": pa.string()}
OOV = {"tags": "[UNK]", "ids": -1, "top": "[UNK]"}
SKETCHED = {"values_per_row_quantiles": "values_per_row_epsilon", "profile_quantiles": "profile_epsilon"}


# --- the oracle: plain Python over the lists --------------------------------------------


def is_missing(value):
    return value is None or value == ""


def oracle(rows, kind):
    """The statistics the contract defines, from a list of rows (None: no values)."""
    lists = [row or [] for row in rows]
    values = [v for row in lists for v in row]
    lengths = [len(row) for row in lists]
    found = {
        "count": len(values),
        "null_count": sum(is_missing(v) for v in values),
        "empty_count": lengths.count(0),
        "min_values_per_row": min(lengths, default=None),
        "max_values_per_row": max(lengths, default=None),
        "mean_values_per_row": sum(lengths) / len(lengths) if lengths else None,
    }
    present = [v for v in values if not is_missing(v)]
    if kind == "string":
        return found, present, lengths
    finite = [v for v in present if math.isfinite(v)]
    found |= {
        "nan_count": sum(math.isnan(v) for v in present),
        "inf_count": sum(math.isinf(v) for v in present),
        "value_count": len(finite),
        "min": min(finite, default=None),
        "max": max(finite, default=None),
    }
    return found, finite, lengths


def oracle_vocabulary(rows, oov, max_size=None):
    """Keras' order (count desc, token desc), the OOV token left out; rows holding each."""
    counts = Counter(v for row in rows for v in row or [] if not is_missing(v))
    documents = Counter(v for row in rows for v in set(row or []) if not is_missing(v))
    ranked = sorted((t for t in counts if t != oov), key=lambda t: (counts[t], t), reverse=True)[:max_size]
    return {
        "vocabulary": ranked,
        "vocabulary_counts": [counts[t] for t in ranked],
        "vocabulary_document_counts": [documents[t] for t in ranked],
        "distinct_count": len(counts),
    }


def within_rank(points, values, epsilon, fractions):
    """Each sketched point's rank among `values` is within epsilon of its fraction."""
    ordered = np.sort(np.asarray(values, dtype=float))
    n = ordered.size
    assert len(points) == len(fractions)
    for point, fraction in zip(points, fractions):
        low, high = np.searchsorted(ordered, point, "left") / n, np.searchsorted(ordered, point, "right") / n
        assert low - epsilon - 1 / n <= fraction <= high + epsilon + 1 / n, (point, fraction, low, high)


def assert_matches_oracle(statistics, columns):
    for name, rows in columns.items():
        stats = statistics["features"][name]
        kind = "string" if TYPES[name] == pa.string() else "number"
        expected, values, lengths = oracle(rows, kind)
        for key, value in expected.items():
            assert stats[key] == (value if value is None else pytest.approx(value, rel=1e-12)), (name, key)
        assert stats["missing_count"] == stats["null_count"] + stats.get("nan_count", 0)
        if lengths:
            within_rank(stats["values_per_row_quantiles"], lengths, stats["values_per_row_epsilon"], np.linspace(0, 1, 21))
        else:
            assert stats["values_per_row_quantiles"] == []
        if kind == "number" and values:
            assert stats["mean"] == pytest.approx(np.mean(values), rel=1e-9, abs=1e-9)
            assert stats["variance"] == pytest.approx(np.var(values), rel=1e-9, abs=1e-9)
            within_rank(stats["profile_quantiles"], values, stats["profile_epsilon"], np.linspace(0, 1, 21))
        if name == "x":
            fractions = [1 / 3, 2 / 3] if values else []
            if values:
                within_rank(stats["bin_boundaries"], values, stats["quantile_epsilon"], fractions)
            else:
                assert stats["bin_boundaries"] == []
        if name in ("tags", "ids"):
            max_size = 4 if name == "tags" else None
            assert {k: stats[k] for k in ("vocabulary", "vocabulary_counts", "vocabulary_document_counts", "distinct_count")} == oracle_vocabulary(rows, OOV[name], max_size), name
        if name == "top":  # approximate: each kept count within its bound over the truth
            truth = Counter(v for row in rows for v in row or [] if not is_missing(v))
            for token, count in zip(stats["vocabulary"], stats["vocabulary_counts"]):
                assert truth[token] <= count <= truth[token] + stats["vocabulary_count_error_bound"]
            assert "vocabulary_document_counts" not in stats  # a sketch keeps no rows


# --- random list columns ------------------------------------------------------------------

ELEMENTS = {
    "tags": st.sampled_from(["a", "b", "c", "é", "", None, "[UNK]", "long" * 10]),
    "ids": st.one_of(st.none(), st.integers(-2, 5), st.just(2**40)),
    "top": st.sampled_from(["u", "v", "w", "x", None]),
    "x": st.one_of(st.none(), st.floats(-1e3, 1e3), st.just(math.nan), st.just(math.inf)),
    "y": st.one_of(st.floats(-1e6, 1e6), st.just(math.nan), st.none()),
    "h": st.sampled_from(["p", "q", None]),
}


@st.composite
def list_tables(draw):
    """Rows of every list column (None rows, [] rows, null elements, NaN), maybe one huge
    row, and a scalar column: (columns as Python lists, a pa.Table of them)."""
    n = draw(st.integers(1, 60))
    columns = {
        name: draw(st.lists(st.one_of(st.none(), st.lists(element, max_size=5)), min_size=n, max_size=n))
        for name, element in ELEMENTS.items()
    }
    if draw(st.booleans()):  # one row far longer than the others
        where = draw(st.integers(0, n - 1))
        rng = np.random.default_rng(where)
        columns["tags"][where] = [str(v) for v in rng.choice(["a", "b", "d", "e"], 3000)]
        columns["ids"][where] = rng.integers(0, 50, 3000).tolist()
        columns["x"][where] = rng.normal(0, 1, 3000).tolist()
    scalar = draw(st.lists(st.one_of(st.none(), st.floats(-10, 10)), min_size=n, max_size=n))
    table = pa.table({**{name: pa.array(rows, pa.list_(TYPES[name])) for name, rows in columns.items()}, "z": pa.array(scalar, pa.float64())})
    return columns, table


def split(table, cuts, seed):
    """The table's rows shuffled, cut into batches at `cuts`, the batches in random order."""
    rng = np.random.default_rng(seed)
    shuffled = table.take(rng.permutation(table.num_rows))
    bounds = sorted({0, table.num_rows, *(c % (table.num_rows + 1) for c in cuts)})
    batches = [shuffled.slice(a, b - a).combine_chunks().to_batches()[0] for a, b in zip(bounds, bounds[1:]) if b > a]
    return [batches[i] for i in rng.permutation(len(batches))]


def merged_in_a_random_tree(analyzer, batches, seed):
    """Each batch on its own "worker", their accumulators merged 2..all at a time, some
    of them through their JSON state (as kdp-beam merge restores them)."""
    accs = [analyzer.add_batch(analyzer.create_accumulator(), b) for b in batches]
    while len(accs) > 1:
        k = 2 + seed % (len(accs) - 1)
        accs = [analyzer.merge_accumulators(accs[:k])] + accs[k:]
        seed += 7
    return accs[0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=list_tables(), cuts=st.lists(st.integers(0, 60), max_size=5), seed=st.integers(0, 999))
def test_statistics_equal_the_oracle_under_any_batching_and_merge_order(data, cuts, seed):
    columns, table = data
    whole = analyze_batches(SPEC, table.to_batches())
    assert_matches_oracle(whole, columns)
    analyzer = DatasetAnalyzer(SPEC)
    merged = analyzer.finalize(merged_in_a_random_tree(analyzer, split(table, cuts, seed), seed))
    assert_matches_oracle(merged, columns)
    for name, stats in whole["features"].items():
        for key, value in stats.items():
            if key in ("skewness", "kurtosis") and value is not None:  # float64 rounding, as the mean's
                assert merged["features"][name][key] == pytest.approx(value, rel=1e-9, abs=1e-9), (name, key)
            elif key not in SKETCHED and key not in ("bin_boundaries", "mean", "variance"):
                assert merged["features"][name][key] == value, (name, key)
    # A scalar feature beside lists has the statistics it has alone.
    alone = analyze_batches(FeatureSpec({"z": "float_normalized"}, profile=True), pa.table({"z": table["z"]}).to_batches())
    assert whole["features"]["z"] == alone["features"]["z"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=list_tables())
def test_the_state_round_trips_through_json(data):
    import json

    _, table = data
    analyzer = DatasetAnalyzer(SPEC, count_tokens=False)  # token counts are kept as tables
    acc = analyzer.add_batch(analyzer.create_accumulator(), table.to_batches()[0])
    state = json.loads(json.dumps(analyzer.to_state(acc), allow_nan=False))
    again = analyzer.finalize(analyzer.from_state(state))
    assert {k: v for k, v in again.items() if k != "state"} == {
        k: v for k, v in analyzer.finalize(acc).items() if k != "state"
    }


def test_a_null_row_spanning_values_holds_none():
    """Arrow lets a null list slot span values: list_flatten skips them, list_parent_indices
    does not; either way the row has no values, in every statistic."""
    values = pa.array(["a", "b", "a", "c", "a"])
    column = pa.ListArray.from_arrays(pa.array([0, 2, 4, 5], pa.int32()), values, mask=pa.array([False, True, False]))
    spec = FeatureSpec({"tags": {"type": "string_categorical", "multivalent": True}})
    stats = analyze_batches(spec, [pa.record_batch({"tags": column})])["features"]["tags"]
    expected, _, _ = oracle([["a", "b"], None, ["a"]], "string")
    assert {k: stats[k] for k in expected} == expected
    assert stats["vocabulary"] == ["a", "b"] and stats["vocabulary_counts"] == [2, 1]
    assert stats["vocabulary_document_counts"] == [2, 1]


# --- a real Beam run, the keyed vocabulary path, kdp-beam merge -----------------------------


def beam_columns(rows=4000, seed=3):
    """Skewed tokens in 0-10-value lists (some empty, some null rows, null and "" elements),
    NaN among the numbers, one row of 20,000 values."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 11, rows)
    lengths[rows // 3] = 20_000
    columns = {}
    for name in TYPES:
        n = int(lengths.sum())
        if TYPES[name] == pa.string():
            values = [None if r < 0.03 else "" if r < 0.05 else f"t{v}" for v, r in zip(rng.zipf(1.4, n) % 300, rng.random(n))]
        elif TYPES[name] == pa.int64():
            values = [None if r < 0.03 else int(v) for v, r in zip(rng.zipf(1.4, n) % 500, rng.random(n))]
        else:
            values = [math.nan if r < 0.02 else None if r < 0.04 else float(v) for v, r in zip(rng.normal(5, 3, n), rng.random(n))]
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        columns[name] = [None if i % 97 == 0 else values[a:b] for i, (a, b) in enumerate(zip(offsets[:-1], offsets[1:]))]
    scalar = rng.normal(0, 1, rows).tolist()
    table = pa.table({**{name: pa.array(rows_, pa.list_(TYPES[name])) for name, rows_ in columns.items()}, "z": scalar})
    return columns, table


def run_beam(batches, output, shards=5):
    """The statistics of the batches through AnalyzeFeatures on the FnApiRunner, written
    as a bundle with its mergeable state (token counts per shard)."""
    with beam.Pipeline(options=pipeline_options([])) as pipeline:
        (
            pipeline
            | beam.Create(batches, reshuffle=True)
            | AnalyzeFeatures(SPEC, vocabulary_shards=shards, state_dir=output)
            | WriteArtifacts(output)
        )
    return load_bundle(output, with_state=True)


@pytest.fixture(scope="module")
def beam_bundles(tmp_path_factory):
    """Bundles of the whole table and of its two halves (each from a real Beam run, the
    halves with other shard counts), and the merge of the halves."""
    columns, table = beam_columns()
    root = tmp_path_factory.mktemp("multivalent")
    batches = table.to_batches(max_chunksize=300)
    half = len(batches) // 2
    whole = run_beam(batches, str(root / "whole"), shards=7)
    run_beam(batches[:half], str(root / "a"), shards=3)
    run_beam(batches[half:], str(root / "b"), shards=1)
    merge_bundles([str(root / "a"), str(root / "b")], str(root / "merged"))
    return columns, table, whole, load_bundle(str(root / "merged"), with_state=True)


def assert_same_statistics(found, expected, columns):
    for name, stats in expected.items():
        for key, value in stats.items():
            got = found[name][key]
            if key in SKETCHED or key == "bin_boundaries":
                continue  # sketches: each checked against the exact ranks (assert_matches_oracle)
            if isinstance(value, float):
                assert math.isclose(got, value, rel_tol=1e-12), (name, key)
            elif key != "vocabulary_file":
                assert got == value, (name, key)
    assert_matches_oracle({"features": found}, columns)


def test_a_beam_run_with_sharded_vocabularies_gives_the_in_process_statistics(beam_bundles):
    columns, table, whole, _ = beam_bundles
    in_process = analyze_batches(SPEC, table.to_batches(max_chunksize=1000))
    assert whole.row_count == table.num_rows
    assert_same_statistics(whole.features, in_process["features"], columns)
    assert whole.features["tags"]["vocabulary_document_counts"][0] < whole.features["tags"]["vocabulary_counts"][0]
    assert whole.features["ids"]["max_values_per_row"] == 20_000


def test_tokens_flushed_often_over_many_shards_count_the_same(beam_bundles):
    from apache_beam.testing.util import assert_that

    from kdp_beam.beam.keyed_vocabulary import CountTokens

    columns, table, whole, _ = beam_bundles
    keys = ("vocabulary", "vocabulary_counts", "vocabulary_document_counts", "vocabulary_size", "distinct_count")

    def check(found):
        found = dict(found)
        assert sorted(found) == ["ids", "tags"]
        for name, stats in found.items():
            assert {k: stats[k] for k in keys} == {k: whole.features[name][k] for k in keys}, name

    with beam.Pipeline(options=pipeline_options([])) as pipeline:
        counted = pipeline | beam.Create(table.to_batches(max_chunksize=250), reshuffle=True) | CountTokens(SPEC, shards=11, flush_rows=500)
        assert_that(counted, check)


def test_document_counts_of_rows_beyond_int32_keys():
    """Keys row x tokens + token past 2**31 are held in int64 (int32 below): the same."""
    from kdp_beam.analyzers.vocabulary import document_counts

    tokens = pa.array(["b", "a", "b", None, "b", "c", "a"])
    for rows in ([0, 0, 0, 1, 1, 2**31, 2**31], [0, 0, 0, 1, 1, 5, 5]):
        table = document_counts(tokens, np.array(rows))
        found = {t: (c, d) for t, c, d in zip(*(table[k].to_pylist() for k in ("token", "count", "document_count")))}
        assert found == {"b": (3, 2), "a": (2, 2), "c": (1, 1)}


def test_the_merge_of_two_bundles_is_the_bundle_of_their_union(beam_bundles):
    columns, _, whole, merged = beam_bundles
    assert merged.row_count == whole.row_count
    assert_same_statistics(merged.features, whole.features, columns)
    # The merged bundle keeps the document counts in its token state, and merges again.
    assert merged.state["tokens"]["tags"][0].column_names == ["token", "count", "document_count"]


# --- the loader's checks --------------------------------------------------------------------


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    _, table = beam_columns(rows=300, seed=5)
    directory = tmp_path_factory.mktemp("base") / "bundle"
    write_bundle({"spec": SPEC.to_json(), **analyze_batches(SPEC, table.to_batches(max_chunksize=100))}, str(directory))
    return directory


def more_documents(rows):
    return [[rows[0][0], rows[0][1], rows[0][1] + 1], *rows[1:]]


IMPOSSIBLE = {
    "empty_above_rows": (set_statistic("tags", "empty_count", 301), "tags", "empty_count"),
    "min_above_max": (set_statistic("x", "min_values_per_row", 20_001), "x", "min_values_per_row"),
    "min_zero_without_empty_rows": (set_statistic("y", "empty_count", 0), "y", "min_values_per_row"),
    "min_not_zero_with_empty_rows": (set_statistic("h", "min_values_per_row", 1), "h", "min_values_per_row"),
    "mean_not_count_over_rows": (set_statistic("tags", "mean_values_per_row", 3.5), "tags", "mean_values_per_row"),
    "count_beyond_the_longest_rows": (set_statistic("h", "max_values_per_row", 1), "h", "count"),
    "negative_empty": (set_statistic("ids", "empty_count", -1), "ids", "empty_count"),
    "quantiles_outside_range": (set_statistic("ids", "values_per_row_quantiles", [0] * 20 + [30_000]), "ids", "values_per_row_quantiles"),
    "quantiles_not_integers": (set_statistic("ids", "values_per_row_quantiles", [0.5] * 21), "ids", "values_per_row_quantiles"),
    "quantiles_unsorted": (set_statistic("ids", "values_per_row_quantiles", [5] + [0] * 20), "ids", "values_per_row_quantiles"),
    "epsilon_out_of_range": (set_statistic("ids", "values_per_row_epsilon", 0), "ids", "values_per_row_epsilon"),
    "documents_above_counts": (edit_vocabulary("tags", more_documents), "tags", "vocabulary_document_counts"),
    "documents_above_rows": (edit_vocabulary("ids", lambda rows: [[rows[0][0], 10**6, 290], *rows[1:]]), "ids", "vocabulary_document_counts"),
    "no_document_column": (edit_vocabulary("tags", lambda rows: [row[:2] for row in rows]), "tags", "vocabulary"),
}


@pytest.mark.parametrize("case", IMPOSSIBLE, ids=list(IMPOSSIBLE))
def test_impossible_values_are_refused_naming_the_key(base, tmp_path, case):
    edit, feature, key = IMPOSSIBLE[case]
    directory = edited(base, tmp_path / "b", edit)
    message = refusal(directory)
    file_path = vocabulary_file(directory, feature) if key.startswith("vocabulary") else directory / "statistics.json"
    assert message.startswith(f"{file_path}: feature {feature!r}: {key} ") or (
        case == "no_document_column" and "is not [token, count, document_count]" in message
    ), message


def test_every_multivalent_key_the_writer_writes_is_checked(base, tmp_path):
    import json

    statistics = json.loads((base / "statistics.json").read_text())
    unchecked = []
    for feature in TYPES:
        for key in statistics["features"][feature]:
            directory = edited(base, tmp_path / f"{feature}-{key}", set_statistic(feature, key, DELETE))
            try:
                load_bundle(str(directory))
            except Exception as e:  # noqa: BLE001 - a BundleError naming the key, asserted
                assert f"feature {feature!r}: {key} is missing" in str(e) or key == "vocabulary_file", str(e)
            else:
                unchecked.append((feature, key))
    assert unchecked == []


def test_an_empty_input_gives_loadable_list_statistics(tmp_path):
    table = pa.table({**{name: pa.array([], pa.list_(t)) for name, t in TYPES.items()}, "z": pa.array([], pa.float64())})
    statistics = analyze_batches(SPEC, table.to_batches())
    stats = statistics["features"]["tags"]
    assert stats["count"] == stats["empty_count"] == 0 and stats["mean_values_per_row"] is None
    assert stats["values_per_row_quantiles"] == [] and stats["vocabulary_document_counts"] == []
    write_bundle({"spec": SPEC.to_json(), **statistics}, str(tmp_path / "b"))
    assert load_bundle(str(tmp_path / "b")).features["tags"]["vocabulary_document_counts"] == []


# --- people ------------------------------------------------------------------------------


def test_the_summary_and_the_report_show_values_per_row(base):
    bundle = load_bundle(str(base))
    stats = bundle.features["tags"]
    line = next(line for line in summary_table(bundle.spec, bundle.features, bundle.row_count).splitlines() if line.startswith("tags "))
    assert f"{stats['min_values_per_row']}–{stats['max_values_per_row']:,} values per row" in line
    empty = stats["empty_count"]
    assert f"(mean {stats['mean_values_per_row']:.3g}, {empty} {'row' if empty == 1 else 'rows'} empty)" in line
    z_line = next(line for line in summary_table(bundle.spec, bundle.features, bundle.row_count).splitlines() if line.startswith("z "))
    assert "per row" not in z_line
    page = render_report(bundle)
    section = page[page.index('<h2>tags '):].split("</section>")[0]
    assert f"<tr><th>rows</th><td class=n>{bundle.row_count}</td></tr><tr><th>values</th><td class=n>{stats['count']:,}</td></tr>" in section
    assert f"<th>values per row</th><td class=n>{stats['min_values_per_row']}–{stats['max_values_per_row']:,}</td>" in section
    assert f"<th>empty rows</th><td class=n>{stats['empty_count']}</td>" in section
    assert f"<th>median per row</th><td class=n>{stats['values_per_row_quantiles'][10]}</td>" in section
