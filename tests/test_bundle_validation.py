"""The loader refuses consistently edited bundles (files changed, checksums re-signed) whose
values are impossible, naming the file, the feature and the key; whatever it accepts builds
a working model."""

import hashlib
import json
import math
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import kdp_beam
from kdp_beam.analyzers import analyze_batches
from kdp_beam.bundle.loader import load_bundle
from kdp_beam.bundle.writer import write_bundle
from kdp_beam.errors import BundleError
from kdp_beam.spec import FeatureSpec

FEATURES = {
    "f": "float",
    "fr": {"type": "float_rescaled", "scale": 2.0},
    "fn": {"type": "float_normalized", "missing_indicator": True},
    "fd": {"type": "float_discretized", "num_bins": 4},
    "fb": {"type": "float_discretized", "bin_boundaries": [0.0, 1.0]},
    "ic": {"type": "integer_categorical", "max_tokens": 5},
    "sc": {"type": "string_categorical", "max_tokens": 4, "missing_token": "?"},
    "sa": {"type": "string_categorical", "max_tokens": 3, "counting": "approximate"},
    "sh": {"type": "string_hashed", "num_bins": 4},
    "ih": {"type": "integer_hashed", "num_bins": 4},
    "p": "passthrough",
    "t": {"type": "text", "max_tokens": 6, "output_mode": "tf_idf", "ngrams": 2},
    "d": {"type": "date", "missing_indicator": True},
}
SPEC = FeatureSpec(FEATURES, profile=True)
ROWS = 40


def data_table():
    """Every column kind, with nulls, NaN, inf, unparseable dates and empty texts."""
    rng = np.random.default_rng(0)
    x = rng.normal(5, 2, ROWS)
    x[3], x[4] = np.nan, np.inf
    words = ["good", "bad", "fast", "slow", "ok"]
    return pa.table(
        {
            "f": pa.array(x, mask=np.arange(ROWS) % 7 == 0),  # nulls, NaN and inf
            "fr": x,
            "fn": rng.normal(0, 1, ROWS),
            "fd": rng.uniform(0, 10, ROWS),
            "fb": rng.uniform(-1, 2, ROWS),
            "ic": pa.array([None if i % 9 == 0 else int(v) for i, v in enumerate(rng.integers(0, 8, ROWS))]),
            "sc": pa.array([None if i % 5 == 0 else str(v) for i, v in enumerate(rng.choice(list("abcdefg"), ROWS))]),
            "sa": rng.choice(list("uvwxyz"), ROWS),
            "sh": rng.choice(list("abc"), ROWS),
            "ih": rng.integers(0, 100, ROWS),
            "p": rng.normal(0, 1, ROWS),
            "t": [" ".join(rng.choice(words, rng.integers(0, 4))) for _ in range(ROWS)],
            "d": [
                None if i % 6 == 0 else "never" if i % 11 == 0 else f"20{10 + i % 15}-0{1 + i % 9}-1{i % 10}T0{i % 10}:00:00"
                for i in range(ROWS)
            ],
        }
    )


def model_input():
    """A batch the model is called on: the data with finite numbers (inf stays inf in
    any model, whatever its statistics)."""
    table = data_table()
    return {
        name: [0.5 if isinstance(v, float) and not math.isfinite(v) else v for v in table[name].to_pylist()]
        for name in FEATURES
    }


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A real bundle of every feature type (analysed by kdp_beam, written by write_bundle)."""
    directory = tmp_path_factory.mktemp("base") / "bundle"
    statistics = analyze_batches(SPEC, data_table().to_batches(max_chunksize=16))
    write_bundle({"spec": SPEC.to_json(), **statistics}, str(directory))
    return directory


# --- the helpers: a consistent edit is a change plus re-signed checksums ------------------

DELETE = object()


def resign(directory):
    """Re-signs every file the manifest lists, as someone editing a bundle would."""
    manifest_path = directory / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for name in manifest["files"]:
        data = (directory / name).read_bytes()
        manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    manifest_path.write_text(json.dumps(manifest))


def edited(base, directory, edit):
    """A copy of `base` at `directory` with `edit(directory)` applied and re-signed."""
    shutil.copytree(base, directory)
    edit(directory)
    resign(directory)
    return directory


def set_statistic(feature, key, value):
    """An edit of statistics.json: features[feature][key] = value (DELETE removes it).
    NaN and infinities are written as json.dumps writes them (NaN, Infinity)."""

    def edit(directory):
        path = directory / "statistics.json"
        statistics = json.loads(path.read_text())
        if value is DELETE:
            statistics["features"][feature].pop(key, None)
        else:
            statistics["features"][feature][key] = value
        path.write_text(json.dumps(statistics))

    return edit


def vocabulary_file(directory, feature):
    return directory / json.loads((directory / "statistics.json").read_text())["features"][feature]["vocabulary_file"]


def edit_vocabulary(feature, change, size_too=False):
    """An edit of a feature's vocabulary file: rows = change(rows) (each row a list);
    `size_too` also sets vocabulary_size to the new length (a careful editor)."""

    def edit(directory):
        path = vocabulary_file(directory, feature)
        rows = change([json.loads(line) for line in path.read_text().splitlines()])
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        if size_too:
            set_statistic(feature, "vocabulary_size", len(rows))(directory)

    return edit


def refusal(directory):
    with pytest.raises(BundleError) as error:
        load_bundle(str(directory))
    return str(error.value)


def test_the_base_bundle_loads_and_builds_a_working_model(base):
    bundle = load_bundle(str(base))
    assert bundle.features["fd"]["bin_boundaries"] and bundle.features["t"]["vocabulary_document_counts"]
    assert bundle.features["f"]["nan_count"] and bundle.features["f"]["inf_count"]
    assert bundle.features["d"]["unparseable_count"] and bundle.features["sc"]["vocabulary"]
    output = np.asarray(kdp_beam.FeatureSpace.from_artifacts(str(base))(model_input()))
    assert output.shape[0] == ROWS and np.isfinite(output).all()


def inf():
    return float("inf")


# (edit, file the error names, feature, key)
IMPOSSIBLE = {
    "negative_variance": (set_statistic("fn", "variance", -1.0), "statistics.json", "fn", "variance"),
    "nan_mean": (set_statistic("fn", "mean", float("nan")), "statistics.json", "fn", "mean"),
    "infinite_mean": (set_statistic("fn", "mean", inf()), "statistics.json", "fn", "mean"),
    "huge_integer_mean": (set_statistic("fn", "mean", 10**400), "statistics.json", "fn", "mean"),
    "mean_outside_range": (set_statistic("f", "mean", 1e6), "statistics.json", "f", "mean"),
    "variance_beyond_range": (set_statistic("fr", "variance", 1e9), "statistics.json", "fr", "variance"),
    "min_above_max": (set_statistic("fn", "min", 1e6), "statistics.json", "fn", "min"),
    "null_count_above_count": (set_statistic("fn", "null_count", 41), "statistics.json", "fn", "null_count"),
    "counts_that_do_not_add_up": (set_statistic("f", "value_count", 3), "statistics.json", "f", "value_count"),
    "missing_count_contradicted": (set_statistic("d", "missing_count", 0), "statistics.json", "d", "missing_count"),
    "count_not_the_row_count": (set_statistic("p", "count", 39), "statistics.json", "p", "count"),
    "count_as_text": (set_statistic("fn", "count", "40"), "statistics.json", "fn", "count"),
    "count_as_float": (set_statistic("fn", "nan_count", 0.0), "statistics.json", "fn", "nan_count"),
    "count_as_bool": (set_statistic("sc", "vocabulary_size", True), "statistics.json", "sc", "vocabulary_size"),
    "mean_as_text": (set_statistic("fn", "mean", "0.1"), "statistics.json", "fn", "mean"),
    "normalized_without_mean": (set_statistic("fn", "mean", DELETE), "statistics.json", "fn", "mean"),
    "normalized_without_variance": (set_statistic("fn", "variance", DELETE), "statistics.json", "fn", "variance"),
    "discretized_without_boundaries": (set_statistic("fd", "bin_boundaries", DELETE), "statistics.json", "fd", "bin_boundaries"),
    "date_without_year_mean": (set_statistic("d", "year_mean", DELETE), "statistics.json", "d", "year_mean"),
    "non_finite_boundaries": (set_statistic("fd", "bin_boundaries", [1.0, inf(), float("nan")]), "statistics.json", "fd", "bin_boundaries"),
    "unsorted_boundaries": (set_statistic("fd", "bin_boundaries", [5.0, 2.0, 7.0]), "statistics.json", "fd", "bin_boundaries"),
    "too_few_boundaries": (set_statistic("fd", "bin_boundaries", [5.0]), "statistics.json", "fd", "bin_boundaries"),
    "boundaries_outside_range": (set_statistic("fd", "bin_boundaries", [-50.0, 1.0, 2.0]), "statistics.json", "fd", "bin_boundaries"),
    "epsilon_out_of_range": (set_statistic("fd", "quantile_epsilon", 2.0), "statistics.json", "fd", "quantile_epsilon"),
    "date_variance_negative": (set_statistic("d", "year_variance", -0.5), "statistics.json", "d", "year_variance"),
    "date_not_iso": (set_statistic("d", "min_date", "yesterday"), "statistics.json", "d", "min_date"),
    "date_with_time_zone": (set_statistic("d", "min_date", "2010-01-10T00:00:00+05:00"), "statistics.json", "d", "min_date"),
    "date_year_contradicted": (set_statistic("d", "year_min", 1999.0), "statistics.json", "d", "min_date"),
    "unparseable_above_count": (set_statistic("d", "unparseable_count", 10**6), "statistics.json", "d", "unparseable_count"),
    "wrong_type": (set_statistic("sh", "type", "string_categorical"), "statistics.json", "sh", "type"),
    "approximate_distinct": (set_statistic("sa", "distinct_count", 3), "statistics.json", "sa", "distinct_count"),
    "distinct_below_kept": (set_statistic("ic", "distinct_count", 1), "statistics.json", "ic", "distinct_count"),
    "vocabulary_of_a_float": (set_statistic("fn", "vocabulary_file", "vocabularies/005-ic.jsonl"), "statistics.json", "fn", "vocabulary_file"),
    "shared_vocabulary": (set_statistic("sa", "vocabulary_file", "vocabularies/006-sc.jsonl"), "statistics.json", "sa", "vocabulary_file"),
    "vocabulary_file_not_listed": (set_statistic("sc", "vocabulary_file", "../x.jsonl"), "statistics.json", "sc", "vocabulary_file"),
    "duplicate_token": (edit_vocabulary("sc", lambda rows: [rows[0], [rows[0][0], rows[1][1]], *rows[2:]]), "vocab", "sc", "vocabulary"),
    "count_above_rows": (edit_vocabulary("ic", lambda rows: [[rows[0][0], 41], *rows[1:]]), "vocab", "ic", "vocabulary_counts"),
    "counts_above_rows_together": (edit_vocabulary("sc", lambda rows: [[t, 30] for t, _ in rows]), "vocab", "sc", "vocabulary_counts"),
    "zero_count": (edit_vocabulary("sc", lambda rows: [*rows[:-1], [rows[-1][0], 0]]), "vocab", "sc", "vocabulary_counts"),
    "counts_out_of_rank": (edit_vocabulary("ic", lambda rows: rows[::-1] if rows[0][1] != rows[-1][1] else rows[:1] + [[99, rows[0][1] + 1]]), "vocab", "ic", "vocabulary_counts"),
    "integer_token_as_text": (edit_vocabulary("ic", lambda rows: [[str(rows[0][0]), rows[0][1]], *rows[1:]]), "vocab", "ic", "vocabulary"),
    "integer_token_beyond_int64": (edit_vocabulary("ic", lambda rows: [[2**64, rows[0][1]], *rows[1:]]), "vocab", "ic", "vocabulary"),
    "string_token_as_number": (edit_vocabulary("sc", lambda rows: [[7, rows[0][1]], *rows[1:]]), "vocab", "sc", "vocabulary"),
    "lone_surrogate_token": (edit_vocabulary("sc", lambda rows: [["\ud800", rows[0][1]], *rows[1:]]), "vocab", "sc", "vocabulary"),
    "oov_token": (edit_vocabulary("sc", lambda rows: [["[UNK]", rows[0][1]], *rows[1:]]), "vocab", "sc", "vocabulary"),
    "padding_token_in_text": (edit_vocabulary("t", lambda rows: [["", *rows[0][1:]], *rows[1:]]), "vocab", "t", "vocabulary"),
    "longer_than_max_tokens": (edit_vocabulary("sc", lambda rows: rows + [[f"new{i}", 1] for i in range(4)], size_too=True), "vocab", "sc", "vocabulary"),
    "size_contradicts_file": (edit_vocabulary("sc", lambda rows: rows[:-1]), "statistics.json", "sc", "vocabulary_size"),
    "documents_above_count": (edit_vocabulary("t", lambda rows: [[rows[0][0], rows[0][1], rows[0][1] + 1], *rows[1:]]), "vocab", "t", "vocabulary_document_counts"),
    "text_counts_above_token_count": (set_statistic("t", "token_count", 1), "vocab", "t", "vocabulary_counts"),
}


@pytest.mark.parametrize("case", IMPOSSIBLE, ids=list(IMPOSSIBLE))
def test_impossible_values_are_refused_naming_file_feature_and_key(base, tmp_path, case):
    edit, file, feature, key = IMPOSSIBLE[case]
    directory = edited(base, tmp_path / "b", edit)
    file_path = vocabulary_file(directory, feature) if file == "vocab" else directory / file
    assert refusal(directory).startswith(f"{file_path}: feature {feature!r}: {key} ")


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda d: (d / "vocabularies" / "006-sc.jsonl").write_text('["a", 3]\n["b"]\n'), ["006-sc.jsonl: line 2: feature 'sc': vocabulary line ['b'] is not [token, count]"]),
        (lambda d: (d / "vocabularies" / "011-t.jsonl").write_text('["a", 3]\n'), ["011-t.jsonl: line 1: feature 't'", "[token, count, document_count]"]),
        (lambda d: (d / "vocabularies" / "006-sc.jsonl").write_text("[" * 100_000 + "\n"), ["006-sc.jsonl: line 1: feature 'sc': vocabulary: not valid JSON"]),
        (lambda d: (d / "statistics.json").write_text('{"row_count": 40, "features": []}'), ["statistics.json: not a statistics document"]),
        (lambda d: (d / "statistics.json").write_text(json.dumps({**json.loads((d / "statistics.json").read_text()), "row_count": 41})), ["manifest.json: row_count 40 differs", "statistics.json's 41"]),
        (set_statistic("fn", "mean", None), ["feature 'fn': mean is null, but 40 values were counted"]),
        (lambda d: (d / "statistics.json").write_text(json.dumps({**json.loads((d / "statistics.json").read_text()), "bad_records": {"count": 2, "by_reason": {}}})), ["statistics.json: bad_records"]),
    ],
    ids=["short_line", "text_without_documents", "deeply_nested", "features_not_an_object", "row_count", "null_mean", "bad_records"],
)
def test_malformed_files_are_refused_naming_the_file(base, tmp_path, edit, words):
    message = refusal(edited(base, tmp_path / "b", edit))
    for word in words:
        assert word in message


def test_report_on_an_impossible_bundle_is_one_line(base, tmp_path, capsys):
    from kdp_beam.cli import main

    directory = edited(base, tmp_path / "b", set_statistic("fn", "variance", -1.0))
    assert main(["report", str(directory), "--output", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kdp-beam: error:") and "'fn': variance" in err[0]
    assert not (tmp_path / "r.html").exists()


def test_every_key_the_writer_writes_is_checked(base, tmp_path):
    """No drift between what the analysis writes and what the loader checks: removing any
    key a feature's statistics hold (a plug-in's own excepted) fails naming it."""
    statistics = json.loads((base / "statistics.json").read_text())
    unchecked = []
    for feature, stats in statistics["features"].items():
        for key in stats:
            directory = edited(base, tmp_path / f"{feature}-{key}", set_statistic(feature, key, DELETE))
            try:
                load_bundle(str(directory))
            except BundleError as e:
                assert f"feature {feature!r}: {key} is missing" in str(e) or key in ("vocabulary_file",), str(e)
            else:
                unchecked.append((feature, key))
    assert unchecked == []


# --- any edit: refused naming the file and the feature, or a working model -----------------

FEATURE_KEYS = sorted(
    (feature, key)
    for feature, stats in analyze_batches(SPEC, data_table().to_batches())["features"].items()
    for key in [*stats, "vocabulary_file", "extra"]
    if key not in ("vocabulary", "vocabulary_counts", "vocabulary_document_counts")
)
VALUES = st.one_of(
    st.just(DELETE),
    st.none(),
    st.booleans(),
    st.integers(-3, 45),
    st.integers(),
    st.floats(),
    st.floats(-20, 20),
    st.text(max_size=4),
    st.sampled_from(["2010-01-10T00:00:00", "vocabularies/006-sc.jsonl", "[UNK]", "\ud800"]),
    st.lists(st.one_of(st.floats(), st.integers(-5, 50), st.text(max_size=2)), max_size=4),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)
VOCABULARY_FEATURES = ["ic", "sc", "sa", "t"]
COLUMN_VALUES = st.one_of(st.integers(-2, 50), st.text(max_size=3), st.floats(), st.none(), st.just("[UNK]"), st.integers(2**62, 2**65))


@st.composite
def vocabulary_edits(draw):
    feature = draw(st.sampled_from(VOCABULARY_FEATURES))
    how = draw(st.sampled_from(["set", "duplicate", "drop", "append", "swap", "width"]))
    row, column, value = draw(st.integers(0, 10)), draw(st.integers(0, 2)), draw(COLUMN_VALUES)

    def change(rows):
        if not rows:
            return [[value, 1]]
        i = row % len(rows)
        if how == "set":
            rows[i][column % len(rows[i])] = value
        elif how == "duplicate":
            rows.insert(i, list(rows[i]))
        elif how == "drop":
            del rows[i]
        elif how == "append":
            rows.append([value, *rows[-1][1:]])
        elif how == "swap":
            rows[0], rows[i] = rows[i], rows[0]
        else:
            rows[i] = rows[i][:-1] if column else [*rows[i], 1]
        return rows

    return feature, edit_vocabulary(feature, change, size_too=draw(st.booleans()))


@st.composite
def statistic_edits(draw):
    feature, key = draw(st.sampled_from(FEATURE_KEYS))
    return feature, set_statistic(feature, key, draw(VALUES))


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edit=st.one_of(statistic_edits(), vocabulary_edits()))
def test_any_edit_is_refused_naming_file_and_feature_or_builds_a_working_model(base, edit):
    feature, change = edit
    with tempfile.TemporaryDirectory() as scratch:
        directory = edited(base, Path(scratch) / "b", change)
        try:
            bundle = load_bundle(str(directory))
        except BundleError as e:
            event("refused")
            # "<bundle file>: feature 'x': key ..." (the edited feature, or the one it clashes with)
            assert re.match(rf"{re.escape(str(directory))}/\S+(: line \d+)?: feature '\w+': \w+\b", str(e)), str(e)
            assert repr(feature) in str(e) or f"{feature}.jsonl" in str(e), str(e)
            return
        event("loaded: a model is built")
        output = np.asarray(kdp_beam.FeatureSpace.from_artifacts(bundle)(model_input()))
        assert np.isfinite(output).all(), (feature, bundle.features[feature])
