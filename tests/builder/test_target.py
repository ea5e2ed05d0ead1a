"""Target encoding (kdp_beam.builder.target): the model's encodings equal an independent
computation of docs/label-aware.md's formula over the same rows, for binary, multiclass and
regression labels, unseen and missing values, min_count, with_count, lists; in tf.data,
after .keras save/load and through export().

Until the label-aware analysis lands, no bundle holds label statistics: `label_statistics`
computes a feature's statistics as the contract (LABELS.md, docs/bundle-format.md) has the
analysis write them, with numpy, and the tests build models from them through a Bundle
object. The oracle (`expected`) recomputes every encoding from the rows in plain Python,
not from those statistics. tests/test_label_model.py runs the same checks on bundles the
real analysis writes.
"""

import math
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

import kdp_beam
from kdp_beam.builder.names import layer_name
from kdp_beam.builder.target import TargetEncoding, encoding_table
from kdp_beam.bundle.loader import Bundle
from kdp_beam.errors import BundleError, InputDataError, SpecError
from kdp_beam.spec import FeatureSpec

FS = kdp_beam.FeatureSpace
_rng = np.random.default_rng(16)
ROWS = 400
# Values of every frequency, down to one row; None and "" are missing.
CITIES = _rng.choice(["Paris", "Oslo", "Zürich", "a,b", "rare1", "rare2", "", None], ROWS,
                     p=[0.35, 0.25, 0.15, 0.1, 0.0025, 0.0025, 0.07, 0.075]).tolist()
CITIES[:2] = ["rare1", "rare2"]  # each in exactly one row
STORES = _rng.choice([3, 8, 11, 2**40, None], ROWS).tolist()
BINARY = _rng.choice(["0", "1", None], ROWS, p=[0.55, 0.35, 0.1]).tolist()
PETS = _rng.choice(["cat", "dog", "eel", None], ROWS, p=[0.4, 0.3, 0.2, 0.1]).tolist()
# Multiples of 1/8: their sums are exact in any order, so every encoding is exactly
# the float32 of the formula's float64 value.
PRICES = [None if p > 9.5 else p for p in (_rng.integers(-40, 80, ROWS) / 8.0).tolist()]
TAGS = [[] if r < 0.1 else None if r < 0.15 else _rng.choice(["a", "b", "c", "d", "", None], _rng.integers(1, 5)).tolist()
        for r in _rng.random(ROWS)]
QUERY_CITIES = ["Paris", "Oslo", "Zürich", "a,b", "rare1", "rare2", "never seen", "", None]
QUERY_STORES = [3, 8, 11, 2**40, 12345, None]
QUERY_TAGS = [["a"], ["a", "b"], ["a", "a", "d"], ["z"], ["z", "c"], [], None, ["", None], ["b", None]]


# --- the label's columns, as the contract defines them ---------------------------------------


def label_columns(label_type, labels, column="y"):
    """(label_columns, each labelled row's K label values): binary [positive class], 1 for
    it; multiclass the classes (text order here: not all integers), one-hot; regression
    [the label's column], the label."""
    present = [y for y in labels if y is not None]
    if label_type == "regression":
        return [column], [[float(y)] for y in present]
    classes = sorted(set(present))
    if label_type == "binary":
        return [classes[-1]], [[float(y == classes[-1])] for y in present]
    return classes, [[float(y == c) for c in classes] for y in present]


# --- the statistics the analysis writes, with numpy ------------------------------------------


def _is_value(v):
    return v is not None and v != ""


def label_statistics(values, labels, label_type, multivalent=False, max_tokens=None, order=None, column="y"):
    """One feature's statistics, as the label-aware analysis writes them: the vocabulary in
    keras' order (count descending, then token descending; `order`: that list instead) cut
    to max_tokens - 1, vocabulary_counts (a list's: its values), vocabulary_label_counts (n:
    labelled rows holding the token, once per row), vocabulary_label_sums (K per token),
    label_rows / label_totals (labelled rows where the feature is present), label_prior
    (over every labelled row), label_type, label_columns."""
    rows = [v if multivalent else ([v] if _is_value(v) else []) for v in values]
    lengths = np.array([len([x for x in r if _is_value(x)]) if r else 0 for r in rows])
    flat = np.array([x for r in rows if r for x in r if _is_value(x)], dtype=object)
    row_of = np.repeat(np.arange(len(rows)), lengths)
    tokens, inverse, counts = np.unique(flat.astype(str) if flat.size and isinstance(flat[0], str) else flat.astype(np.int64),
                                        return_inverse=True, return_counts=True)
    columns, y = label_columns(label_type, labels, column)
    labelled = np.array([v is not None for v in labels])
    Y = np.zeros((len(labels), len(columns)))
    Y[labelled] = np.asarray(y, dtype=np.float64)
    # Each (row, token) once: n and the sums count rows, not values.
    pairs = np.unique(np.stack([row_of, inverse]), axis=1) if flat.size else np.zeros((2, 0), np.int64)
    pair_rows, pair_tokens = pairs
    keep = labelled[pair_rows]
    n = np.bincount(pair_tokens[keep], minlength=len(tokens))
    sums = np.stack([np.bincount(pair_tokens[keep], weights=Y[pair_rows[keep], k], minlength=len(tokens))
                     for k in range(len(columns))], axis=1)
    if order is None:
        ranked = np.lexsort((tokens, counts))[::-1]
    else:
        ranked = np.array([list(tokens).index(t) for t in order], dtype=np.int64)
    if max_tokens is not None:
        ranked = ranked[: max_tokens - 1]
    present = lengths > 0
    return {
        "vocabulary": tokens[ranked].tolist(),
        "vocabulary_counts": counts[ranked].tolist(),
        "vocabulary_label_counts": n[ranked].tolist(),
        "vocabulary_label_sums": sums[ranked].tolist(),
        "label_rows": int((present & labelled).sum()),
        "label_totals": Y[present & labelled].sum(axis=0).tolist(),
        "label_type": label_type,
        "label_prior": Y[labelled].mean(axis=0).tolist(),
        "label_columns": columns,
    }


def bundle_of(declarations, stats, label_type=None, label="y", output_mode="dict"):
    """A Bundle holding `stats` (a loaded bundle's in-memory form), analysed with the
    declarations and the label."""
    spec = FeatureSpec(declarations, output_mode=output_mode, label=label, label_type=label_type)
    return Bundle("hand-made", {}, spec, ROWS, stats)


# --- the oracle: the formula over the rows, in plain Python ------------------------------------


def expected(values, labels, label_type, queries, smoothing=10.0, min_count=1, with_count=False,
             multivalent=False, vocabulary=None):
    """Each query's encoding from the training rows: per value c, n = labelled rows
    holding c, s_k = their label sums; (s_k + m * prior_k) / (n + m) when n >= min_count,
    else prior_k; a value not in `vocabulary` (None: every value), unseen or missing: the
    prior; with_count, log1p(c's count over every row); a list: the mean over its values,
    a list with none the prior, count 0."""
    columns, y = label_columns(label_type, labels)
    labelled = [i for i, v in enumerate(labels) if v is not None]
    prior = [sum(row[k] for row in y) / len(y) for k in range(len(columns))]
    by_row = dict(zip(labelled, y))

    def holds(i, c):
        v = values[i]
        return c in v if multivalent else v == c

    def row_of(c):
        if not _is_value(c) or (vocabulary is not None and c not in vocabulary):
            encoding, count = list(prior), 0
        else:
            rows = [i for i in labelled if values[i] is not None and holds(i, c)]
            n = len(rows)
            if n >= min_count and n:
                encoding = [(sum(by_row[i][k] for i in rows) + smoothing * prior[k]) / (n + smoothing)
                            for k in range(len(columns))]
            else:
                encoding = list(prior)
            count = sum((v or []).count(c) for v in values) if multivalent else values.count(c)
        return encoding + ([math.log1p(count)] if with_count else [])

    if not multivalent:
        return np.array([row_of(q) for q in queries], dtype=np.float64)
    out = []
    for q in queries:
        present = [c for c in (q or []) if _is_value(c)]
        if present:
            out.append(np.mean([row_of(c) for c in present], axis=0))
        else:
            out.append(prior + ([0.0] if with_count else []))
    return np.array(out, dtype=np.float64)


def target(fs, rows, name="c"):
    return np.asarray(fs({name: rows})[name])


# --- one value per row -----------------------------------------------------------------------

CASES = {
    "binary": ("string_categorical", CITIES, BINARY, QUERY_CITIES),
    "multiclass": ("integer_categorical", STORES, PETS, QUERY_STORES),
    "regression": ("string_categorical", CITIES, PRICES, QUERY_CITIES),
}


@pytest.mark.parametrize("label_type", sorted(CASES))
@pytest.mark.parametrize("options", [{}, {"smoothing": 0.0}, {"smoothing": 3.5, "min_count": 5}, {"with_count": True}])
def test_encodings_equal_the_formula_over_the_rows(label_type, options):
    type_name, values, labels, queries = CASES[label_type]
    declaration = {"type": type_name, "output_mode": "target", **options}
    stats = label_statistics(values, labels, label_type)
    fs = FS.from_artifacts(bundle_of({"c": declaration}, {"c": stats}, label_type))
    got = target(fs, queries)
    want = expected(values, labels, label_type, queries, **options)
    width = len(stats["label_columns"]) + int(options.get("with_count", False))
    assert got.shape == (len(queries), width) and got.dtype == np.float32
    # Computed in float64, stored as float32: exactly the float32 of the formula.
    np.testing.assert_array_equal(got, want.astype(np.float32))
    prior = np.float32(stats["label_prior"])
    for unseen in ("never seen", "", None, 12345):  # unseen and missing values: the prior
        if unseen in queries:
            np.testing.assert_array_equal(got[queries.index(unseen), : len(prior)], prior)


def test_min_count_leaves_rare_values_at_the_prior_and_max_tokens_cuts_the_vocabulary():
    stats = label_statistics(CITIES, BINARY, "binary", max_tokens=5)  # 4 tokens kept
    assert len(stats["vocabulary"]) == 4
    min_count = sorted(stats["vocabulary_label_counts"])[-2]  # the top two tokens encode
    declaration = {"type": "string_categorical", "output_mode": "target", "max_tokens": 5, "min_count": min_count}
    fs = FS.from_artifacts(bundle_of({"c": declaration}, {"c": stats}))
    got = target(fs, QUERY_CITIES)
    want = expected(CITIES, BINARY, "binary", QUERY_CITIES, min_count=min_count, vocabulary=set(stats["vocabulary"]))
    np.testing.assert_array_equal(got, want.astype(np.float32))
    prior = np.float32(stats["label_prior"][0])
    below = [q for q, n in zip(stats["vocabulary"], stats["vocabulary_label_counts"]) if n < min_count]
    assert len(below) == 2 and all(got[QUERY_CITIES.index(q), 0] == prior for q in below)
    assert got[QUERY_CITIES.index("rare1"), 0] == prior  # cut from the vocabulary: OOV
    assert (got[[QUERY_CITIES.index(q) for q in ("Paris", "Oslo")], 0] != prior).all()


def test_missing_token_encodes_missing_values_as_their_own_category():
    """With missing_token, a missing value is a value (counted as that token): it encodes
    by its own label mean, not the prior."""
    values = ["(none)" if v in ("", None) else v for v in CITIES]
    stats = label_statistics(values, BINARY, "binary")
    declaration = {"type": "string_categorical", "output_mode": "target", "missing_token": "(none)"}
    fs = FS.from_artifacts(bundle_of({"c": declaration}, {"c": stats}))
    got = target(fs, ["", None, "Oslo", "never seen"])
    want = expected(values, BINARY, "binary", ["(none)", "(none)", "Oslo", "never seen"])
    np.testing.assert_array_equal(got, want.astype(np.float32))
    assert got[0, 0] != np.float32(stats["label_prior"][0])


def test_more_oov_indices_all_encode_as_the_prior():
    stats = label_statistics(CITIES, PETS, "multiclass")
    declaration = {"type": "string_categorical", "output_mode": "target", "num_oov_indices": 3, "with_count": True}
    fs = FS.from_artifacts(bundle_of({"c": declaration}, {"c": stats}))
    queries = ["Paris", *(f"unseen{i}" for i in range(12))]
    got = target(fs, queries)
    np.testing.assert_array_equal(got, expected(CITIES, PETS, "multiclass", queries, with_count=True).astype(np.float32))
    table = TargetEncoding.from_config(fs.encoders["c"].get_config()).table
    np.testing.assert_array_equal(table[:3], np.float32([stats["label_prior"] + [0.0]] * 3))


def test_a_feature_with_no_value_encodes_everything_as_the_prior():
    stats = label_statistics([None] * ROWS, BINARY, "binary")
    assert stats["vocabulary"] == []
    fs = FS.from_artifacts(bundle_of({"c": {"type": "string_categorical", "output_mode": "target", "with_count": True}},
                                     {"c": stats}))
    np.testing.assert_array_equal(target(fs, ["x", ""]), [[np.float32(stats["label_prior"][0]), 0.0]] * 2)


# --- a list per row ----------------------------------------------------------------------------


@pytest.mark.parametrize("label_type, labels", [("binary", BINARY), ("multiclass", PETS), ("regression", PRICES)])
@pytest.mark.parametrize("with_count", [False, True])
def test_a_list_encodes_as_the_mean_of_its_values(label_type, labels, with_count):
    stats = label_statistics(TAGS, labels, label_type, multivalent=True)
    declaration = {"type": "string_categorical", "output_mode": "target", "multivalent": True, "with_count": with_count}
    fs = FS.from_artifacts(bundle_of({"t": declaration}, {"t": stats}))
    got = target(fs, QUERY_TAGS, "t")
    want = expected(TAGS, labels, label_type, QUERY_TAGS, with_count=with_count, multivalent=True)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)
    # A list of one value is that value's row exactly; a list with none, the prior.
    np.testing.assert_array_equal(got[0], want[0].astype(np.float32))
    for empty in ([], None, ["", None]):
        np.testing.assert_array_equal(got[QUERY_TAGS.index(empty)], want[QUERY_TAGS.index(empty)].astype(np.float32))


def test_an_integer_list_pads_with_its_pad_value():
    ids = [[s for s in (a, b) if s is not None] for a, b in zip(STORES, STORES[1:] + [None])]
    stats = label_statistics(ids, PRICES, "regression", multivalent=True)
    declaration = {"type": "integer_categorical", "output_mode": "target", "multivalent": True, "pad_value": -7}
    fs = FS.from_artifacts(bundle_of({"t": declaration}, {"t": stats}))
    queries = [[3], [3, 8], [12345], [], [11, -7]]
    got = target(fs, queries, "t")
    want = expected(ids, PRICES, "regression", [[3], [3, 8], [12345], [], [11]], multivalent=True)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)
    dense = np.array([[3, -7], [3, 8], [12345, -7], [-7, -7], [11, -7]])  # the model's own input
    np.testing.assert_allclose(target(fs, dense, "t"), got, rtol=0, atol=0)


# --- tf.data, .keras, export ----------------------------------------------------------------


def model_and_queries():
    declarations = {
        "c": {"type": "string_categorical", "output_mode": "target", "with_count": True},
        "store": {"type": "integer_categorical", "output_mode": "target", "smoothing": 2.0},
        "t": {"type": "string_categorical", "output_mode": "target", "multivalent": True},
        "plain": "string_categorical",
    }
    stats = {
        "c": label_statistics(CITIES, PETS, "multiclass"),
        "store": label_statistics(STORES, PETS, "multiclass"),
        "t": label_statistics(TAGS, PETS, "multiclass", multivalent=True),
        "plain": {"vocabulary": ["Oslo", "Paris"], "vocabulary_counts": [2, 1]},
    }
    fs = FS.from_artifacts(bundle_of(declarations, stats, "multiclass", output_mode="concat"))
    n = len(QUERY_TAGS)
    queries = {"c": QUERY_CITIES[:n], "store": (QUERY_STORES * 2)[:n], "t": QUERY_TAGS, "plain": QUERY_CITIES[:n]}
    assert len(queries["c"]) == n
    want = np.concatenate(
        [
            expected(CITIES, PETS, "multiclass", queries["c"], with_count=True),
            np.array([[float(c not in ("Oslo", "Paris")), float(c == "Oslo"), float(c == "Paris")] for c in queries["plain"]]),
            expected(STORES, PETS, "multiclass", queries["store"], smoothing=2.0),
            expected(TAGS, PETS, "multiclass", QUERY_TAGS, multivalent=True),
        ],
        axis=1,
    )
    return fs, queries, want


def dense(queries):
    """The model's own inputs: (rows, 1) columns, a list padded with ""."""
    width = max(len(q or []) for q in queries["t"])
    tags = [[x if _is_value(x) else "" for x in (q or [])] + [""] * (width - len(q or [])) for q in queries["t"]]
    return {  # (in the order of the model's inputs, which keras warns of otherwise)
        "c": tf.constant([[q or ""] for q in queries["c"]]),
        "plain": tf.constant([[q or ""] for q in queries["plain"]]),
        "store": tf.constant([[-1 if q is None else q] for q in queries["store"]], tf.int64),
        "t": tf.constant(tags),
    }


def test_concat_model_in_tf_data_after_save_load_and_export(tmp_path):
    fs, queries, want = model_and_queries()
    np.testing.assert_allclose(np.asarray(fs(queries)), want, rtol=1e-6, atol=0)
    inputs = dense(queries)
    # In tf.data, with the label in each element (ignored).
    labelled = tf.data.Dataset.from_tensor_slices({**inputs, "y": tf.constant(["cat"] * len(QUERY_TAGS))})
    batches = [np.asarray(b) for b in labelled.batch(4).map(fs)]
    np.testing.assert_allclose(np.concatenate(batches), want, rtol=1e-6, atol=0)
    model = keras.Model(fs.get_inputs(), fs.get_encoded_features())
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    model.export(str(tmp_path / "served"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "served"))
    fs.save(str(tmp_path / "fs.keras"))
    space = keras.models.load_model(str(tmp_path / "fs.keras"))
    outputs = {
        "model": model(inputs),
        "reloaded": reloaded(inputs),
        "served": served.serve({layer_name(k): v for k, v in inputs.items()}),
        "feature space": space(queries),
    }
    for what, out in outputs.items():
        np.testing.assert_allclose(np.asarray(out), want, rtol=1e-6, atol=0, err_msg=what)
    assert space.label == "y" and type(space.encoders["c"]) is TargetEncoding


def test_dict_model_one_row_calls_and_the_label_key_ignored():
    stats = label_statistics(CITIES, BINARY, "binary")
    fs = FS.from_artifacts(bundle_of({"c": {"type": "string_categorical", "output_mode": "target"}}, {"c": stats}))
    want = expected(CITIES, BINARY, "binary", ["Oslo"]).astype(np.float32)
    assert fs.label == "y" and list(fs.get_inputs()) == ["c"]  # the label is never an input
    np.testing.assert_array_equal(np.asarray(fs({"c": "Oslo"})["c"]), want[0])  # one row, as keras
    np.testing.assert_array_equal(np.asarray(fs({"c": ["Oslo"], "y": ["1"]})["c"]), want)
    model = keras.Model(fs.get_inputs(), fs.get_encoded_features())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # keras warns of the key it leaves out
        out = model({"c": tf.constant([["Oslo"]]), "y": tf.constant([["1"]])})
    np.testing.assert_array_equal(np.asarray(out["c"]), want)


def test_a_cross_takes_the_lookup_index_of_a_target_feature():
    """A cross of a target feature is the cross of its value's index, as the same
    feature's with output_mode 'int' (and keras' own lookup) gives."""
    stats = {"c": label_statistics(CITIES, BINARY, "binary"), "s": {"vocabulary": ["x", "y"], "vocabulary_counts": [3, 2]}}
    crosses = [{"feature_names": ["c", "s"], "crossing_dim": 16}]

    def space(mode):
        declarations = {"c": {"type": "string_categorical", "output_mode": mode}, "s": {"type": "string_categorical", "output_mode": "int"}}
        spec = FeatureSpec(declarations, crosses=crosses, output_mode="dict", label="y")
        return FS.from_artifacts(Bundle("hand-made", {}, spec, ROWS, stats))

    rows = {"c": QUERY_CITIES * 2, "s": ["x", "y", "z"] * 6}
    crossed = np.asarray(space("target")(rows)["c_X_s"])
    np.testing.assert_array_equal(crossed, np.asarray(space("int")(rows)["c_X_s"]))
    lookup = keras.layers.StringLookup(vocabulary=stats["c"]["vocabulary"])
    index = np.asarray(lookup(tf.constant([c or "" for c in rows["c"]]))).reshape(-1, 1)
    s_index = np.asarray(keras.layers.StringLookup(vocabulary=["x", "y"])(tf.constant(rows["s"]))).reshape(-1, 1)
    by_keras = keras.layers.HashedCrossing(16, output_mode="one_hot")((index, s_index))
    np.testing.assert_array_equal(crossed, np.asarray(by_keras))


# --- vocabularies as the bundle orders them ----------------------------------------------------


def test_a_vocabulary_ranked_by_mutual_information_is_taken_in_the_bundles_order():
    """rank_by 'mutual_information' orders the vocabulary by score, not frequency: the
    lookup's indices (one_hot's columns, target's rows) follow the bundle's order."""
    order = ["rare1", "a,b", "Paris"]  # not by count
    one_hot = label_statistics(CITIES, BINARY, "binary", order=order)
    declarations = {
        "c": {"type": "string_categorical", "max_tokens": 4, "rank_by": "mutual_information"},
        "t": {"type": "string_categorical", "max_tokens": 4, "rank_by": "mutual_information", "output_mode": "target"},
    }
    fs = FS.from_artifacts(bundle_of(declarations, {"c": one_hot, "t": one_hot}))
    assert fs.preprocessors["c"].get_vocabulary() == ["[UNK]", *order]
    out = fs({"c": ["rare1", "Paris", "Oslo"], "t": ["rare1", "Paris", "Oslo"]})
    np.testing.assert_array_equal(np.asarray(out["c"]), [[0, 1, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0]])
    want = expected(CITIES, BINARY, "binary", ["rare1", "Paris", "Oslo"], vocabulary=set(order))
    np.testing.assert_array_equal(np.asarray(out["t"]), want.astype(np.float32))


# --- errors: what was wrong, where, what to do ---------------------------------------------------


def test_a_target_feature_on_a_bundle_without_label_statistics_names_it_and_the_fix():
    stats = {"c": {"vocabulary": ["Oslo"], "vocabulary_counts": [3]}}
    bundle = Bundle("b/", {}, FeatureSpec({"c": "string_categorical"}), ROWS, stats)
    with pytest.raises(BundleError, match=r"feature 'c': output_mode 'target' needs the label statistics .*analyse the feature with output_mode 'target'"):
        FS.from_artifacts(bundle, features={"c": FS.string_categorical(output_mode="target")})


def test_damaged_label_statistics_are_refused_not_encoded():
    stats = label_statistics(CITIES, PETS, "multiclass")
    declarations = {"c": {"type": "string_categorical", "output_mode": "target"}}
    for key, value, problem in (
        ("vocabulary_label_sums", stats["vocabulary_label_sums"][:-1], "shapes"),
        ("vocabulary_label_sums", [s[:2] for s in stats["vocabulary_label_sums"]], "shapes"),
        ("label_prior", stats["label_prior"][:2], "label_prior"),
        ("label_prior", [math.nan, 0.5, 0.5], "finite"),
    ):
        with pytest.raises(BundleError, match=rf"feature 'c': .*{problem}.*damaged"):
            FS.from_artifacts(bundle_of(declarations, {"c": {**stats, key: value}}))


def test_a_label_mean_beyond_float32_is_refused():
    stats = label_statistics(CITIES, [None if y is None else y * 1e39 for y in PRICES], "regression")
    with pytest.raises(InputDataError, match=r"feature 'c': its label mean .* is beyond float32.*scale the label"):
        FS.from_artifacts(bundle_of({"c": {"type": "string_categorical", "output_mode": "target"}}, {"c": stats}))


def test_the_label_is_checked_against_the_bundles():
    stats = {"c": label_statistics(CITIES, BINARY, "binary")}
    bundle = bundle_of({"c": {"type": "string_categorical", "output_mode": "target"}}, stats, "binary")
    assert FS.from_artifacts(bundle, label="y", label_type="binary").label == "y"
    with pytest.raises(BundleError, match=r"label='z' here, but the bundle at hand-made was analysed with label='y'"):
        FS.from_artifacts(bundle, label="z")
    with pytest.raises(BundleError, match=r"label_type='multiclass' here"):
        FS.from_artifacts(bundle, label_type="multiclass")


def test_feature_space_label_declarations():
    target = FS.string_categorical(output_mode="target")
    fs = FS({"c": target}, output_mode="dict")  # the label may come with adapt()
    assert fs.label is None
    with pytest.raises(SpecError, match=r"feature\(s\) \['c'\] use the label .*adapt\(data, label=COLUMN\)"):
        fs.adapt({"c": ["a", "b"]})
    assert fs.label is None
    with pytest.raises(SpecError, match=r"label 'c' is also a declared feature"):
        FS({"c": target}, label="c")
    with pytest.raises(SpecError, match=r"label_type \(null: inferred from the data\) must be one of"):
        FS({"c": target}, label="y", label_type="ordinal")
    with pytest.raises(SpecError, match=r"label 'c' is also a declared feature"):
        fs.adapt({"c": ["a", "b"]}, label="c")
    assert fs.label is None  # the refused label is not kept
    labelled = FS({"c": target}, label="y", label_type="binary", fold_key="id")
    again = FS.from_config(labelled.get_config())
    assert (again.label, again.label_type, again.fold_key) == ("y", "binary", "id")
    # A FeatureSpace without a label keeps the config it had.
    assert "label" not in FS({"c": FS.string_categorical()}).get_config()


# --- the layer alone ---------------------------------------------------------------------------


def test_target_encoding_layer_validates_and_round_trips_its_config():
    layer = TargetEncoding([[0.5, 0.0], [0.25, 1.0]], name="e")
    again = TargetEncoding.from_config(layer.get_config())
    assert again.get_config() == layer.get_config()
    np.testing.assert_array_equal(np.asarray(again(tf.constant([[1], [0]], tf.int64))), [[0.25, 1.0], [0.5, 0.0]])
    bad_configs = ({"shape": [1, 1], "float32_base64": "not base64!"}, {"shape": [2, 2], "float32_base64": "AAAAAA=="}, {"shape": [1]})
    for table in ([], [[]], [[1.0], [1.0, 2.0]], [[math.inf]], [["a"]], *bad_configs):
        with pytest.raises(ValueError, match=r"TargetEncoding: table must be a non-empty list of rows of finite numbers"):
            TargetEncoding(table)
    with pytest.raises(ValueError, match=r"mask_index 3 is not a row"):
        TargetEncoding([[0.0]], mask_index=3)
    with pytest.raises(ValueError, match=r"has no table yet"):
        TargetEncoding(name="unset")(tf.constant([[0]], tf.int64))


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(st.sampled_from(["a", "b", "c", ""]), st.sampled_from(["0", "1", None])), min_size=1, max_size=30),
    smoothing=st.sampled_from([0.0, 1.0, 10.0, 123.25]),
    min_count=st.integers(1, 4),
)
def test_encoding_table_equals_the_formula_on_any_rows(rows, smoothing, min_count):
    values, labels = [v for v, _ in rows], [y for _, y in rows]
    if all(y is None for y in labels):
        labels[0] = "1"
    if len({y for y in labels if y is not None}) < 2:
        labels.append("0" if "1" in labels else "1")
        values.append("")
    stats = label_statistics(values, labels, "binary")
    options = {"smoothing": smoothing, "min_count": min_count, "with_count": True, "num_oov_indices": 1}
    table = encoding_table(stats, options)
    queries = ["zz", *stats["vocabulary"]] if stats["vocabulary"] else ["zz", "placeholder"]
    want = expected(values, labels, "binary", queries, smoothing=smoothing, min_count=min_count, with_count=True)
    np.testing.assert_array_equal(table, want.astype(np.float32))


def test_a_table_too_large_for_a_model_is_refused_saying_to_set_max_tokens(monkeypatch):
    """A 1,000-class target on a million values would be 10^9 cells in the layer's config."""
    from kdp_beam.builder import target
    from kdp_beam.errors import InputDataError

    monkeypatch.setattr(target, "MAX_TABLE_CELLS", 20)
    stats = {"vocabulary": ["a", "b", "c", "d"], "vocabulary_counts": [4, 3, 2, 1], "label_prior": [0.2, 0.3, 0.5],
             "label_columns": ["x", "y", "z"], "vocabulary_label_counts": [4, 3, 2, 1],
             "vocabulary_label_sums": [[1, 1, 2], [1, 1, 1], [0, 1, 1], [0, 0, 1]]}
    options = {"smoothing": 1.0, "min_count": 1, "num_oov_indices": 1, "with_count": False, "multivalent": False}
    with pytest.raises(InputDataError, match="table of 4 values x 3 label columns.*set max_tokens"):
        target.encoding_table(stats, options)
    monkeypatch.setattr(target, "MAX_TABLE_CELLS", 2**28)
    assert target.encoding_table(stats, options).shape == (5, 3)
