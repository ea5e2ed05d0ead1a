"""The label's statistics and the per-token label statistics of label-aware categoricals,
in process (analyze_batches, the accumulators' merge and state), against an independent
computation over the same rows in plain Python: collections.Counter, fractions, math.log.

Until the readers read the label (slice R), batches are built by hand holding the label
column as text (float64 for a declared regression label)."""

import json
import math
import re
from collections import Counter, defaultdict
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdp_beam.analyzers import DatasetAnalyzer, analyze_batches
from kdp_beam.analyzers.labels import MAX_CLASSES, fold_of
from kdp_beam.errors import InputDataError
from kdp_beam.spec import FeatureSpec

# --- the oracle: the contract spelled again, row by row ---------------------------------


def class_order(texts):
    if all(re.fullmatch(r"-?[0-9]+", t) for t in texts):
        return sorted(texts, key=int)
    return sorted(texts)


def expected_label(labels, declared=None):
    """The top-level label statistics of a list of label texts (None: missing)."""
    seen = [y for y in labels if y is not None and y != ""]
    counts = Counter(seen)
    numbers = all(re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", y) for y in counts)
    label_type = declared or (
        "regression" if numbers and any(float(y) != int(float(y)) for y in counts)
        else "binary" if len(counts) <= 2 else "multiclass"
    )
    found = {"label_type": label_type, "count": len(labels), "null_count": len(labels) - len(seen)}
    if label_type == "regression":
        values = [Fraction(float(y)) for y in seen]
        mean = sum(values) / len(values)
        found.update(mean=float(mean), variance=float(sum((v - mean) ** 2 for v in values) / len(values)))
        found["prior"] = [found["mean"]]
        return found
    if label_type == "binary" and len(counts) == 1:
        counts[{"1": "0", "0": "1", "true": "false", "false": "true"}[seen[0]]] = 0
    classes = class_order(list(counts))
    found.update(classes=classes, class_counts=[counts[c] for c in classes])
    if label_type == "binary":
        found["positive_class"] = classes[1]
        found["prior"] = [counts[classes[1]] / len(seen)]
    else:
        found["prior"] = [counts[c] / len(seen) for c in classes]
    return found


def label_columns(label):
    if label["label_type"] == "binary":
        return [label["positive_class"]]
    return label["classes"] if label["label_type"] == "multiclass" else None


def row_tokens(value, multivalent, missing_token=None):
    if multivalent:
        return [v for v in (value or []) if v is not None]
    if value is None:
        return [] if missing_token is None else [missing_token]
    return [value]


def expected_tokens(values, labels, label, multivalent=False, folds=None, keys=None, missing_token=None):
    """{token: {"count", "documents", "n", "sums", "fold_n", "fold_sums"}} and (label_rows,
    label_totals), row by row."""
    columns = label_columns(label)
    width = 1 if columns is None else len(columns)
    k = folds or 1
    fold = fold_of(pa.array(keys, pa.string()), folds).tolist() if folds else [0] * len(values)
    found = defaultdict(lambda: {"count": 0, "documents": 0, "n": 0, "sums": [0] * width,
                                 "fold_n": [0] * k, "fold_sums": [[0] * width for _ in range(k)]})
    rows, totals = 0, [0] * width
    for value, y, f in zip(values, labels, fold):
        tokens = row_tokens(value, multivalent, missing_token)
        for t in tokens:
            found[t]["count"] += 1
        for t in set(tokens):
            found[t]["documents"] += 1
        if y is None or y == "" or (isinstance(y, float) and math.isnan(y)) or not tokens:
            continue
        rows += 1
        add = [float(y)] if columns is None else [int(y == c) for c in columns]
        totals = [a + b for a, b in zip(totals, add)]
        for t in set(tokens):
            entry = found[t]
            entry["n"] += 1
            entry["fold_n"][f] += 1
            entry["sums"] = [a + b for a, b in zip(entry["sums"], add)]
            entry["fold_sums"][f] = [a + b for a, b in zip(entry["fold_sums"][f], add)]
    return dict(found), (rows, totals)


def expected_mi(values, labels, multivalent=False):
    """{token: MI in nats} of "the row holds the token" and the label, over the labelled
    rows holding a value: H(X) + H(Y) - H(X, Y) with math.log."""
    data = [(set(row_tokens(v, multivalent)), y) for v, y in zip(values, labels) if y is not None]
    data = [(s, y) for s, y in data if s]
    n = len(data)

    def entropy(counter):
        return -sum(c / n * math.log(c / n) for c in counter.values() if c)

    label_entropy = entropy(Counter(y for _, y in data))
    tokens = {t for s, _ in data for t in s} | {t for v in values for t in row_tokens(v, multivalent)}
    return {
        t: entropy(Counter(t in s for s, _ in data)) + label_entropy - entropy(Counter((t in s, y) for s, y in data))
        for t in tokens
    }


def mi_rank(scores, counts, keep):
    """Tokens by descending MI (to 12 digits: the oracle's own rounding), then count, then
    token (descending): the contract's order."""
    return sorted(scores, key=lambda t: (-float(f"{scores[t]:.12g}"), -counts[t], _descending(t)))[:keep]


def _descending(token):
    return -token if isinstance(token, int) else [-ord(c) for c in token] + [float("inf")]


def assert_tokens_match(stats, values, labels, label, multivalent=False, folds=None, keys=None, exact=True, missing_token=None):
    """Every kept token's label statistics equal the oracle's, and so do the feature's totals."""
    tokens, (rows, totals) = expected_tokens(values, labels, label, multivalent, folds, keys, missing_token)
    assert stats["label_rows"] == rows
    close = (lambda a, b: a == b) if exact else (lambda a, b: np.allclose(a, b, rtol=1e-12, atol=1e-9))
    assert close(stats["label_totals"], totals)
    assert stats["label_type"] == label["label_type"] and stats["label_prior"] == pytest.approx(label["prior"])
    for i, token in enumerate(stats["vocabulary"]):
        entry = tokens[token]
        assert stats["vocabulary_counts"][i] == entry["count"], token
        assert stats["vocabulary_label_counts"][i] == entry["n"], token
        assert close(stats["vocabulary_label_sums"][i], entry["sums"]), token
        if multivalent:
            assert stats["vocabulary_document_counts"][i] == entry["documents"], token
        if folds:
            assert stats["vocabulary_fold_label_counts"][i] == entry["fold_n"], token
            assert close(stats["vocabulary_fold_label_sums"][i], entry["fold_sums"]), token
    return tokens


# --- data -------------------------------------------------------------------------------


def table(rows=3000, seed=0, classes=("0", "1"), tokens=40):
    """A city (one value per row, some missing) whose label rate depends on it, a list of
    tags, an integer store, a row id, and a label of `classes` (5% missing)."""
    rng = np.random.default_rng(seed)
    city = rng.zipf(1.3, rows) % tokens
    bias = (city % len(classes) + rng.integers(0, 3, rows)) % len(classes)
    noise = rng.integers(0, len(classes), rows)
    label = [None if r < 0.05 else classes[b if r < 0.7 else n] for r, b, n in zip(rng.random(rows), bias, noise)]
    return {
        "city": [None if r < 0.04 else f"c{v}" for r, v in zip(rng.random(rows), city)],
        "tags": [[f"t{t}" for t in rng.integers(0, 12, rng.integers(0, 4))] + ([None] if r < 0.05 else [])
                 for r in rng.random(rows)],
        "store": [int(v) for v in rng.integers(0, 25, rows)],
        "id": [f"row-{seed}-{i}" for i in range(rows)],
        "y": label,
    }


def batches(data, size=500, label_type=pa.string()):
    columns = {name: pa.array(values, label_type if name == "y" else None) for name, values in data.items()}
    whole = pa.record_batch(columns)
    return [whole.slice(i, size) for i in range(0, whole.num_rows, size)]


SPEC = {
    "city": {"type": "string_categorical", "output_mode": "target", "folds": 4},
    "tags": {"type": "string_categorical", "multivalent": True, "output_mode": "target"},
    "store": {"type": "integer_categorical", "max_tokens": 9, "rank_by": "mutual_information"},
}


def spec(label_type=None, features=SPEC, fold_key="id"):
    return FeatureSpec(features, label="y", label_type=label_type, fold_key=fold_key)


# --- the label --------------------------------------------------------------------------


def test_a_binary_label_and_its_features_equal_the_row_by_row_oracle():
    data = table()
    found = analyze_batches(spec(), batches(data))
    label = expected_label(data["y"])
    assert found["label"] == {"column": "y", "inferred": True, **label}
    assert found["label"]["classes"] == ["0", "1"] and found["label"]["positive_class"] == "1"
    features = found["features"]
    assert_tokens_match(features["city"], data["city"], data["y"], label, folds=4, keys=data["id"])
    assert_tokens_match(features["tags"], data["tags"], data["y"], label, multivalent=True)
    assert_tokens_match(features["store"], data["store"], data["y"], label)
    assert features["city"]["vocabulary_size"] == len({c for c in data["city"] if c is not None})  # every token


def test_multiclass_classes_in_numeric_order_when_all_are_integers_else_by_text():
    data = table(classes=("10", "9", "-2"), seed=3)
    found = analyze_batches(spec(), batches(data))
    label = expected_label(data["y"])
    assert found["label"]["label_type"] == "multiclass" and found["label"]["classes"] == ["-2", "9", "10"]
    assert found["label"] == {"column": "y", "inferred": True, **label}
    assert found["features"]["city"]["label_columns"] == ["-2", "9", "10"]
    assert_tokens_match(found["features"]["city"], data["city"], data["y"], label, folds=4, keys=data["id"])
    assert_tokens_match(found["features"]["tags"], data["tags"], data["y"], label, multivalent=True)
    texts = table(classes=("b", "a", "B", "é"), seed=4)
    found = analyze_batches(spec("multiclass"), batches(texts))
    assert found["label"]["classes"] == ["B", "a", "b", "é"] and found["label"]["inferred"] is False
    assert found["label"] == {"column": "y", "inferred": False, **expected_label(texts["y"], "multiclass")}


def test_a_declared_regression_label_sums_and_moments_equal_exact_arithmetic():
    data = table(seed=5)
    rng = np.random.default_rng(5)
    values = rng.normal(1e6, 3.0, len(data["y"]))
    data["y"] = [None if i % 17 == 0 else (float("nan") if i % 23 == 0 else float(v)) for i, v in enumerate(values)]
    features = {"city": {"type": "string_categorical", "output_mode": "target", "folds": 3},
                "tags": {"type": "string_categorical", "multivalent": True, "output_mode": "target"}}
    found = analyze_batches(spec("regression", features), batches(data, label_type=pa.float64()))
    texts = [None if y is None or math.isnan(y) else repr(y) for y in data["y"]]
    label = expected_label(texts, "regression")
    assert found["label"]["null_count"] == label["null_count"]  # NaN is a missing label
    assert found["label"]["mean"] == pytest.approx(label["mean"], rel=1e-14)
    assert found["label"]["variance"] == pytest.approx(label["variance"], rel=1e-9)
    assert found["features"]["city"]["label_columns"] == ["y"]
    labels = [None if y is None or math.isnan(y) else y for y in data["y"]]
    assert_tokens_match(found["features"]["city"], data["city"], labels, label, folds=3, keys=data["id"], exact=False)
    assert_tokens_match(found["features"]["tags"], data["tags"], labels, label, multivalent=True, exact=False)


def test_numbers_not_all_whole_read_as_text_are_inferred_regression():
    data = table(classes=("0.5", "1.25", "-3", "2"), seed=6)
    features = {"city": {"type": "string_categorical", "output_mode": "target", "folds": 2}}
    found = analyze_batches(spec(None, features), batches(data))
    label = expected_label(data["y"])
    assert found["label"]["label_type"] == "regression" and "classes" not in found["label"]
    assert found["label"]["mean"] == label["mean"] and found["label"]["variance"] == label["variance"]  # exact
    assert_tokens_match(found["features"]["city"], data["city"], data["y"], label, folds=2, keys=data["id"], exact=False)


@pytest.mark.parametrize(
    "labels, label_type, classes, positive",
    [
        (["a", "b", "a"], "binary", ["a", "b"], "b"),
        (["true", "false", "true"], "binary", ["false", "true"], "true"),
        (["1", "2", "3", "2"], "multiclass", ["1", "2", "3"], None),
        (["1", "0", None, "1"], "binary", ["0", "1"], "1"),
        (["1.0", "2.0", "3.0"], "multiclass", ["1.0", "2.0", "3.0"], None),  # whole numbers: classes
        (["1", "1"], "binary", ["0", "1"], "1"),  # one class seen: the other is known
        (["0", "0"], "binary", ["0", "1"], "1"),
        (["false"], "binary", ["false", "true"], "true"),
        (["-1", "1"], "binary", ["-1", "1"], "1"),
        (["2", "10"], "binary", ["2", "10"], "10"),  # numeric order, not text
    ],
)
def test_the_label_type_is_inferred_from_the_whole_data(labels, label_type, classes, positive):
    features = {"f": {"type": "string_categorical", "output_mode": "target"}}
    batch = pa.record_batch({"f": ["x"] * len(labels), "y": pa.array(labels, pa.string())})
    found = analyze_batches(FeatureSpec(features, label="y"), [batch])["label"]
    assert (found["label_type"], found["classes"], found.get("positive_class")) == (label_type, classes, positive)
    assert found == {"column": "y", "inferred": True, **expected_label(labels)}


@pytest.mark.parametrize(
    "labels, label_type, message",
    [
        (["a", "b", "c"], "binary", r"the label 'y' has 3 classes \('a', 'b', 'c'\): declare \"label_type\": \"multiclass\""),
        (["yes", "yes"], None, r"the label 'y' has one class, 'yes'"),
        ([None, ""], None, r"the label 'y' has no value in the 2 rows \(all missing\)"),
        ([str(i) for i in range(MAX_CLASSES + 1)], None,
         r"more than 1,000 distinct values.*declare \"label_type\": \"regression\""),
    ],
)
def test_a_label_that_cannot_give_right_statistics_is_refused_saying_what_to_declare(labels, label_type, message):
    features = {"f": {"type": "string_categorical", "output_mode": "target"}}
    batch = pa.record_batch({"f": ["x"] * len(labels), "y": pa.array(labels, pa.string())})
    with pytest.raises(InputDataError, match=message):
        analyze_batches(FeatureSpec(features, label="y", label_type=label_type), [batch])


def test_too_many_classes_fail_as_they_are_seen_not_after_the_pass():
    """The state stays bounded: the batch that passes MAX_CLASSES fails add_batch."""
    spec_ = FeatureSpec({"f": "string_categorical"}, label="y")
    analyzer = DatasetAnalyzer(spec_)
    acc = analyzer.create_accumulator()
    first = pa.record_batch({"f": ["x"] * 600, "y": [f"v{i}" for i in range(600)]})
    acc = analyzer.add_batch(acc, first)
    second = pa.record_batch({"f": ["x"] * 600, "y": [f"w{i}" for i in range(600)]})
    with pytest.raises(InputDataError, match="more than 1,000 distinct values"):
        analyzer.add_batch(acc, second)


def test_an_infinite_regression_label_is_refused_and_a_missing_label_column_named():
    features = {"f": {"type": "string_categorical", "output_mode": "target"}}
    batch = pa.record_batch({"f": ["a", "b"], "y": [1.0, float("inf")]})
    with pytest.raises(InputDataError, match="the label 'y' holds an infinite value"):
        analyze_batches(FeatureSpec(features, label="y", label_type="regression"), [batch])
    with pytest.raises(InputDataError, match=r"the label 'y' is not a column of the input \(columns: \['f'\]\)"):
        analyze_batches(FeatureSpec(features, label="y"), [pa.record_batch({"f": ["a"]})])


def test_mutual_information_with_an_inferred_regression_label_is_refused():
    batch = pa.record_batch({"f": ["a", "b", "a"], "y": ["0.5", "1", "2"]})
    features = {"f": {"type": "string_categorical", "max_tokens": 3, "rank_by": "mutual_information"}}
    with pytest.raises(InputDataError, match="feature 'f' ranks its vocabulary by mutual information.*rank the feature by frequency"):
        analyze_batches(FeatureSpec(features, label="y"), [batch])


# --- tokens: missing labels, unseen tokens, missing values, lists ------------------------


def test_missing_labels_count_in_the_vocabulary_only_and_unlabelled_tokens_have_no_rows():
    batch = pa.record_batch({
        "f": ["a", "a", "b", "c", None, "[UNK]", "d"],
        "y": pa.array(["1", None, "0", None, "1", "1", ""], pa.string()),
    })
    features = {"f": {"type": "string_categorical", "output_mode": "target"}}
    found = analyze_batches(FeatureSpec(features, label="y"), [batch])
    stats = found["features"]["f"]
    assert found["label"]["null_count"] == 3 and found["label"]["class_counts"] == [1, 3]
    by_token = dict(zip(stats["vocabulary"], zip(stats["vocabulary_counts"], stats["vocabulary_label_counts"], stats["vocabulary_label_sums"])))
    assert by_token == {"a": (2, 1, [1]), "b": (1, 1, [0]), "c": (1, 0, [0]), "d": (1, 0, [0])}
    # "[UNK]" (the layer's OOV token) is a value of a labelled row, left out of the vocabulary.
    assert stats["label_rows"] == 3 and stats["label_totals"] == [2] and stats["distinct_count"] == 5


def test_a_missing_token_holds_the_missing_rows_labels():
    data = table(seed=8)
    features = {"city": {"type": "string_categorical", "output_mode": "target", "missing_token": "?"}}
    found = analyze_batches(spec(None, features, None), batches(data))
    label = expected_label(data["y"])
    tokens = assert_tokens_match(found["features"]["city"], data["city"], data["y"], label, missing_token="?")
    assert "?" in found["features"]["city"]["vocabulary"] and tokens["?"]["n"] > 0


def test_a_list_counts_a_row_once_per_distinct_token_it_holds():
    batch = pa.record_batch({
        "tags": pa.array([["a", "a", "b"], ["a"], [], None, ["b", None], [None]]),
        "y": pa.array(["1", "0", "1", "1", None, "1"], pa.string()),
    })
    features = {"tags": {"type": "string_categorical", "multivalent": True, "output_mode": "target"}}
    stats = analyze_batches(FeatureSpec(features, label="y"), [batch])["features"]["tags"]
    by_token = {t: (c, d, n, s) for t, c, d, n, s in zip(
        stats["vocabulary"], stats["vocabulary_counts"], stats["vocabulary_document_counts"],
        stats["vocabulary_label_counts"], stats["vocabulary_label_sums"])}
    assert by_token == {"a": (3, 2, 2, [1]), "b": (2, 2, 1, [1])}
    assert stats["label_rows"] == 2 and stats["label_totals"] == [1]  # rows 0 and 1 hold a value


# --- mutual information -------------------------------------------------------------------


@pytest.mark.parametrize("classes", [("0", "1"), ("a", "b", "c", "d")])
def test_the_mutual_information_vocabulary_is_the_oracles_top_tokens(classes):
    data = table(rows=2500, seed=11, classes=classes, tokens=60)
    features = {
        "city": {"type": "string_categorical", "max_tokens": 13, "rank_by": "mutual_information"},
        "tags": {"type": "string_categorical", "multivalent": True, "max_tokens": 6, "rank_by": "mutual_information"},
        "store": {"type": "integer_categorical", "max_tokens": 9, "rank_by": "mutual_information"},
    }
    found = analyze_batches(spec(None, features, None), batches(data))["features"]
    for name, keep, multivalent in (("city", 12, False), ("tags", 5, True), ("store", 8, False)):
        scores = expected_mi(data[name], data["y"], multivalent)
        counts = Counter(t for v in data[name] for t in row_tokens(v, multivalent))
        assert found[name]["vocabulary"] == mi_rank(scores, counts, keep), name
        expected = [scores[t] for t in found[name]["vocabulary"]]
        np.testing.assert_allclose(found[name]["vocabulary_scores"], expected, rtol=1e-9, atol=1e-13)
        assert found[name]["vocabulary_counts"] == [counts[t] for t in found[name]["vocabulary"]]
    # Not the frequency ranking: the counts of an MI vocabulary need not descend.
    assert any(a < b for a, b in zip(found["city"]["vocabulary_counts"], found["city"]["vocabulary_counts"][1:]))


def test_tokens_of_equal_tables_get_equal_scores_and_ties_go_by_count_then_token():
    # A balanced label: tokens "p" (2 positives of 3) and "n" (2 negatives of 3) have the same MI.
    f = ["p", "p", "p", "n", "n", "n", "q", "q", "r", "r", "s", "s"]
    y = ["1", "1", "0", "0", "0", "1", "1", "0", "0", "1", "1", "0"]
    features = {"f": {"type": "string_categorical", "max_tokens": 6, "rank_by": "mutual_information"}}
    stats = analyze_batches(FeatureSpec(features, label="y"), [pa.record_batch({"f": f, "y": y})])["features"]["f"]
    scores = dict(zip(stats["vocabulary"], stats["vocabulary_scores"]))
    assert scores["p"] == scores["n"] and scores["q"] == scores["r"] == scores["s"] == 0.0
    assert stats["vocabulary"] == ["p", "n", "s", "r", "q"]


# --- folds ------------------------------------------------------------------------------------


def test_folds_are_a_stable_hash_of_the_key_and_split_the_rows_evenly():
    keys = pa.array([f"user-{i}" for i in range(20000)])
    folds = fold_of(keys, 5)
    assert np.bincount(folds).min() > 3800  # 4,000 each when perfectly even
    # Pinned: the same on every machine, in every process (workers and the transform agree).
    assert fold_of(pa.array(["a", "b", "", None, "héllo"]), 7).tolist() == fold_of(pa.array(["a", "b", "", "", "héllo"]), 7).tolist()
    # The hash of the keyed token path (tests/test_keyed_vocabulary.py pins it too).
    assert fold_of(pa.array(["a", "b", "", "héllo"]), 16).tolist() == [6, 15, 0, 9]
    assert fold_of(pa.array(["a", "b", "héllo", "row-17"]), 10).tolist() == [8, 1, 5, 5]


# --- sharding, batching, merging: the same statistics ----------------------------------------


LABEL_KEYS = ("label_rows", "label_totals", "label_type", "label_prior", "label_columns")


def label_statistics(found):
    """The label's statistics and every feature's vocabulary and label statistics, as the
    bundle writes them (JSON): what must not depend on batches, shards or workers (the
    moments of an integer feature do, to float rounding)."""
    features = {
        name: {
            k: v for k, v in stats.items()
            if (k.startswith("vocabulary") and k != "vocabulary_file") or k in (*LABEL_KEYS, "distinct_count")
        }
        for name, stats in found["features"].items()
    }
    return json.loads(json.dumps({"label": found["label"], "features": features}))


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(0, 1200), max_size=6), seed=st.integers(0, 2**16), parts=st.integers(1, 4))
def test_any_batching_and_merge_order_gives_the_same_statistics(cuts, seed, parts):
    """Folded in any batches, into several accumulators merged in any order, through the
    JSON state (as kdp-beam merge reads it): identical statistics, MI floats included."""
    data = table(rows=1200, seed=21)
    spec_ = spec()
    whole = label_statistics(analyze_batches(spec_, batches(data, size=1200)))
    one = batches(data, size=1200)[0]
    bounds = [0, *sorted(set(cuts)), one.num_rows]
    pieces = [one.slice(a, b - a) for a, b in zip(bounds, bounds[1:]) if b > a]
    rng = np.random.default_rng(seed)
    analyzer = DatasetAnalyzer(spec_)
    accs = [analyzer.create_accumulator() for _ in range(parts)]
    for piece in pieces:
        i = int(rng.integers(parts))
        accs[i] = analyzer.add_batch(accs[i], piece)
    order = rng.permutation(parts)
    merged = analyzer.merge_accumulators([accs[i] for i in order])
    state = json.loads(json.dumps(analyzer.to_state(merged)))
    assert label_statistics(analyzer.finalize(merged)) == whole
    # The label's and the label totals' state round-trips through JSON.
    restored = DatasetAnalyzer(spec_, count_tokens=False)
    again = restored.finalize(restored.from_state(state))
    assert again["label"] == whole["label"]
    for name in SPEC:
        assert {k: again["features"][name][k] for k in LABEL_KEYS} == {k: whole["features"][name][k] for k in LABEL_KEYS}
