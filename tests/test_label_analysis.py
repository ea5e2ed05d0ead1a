"""Label statistics through real Beam pipelines and real bundles: the keyed token path gives
the in-process statistics (and the row-by-row oracle's) whatever the shards, batches and
workers; kdp-beam merge of partition bundles equals one run; the loader refuses impossible
label statistics naming the file, the feature (or the label) and the key.

Until the readers read the label (slice R), the pipelines start from beam.Create of
RecordBatches holding the label column."""

import json

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdp_beam.analyzers import analyze_batches
from kdp_beam.analyzers.dataset import DatasetAnalyzer, token_analyzers, with_label
from kdp_beam.analyzers.labels import label_contexts, read_label
from kdp_beam.analyzers.shards import token_shards
from kdp_beam.analyzers.vocabulary import TokenCounts
from kdp_beam.beam.analyze import AnalyzeFeatures
from kdp_beam.bundle.loader import load_bundle
from kdp_beam.bundle.writer import WriteArtifacts
from kdp_beam.cli import main
from kdp_beam.errors import BundleError
from kdp_beam.job import pipeline_options
from kdp_beam.spec import FeatureSpec
from kdp_beam.summary import summary_table
from tests.analyzers.test_labels import (
    assert_tokens_match,
    batches,
    expected_label,
    expected_mi,
    label_statistics,
    mi_rank,
    row_tokens,
    table,
)
from tests.test_bundle_validation import DELETE, edit_vocabulary, edited, refusal, set_statistic

FEATURES = {
    "city": {"type": "string_categorical", "output_mode": "target", "folds": 3},
    "tags": {"type": "string_categorical", "multivalent": True, "max_tokens": 6, "rank_by": "mutual_information"},
    "store": {"type": "integer_categorical", "max_tokens": 7, "rank_by": "mutual_information", "folds": 2},
    "plain": {"type": "string_categorical", "max_tokens": 5},
}
SPEC = FeatureSpec(FEATURES, label="y", fold_key="id")


def data(rows=2400, seed=0, classes=("0", "1")):
    found = table(rows, seed, classes)
    found["plain"] = list(found["city"])
    return found


def run(spec, record_batches, path, shards=5, args=()):
    """A real Beam pipeline writing a bundle at `path` (its token state by the workers)."""
    with beam.Pipeline(options=pipeline_options(list(args))) as pipeline:
        _ = (
            pipeline
            | beam.Create(record_batches, reshuffle=True)
            | AnalyzeFeatures(spec, vocabulary_shards=shards, state_dir=str(path))
            | WriteArtifacts(str(path))
        )
    return load_bundle(str(path))


def bundle_statistics(bundle):
    return label_statistics({"label": bundle.label, "features": bundle.features})


def test_a_beam_run_gives_the_in_process_statistics_and_the_oracles(tmp_path):
    rows = data()
    bundle = run(SPEC, batches(rows, size=400), tmp_path / "b")
    assert bundle_statistics(bundle) == label_statistics(analyze_batches(SPEC, batches(rows)))
    label = expected_label(rows["y"])
    assert bundle.label == {"column": "y", "inferred": True, **label}
    assert_tokens_match(bundle.features["city"], rows["city"], rows["y"], label, folds=3, keys=rows["id"])
    assert_tokens_match(bundle.features["store"], rows["store"], rows["y"], label, folds=2, keys=rows["id"])
    assert_tokens_match(bundle.features["tags"], rows["tags"], rows["y"], label, multivalent=True)
    scores = expected_mi(rows["tags"], rows["y"], multivalent=True)
    tags = bundle.features["tags"]
    counts = {t: sum(row_tokens(v, True).count(t) for v in rows["tags"]) for t in scores}
    assert tags["vocabulary"] == mi_rank(scores, counts, 5)
    np.testing.assert_allclose(tags["vocabulary_scores"], [scores[t] for t in tags["vocabulary"]], rtol=1e-9, atol=1e-13)
    assert "label_rows" not in bundle.features["plain"]  # not label-aware: as without a label
    vocabulary = json.loads((tmp_path / "b" / bundle.features["city"]["vocabulary_file"]).read_text().splitlines()[0])
    assert len(vocabulary) == 6  # token, count, n_c, sums, fold counts, fold sums


@pytest.mark.parametrize(
    "shards, size, args",
    [
        (1, 2400, ()),
        (7, 150, ()),
        (3, 500, ("--direct_running_mode=multi_processing", "--direct_num_workers=2")),
    ],
    ids=["one-shard", "many-shards-small-batches", "two-worker-processes"],
)
def test_shards_batches_and_workers_give_identical_statistics(tmp_path, shards, size, args):
    rows = data(seed=1, classes=("a", "b", "c"))
    expected = label_statistics(analyze_batches(SPEC, batches(rows)))
    assert bundle_statistics(run(SPEC, batches(rows, size=size), tmp_path / "b", shards, args)) == expected


def keyed_path(spec, record_batches, shards, flushes, seed):
    """The keyed path's steps as the pipeline runs them (kdp_beam.beam.keyed_vocabulary),
    without Beam: per "bundle" of batches, token tables summed then split by token into
    shards; per shard summed, its top; per feature the tops ranked with the label contexts."""
    rng = np.random.default_rng(seed)
    analyzers = token_analyzers(spec)
    statistics = DatasetAnalyzer(spec, count_tokens=False)
    acc = statistics.create_accumulator()
    per_shard = {}
    buffers = {name: TokenCounts() for name in analyzers}
    for batch in record_batches:
        acc = statistics.add_batch(acc, batch)
        label = read_label(batch, spec)
        for name, analyzer in analyzers.items():
            column = batch.column(name)
            if spec.features[name].options["multivalent"]:
                column = column.cast(pa.list_(pa.string()))
            buffers[name].add(analyzer.token_table(column, label))
        if rng.random() < flushes:  # a bundle ends: its counts go to their shards
            _flush(buffers, shards, per_shard)
            buffers = {name: TokenCounts() for name in analyzers}
    _flush(buffers, shards, per_shard)
    contexts = label_contexts(spec, statistics.finalize(acc))
    tops = {}
    for (name, _), tables in per_shard.items():
        summed = TokenCounts(tables).fold()
        analyzer = analyzers[name]
        tops.setdefault(name, []).append((analyzer.shard_top(summed, *with_label(analyzer, contexts, name)), *analyzer.table_totals(summed)))
    return {
        name: analyzers[name].finalize_table(
            pa.concat_tables([t for t, _, _ in found]), sum(d for _, d, _ in found), sum(n for _, _, n in found),
            *with_label(analyzers[name], contexts, name),
        )
        for name, found in tops.items()
    }


def _flush(buffers, shards, per_shard):
    for name, buffer in buffers.items():
        summed = buffer.fold()
        if summed is None:
            continue
        shard = token_shards(summed["token"].combine_chunks(), shards)
        for key in np.unique(shard):
            per_shard.setdefault((name, int(key)), []).append(summed.filter(pa.array(shard == key)))


@settings(max_examples=20, deadline=None)
@given(shards=st.integers(1, 9), size=st.integers(40, 900), flushes=st.floats(0, 1), seed=st.integers(0, 2**16))
def test_the_keyed_path_gives_the_same_vocabularies_for_any_shards_batches_and_bundles(shards, size, flushes, seed):
    """Each shard keeps only its top tokens (bounded memory); the ranking of their union
    is the one of all tokens, by frequency and by mutual information."""
    rows = data(rows=900, seed=2, classes=("x", "y", "z", "w"))
    features = {name: f for name, f in FEATURES.items() if name != "plain"}
    spec = FeatureSpec({**features, "city": {**features["city"], "max_tokens": 8}}, label="y", fold_key="id")
    order = np.random.default_rng(seed).permutation((900 + size - 1) // size)
    pieces = batches(rows, size=size)
    found = keyed_path(spec, [pieces[i] for i in order], shards, flushes, seed)
    expected = analyze_batches(spec, batches(rows))["features"]
    for name, stats in found.items():
        assert json.loads(json.dumps(stats)) == json.loads(json.dumps({k: expected[name][k] for k in stats})), name


@pytest.mark.parametrize("label_type", [None, "regression"])
def test_merged_partition_bundles_equal_one_run(tmp_path, capsys, label_type):
    features = FEATURES if label_type is None else {
        "city": {"type": "string_categorical", "output_mode": "target", "folds": 3},
        "tags": {"type": "string_categorical", "multivalent": True, "output_mode": "target"},
    }
    spec = FeatureSpec(features, label="y", label_type=label_type, fold_key="id")
    days = [data(rows=800, seed=10 + day) for day in range(3)]
    if label_type == "regression":
        for day, rows in enumerate(days):
            rows["y"] = [None if y is None else float(y) * 10.5 + day * 0.25 for y in rows["y"]]
    # The last day has no positive label: its bundle is still a binary label's (classes 0, 1).
    days[2]["y"] = [None if y is None else (y if label_type else "0") for y in days[2]["y"]]
    label_arrow = pa.float64() if label_type else pa.string()
    for day, rows in enumerate(days):
        run(spec, batches(rows, label_type=label_arrow), tmp_path / f"day{day}", shards=3)
    whole = {name: sum((d[name] for d in days), []) for name in days[0]}
    one = run(spec, batches(whole, label_type=label_arrow), tmp_path / "all", shards=4)
    assert main(["merge", str(tmp_path / "day0"), str(tmp_path / "day1"), "--output", str(tmp_path / "m01")]) == 0
    assert main(["merge", str(tmp_path / "m01"), str(tmp_path / "day2"), "--output", str(tmp_path / "m")]) == 0
    assert "label 'y': " in capsys.readouterr().err
    merged = load_bundle(str(tmp_path / "m"), with_state=True)
    if label_type is None:
        assert load_bundle(str(tmp_path / "day2")).label["classes"] == ["0", "1"]
        assert bundle_statistics(merged) == bundle_statistics(one)
        return
    got, want = bundle_statistics(merged), bundle_statistics(one)
    for key, value in want["label"].items():  # floats to rounding, as moments merge
        close = isinstance(value, float) or key == "prior"
        assert got["label"][key] == (pytest.approx(value, rel=1e-12) if close else value), key
    for name in features:
        for key, value in want["features"][name].items():
            if key.endswith("sums") or key in ("label_totals",):
                np.testing.assert_allclose(np.asarray(got["features"][name][key], float), np.asarray(value, float), rtol=1e-12)
            else:
                assert got["features"][name][key] == value, (name, key)


def test_the_summary_gives_the_label_and_each_label_aware_feature(tmp_path):
    rows = data(rows=600, seed=4)
    bundle = run(SPEC, batches(rows), tmp_path / "b", shards=2)
    lines = summary_table(bundle.spec, bundle.features, bundle.row_count, bundle.label).splitlines()
    labelled = sum(y is not None for y in rows["y"])
    rate = sum(y == "1" for y in rows["y"]) / labelled
    assert lines[1] == (
        f"label 'y': binary (inferred), positive '1' in {rate:.1%} of {labelled:,} labelled rows, "
        f"{600 - labelled:,} missing"
    )
    city = next(line for line in lines if line.startswith("city "))
    assert f"label in {bundle.features['city']['label_rows']:,} rows, 3 folds" in city
    assert "kept by mutual information" in next(line for line in lines if line.startswith("store "))


def test_a_spec_without_a_label_writes_no_label_statistics(tmp_path):
    rows = data(rows=300, seed=5)
    spec = FeatureSpec({"plain": FEATURES["plain"]})
    bundle = run(spec, batches(rows), tmp_path / "b", shards=2)
    statistics = json.loads((tmp_path / "b" / "statistics.json").read_text())
    state = json.loads((tmp_path / "b" / "state" / "analyzers.json").read_text())
    assert "label" not in statistics and "label" not in state and bundle.label is None
    assert list(statistics["features"]["plain"]) == [
        "type", "count", "null_count", "missing_count", "vocabulary_size", "distinct_count", "vocabulary_file"
    ]
    shard = bundle.manifest["state"]["tokens"]["plain"][0]
    assert {len(json.loads(line)) for line in (tmp_path / "b" / shard).read_text().splitlines()} == {2}


def test_no_labelled_row_fails_the_job_saying_so(tmp_path):
    rows = data(rows=50, seed=6)
    rows["y"] = [None] * 50
    with pytest.raises(Exception, match=r"the label 'y' has no value in the 50 rows \(all missing\)"):
        run(SPEC, batches(rows), tmp_path / "b", shards=2)


# --- the loader's checks ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    path = tmp_path_factory.mktemp("labels") / "bundle"
    run(SPEC, batches(data(rows=500, seed=7)), path, shards=2)
    return path


def set_label(key, value):
    def edit(directory):
        path = directory / "statistics.json"
        statistics = json.loads(path.read_text())
        if value is DELETE:
            statistics["label"].pop(key)
        else:
            statistics["label"][key] = value
        path.write_text(json.dumps(statistics))

    return edit


def vocabulary_cell(column, change, row=0):
    """An edit of one cell of the city vocabulary's file (columns: token, count, n_c, sums,
    fold counts, fold sums)."""
    def edit_rows(rows):
        rows[row][column] = change(rows[row][column])
        return rows

    return edit_vocabulary("city", edit_rows)


def swap_scores(rows):
    """The store vocabulary's columns: token, count, n_c, sums, score, fold counts, fold sums."""
    rows[0][4], rows[1][4] = rows[1][4], rows[0][4]
    return rows


def negative_score(rows):
    rows[0][4] = -0.5
    return rows


IMPOSSIBLE = {
    "n_c_above_the_count": (vocabulary_cell(2, lambda n: 10**6), "vocabularies/000-city.jsonl", "feature 'city'", "vocabulary_label_counts"),
    "sum_above_n_c": (vocabulary_cell(3, lambda s: [s[0] + 10**6]), "vocabularies/000-city.jsonl", "feature 'city'", "vocabulary_label_sums"),
    "sums_of_another_width": (vocabulary_cell(3, lambda s: s + [0]), "vocabularies/000-city.jsonl", "feature 'city'", "vocabulary_label_sums"),
    "folds_not_adding_up": (vocabulary_cell(4, lambda f: [f[0] + 1, *f[1:]]), "vocabularies/000-city.jsonl", "feature 'city'", "vocabulary_fold_label_counts"),
    "fold_sums_not_adding_up": (vocabulary_cell(5, lambda f: [[f[0][0] + 1], *f[1:]]), "vocabularies/000-city.jsonl", "feature 'city'", "vocabulary_fold_label_sums"),
    "scores_not_descending": (edit_vocabulary("store", swap_scores), "vocabularies/002-store.jsonl", "feature 'store'", "vocabulary_scores"),
    "negative_score": (edit_vocabulary("store", negative_score), "vocabularies/002-store.jsonl", "feature 'store'", "vocabulary_scores"),
    "label_rows_above_present": (set_statistic("city", "label_rows", 10**6), "statistics.json", "feature 'city'", "label_rows"),
    "totals_above_rows": (set_statistic("city", "label_totals", [10**6]), "statistics.json", "feature 'city'", "label_totals"),
    "prior_not_the_labels": (set_statistic("city", "label_prior", [0.5]), "statistics.json", "feature 'city'", "label_prior"),
    "another_label_type": (set_statistic("city", "label_type", "regression"), "statistics.json", "feature 'city'", "label_type"),
    "label_prior_not_the_rate": (set_label("prior", [0.99]), "statistics.json", "label 'y'", "prior"),
    "classes_out_of_order": (set_label("classes", ["1", "0"]), "statistics.json", "label 'y'", "classes"),
    "class_counts_not_adding_up": (set_label("class_counts", [1, 2]), "statistics.json", "label 'y'", "class_counts"),
    "positive_class_not_second": (set_label("positive_class", "0"), "statistics.json", "label 'y'", "positive_class"),
    "label_count_not_the_rows": (set_label("count", 3), "statistics.json", "label 'y'", "count"),
    "declared_type_contradicted": (set_label("inferred", False), "statistics.json", "label 'y'", "inferred"),
}


@pytest.mark.parametrize("case", IMPOSSIBLE, ids=list(IMPOSSIBLE))
def test_impossible_label_statistics_are_refused_naming_file_feature_and_key(base, tmp_path, case):
    edit, file, owner, key = IMPOSSIBLE[case]
    message = refusal(edited(base, tmp_path / "b", edit))
    assert file in message and f"{owner}: {key}" in message, message


def test_every_label_key_the_writer_writes_is_checked(base, tmp_path):
    """Removing any label statistic fails naming it (the vocabulary file's columns are
    checked by the file's shape)."""
    statistics = json.loads((base / "statistics.json").read_text())
    edits = [(f"label 'y': {key} is missing", set_label(key, DELETE)) for key in statistics["label"]]
    edits += [
        (f"feature {name!r}: {key} is missing", set_statistic(name, key, DELETE))
        for name, stats in statistics["features"].items() for key in stats if key.startswith("label_")
    ]
    assert len(edits) > 20
    for i, (message, edit) in enumerate(edits):
        assert message in refusal(edited(base, tmp_path / str(i), edit))
    # A bundle whose label statistics are gone, or given to a spec without a label.
    assert '"label" is None, not its statistics' in refusal(edited(base, tmp_path / "none", lambda d: _drop_label(d)))


def _drop_label(directory):
    path = directory / "statistics.json"
    statistics = json.loads(path.read_text())
    del statistics["label"]
    path.write_text(json.dumps(statistics))


def test_a_vocabulary_ranked_by_mutual_information_loads_with_counts_not_descending(base):
    store = load_bundle(str(base)).features["store"]
    assert any(a < b for a, b in zip(store["vocabulary_counts"], store["vocabulary_counts"][1:]))
    with pytest.raises(BundleError, match="vocabulary_counts are not in descending order"):
        load_bundle(str(edited(base, base.parent / "plain", edit_vocabulary("plain", lambda r: r[::-1]))))
