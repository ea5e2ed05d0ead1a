"""Multivalent features' encodings (kdp_beam.builder.multivalent) equal an independent numpy
computation and keras' own layers fed each row's values, in dict and concat mode; lists of
lists, arrays of lists, ragged, sparse and dense padded inputs give the same outputs, in
tf.data too, after .keras save/load and through export()."""

import functools
import math
from collections import Counter

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

import kdp_beam
from kdp_beam.builder.names import layer_name
from kdp_beam.bundle.loader import load_bundle
from kdp_beam.errors import InputDataError, SpecError

FS = kdp_beam.FeatureSpace
S = 3  # sequence_length: rows below have 0, 1, S - 1, S, S + 1 and more values
TAGS = [["a", "b", "z"], [], ["b", None], ["c", "a", "a", "b", "q"], [None], ["a"], ["z", "c", None, "b"]]
IDS = [[5, 7, 9], [], [7, None], [5, 5, 5, 8], [None], [3], [9, None, 7, 5]]
NUMS = [[1.0, 3.0, -2.0], [], [4.0, None], [0.5, 1.5, 2.5, 3.5, 10.0], [None], [7.0], [None, 2.0, None, 6.0]]
ROWS = len(TAGS)
BOUNDARIES = [0.0, 2.0, 5.0]  # fixed bins of the sequences
LEARNED = [1.0, 3.0]  # the "bundle's" bins of x_bins (num_bins=3)


def declarations(cls=FS):
    return {
        "tags": cls.string_categorical(multivalent=True),
        "tags_count": cls.string_categorical(multivalent=True, output_mode="count"),
        "tags_seq": cls.string_categorical(multivalent=True, output_mode="int", sequence_length=S),
        "ids": cls.integer_categorical(multivalent=True),
        "ids_seq": cls.integer_categorical(multivalent=True, output_mode="int", sequence_length=S),
        "tags_hashed": cls.string_hashed(num_bins=8, multivalent=True),
        "ids_hashed": cls.integer_hashed(num_bins=8, multivalent=True, output_mode="count"),
        "ids_hashed_seq": cls.integer_hashed(num_bins=8, multivalent=True, output_mode="int", sequence_length=S),
        "x_mean": cls.float(multivalent=True),
        "x_sum": cls.float_normalized(multivalent=True, pooling="sum", missing_indicator=True),
        "x_max": cls.float_rescaled(scale=2.0, offset=1.0, multivalent=True, pooling="max", fill_value=-1.0),
        "x_bins": cls.float_discretized(num_bins=3, multivalent=True),
        "x_seq": cls.float_normalized(multivalent=True, sequence_length=S),
        "x_bins_seq": cls.float_discretized(
            bin_boundaries=BOUNDARIES, output_mode="int", multivalent=True, sequence_length=S
        ),
        "x_hot_seq": cls.float_discretized(bin_boundaries=BOUNDARIES, multivalent=True, sequence_length=2),
    }


INT_OUTPUTS = ("tags_seq", "ids_seq", "ids_hashed_seq", "x_bins_seq")  # dict mode only, as keras' "int"


def column(name):
    return TAGS if name.startswith("tags") else IDS if name.startswith("ids") else NUMS


def present(row):
    return [v for v in row if v is not None]


def vocabulary(rows):
    """Tokens by count, then by token (any order a bundle gives works; this one is keras')."""
    counts = Counter(v for row in rows for v in present(row))
    return [token for token, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


VALUES = np.array([v for row in NUMS for v in present(row)])
MEAN, VARIANCE = float(VALUES.mean()), float(VALUES.var())


def statistics():
    """What a bundle holds for each feature (the contract's keys), computed here."""
    numbers = {"count": sum(map(len, NUMS)), "null_count": 4, "mean": MEAN, "variance": VARIANCE}
    stats = {}
    for name in declarations():
        if name.startswith(("tags", "ids")):
            stats[name] = {"vocabulary": vocabulary(column(name))}
        else:
            stats[name] = dict(numbers)
    stats["x_bins"]["bin_boundaries"] = LEARNED
    return stats


def space(output_mode="dict", names=None):
    features = {k: v for k, v in declarations().items() if names is None or k in names}
    fs = FS(features, output_mode=output_mode)
    fs._set_statistics({k: v for k, v in statistics().items() if k in features})  # as from_artifacts does
    return fs


# --- the independent computation --------------------------------------------------------


def _hash_bin(value, bins):
    # keras' Hashing: FarmHash of the value as a string, modulo the bins (no keras layer).
    return int(tf.strings.to_hash_bucket_fast(str(value), bins).numpy())


def _position(row, p):
    return row[p] if p < len(row) else None


def expected_outputs(stats):
    """Every output, row by row, in numpy and Python only, from the statistics `stats`."""
    mean, variance, learned = stats["x_sum"]["mean"], stats["x_sum"]["variance"], stats["x_bins"]["bin_boundaries"]
    norm = lambda v: (v - mean) / math.sqrt(variance)  # noqa: E731
    out = {}
    for name in ("tags", "tags_count", "ids"):
        vocab = list(stats[name]["vocabulary"])
        rows = []
        for row in column(name):
            counts = np.zeros(1 + len(vocab))
            for v in present(row):
                counts[1 + vocab.index(v) if v in vocab else 0] += 1
            rows.append(counts if name == "tags_count" else np.minimum(counts, 1))
        out[name] = np.array(rows)
    for name in ("tags_seq", "ids_seq"):
        vocab = list(stats[name]["vocabulary"])
        index = lambda v: 0 if v is None else 2 + vocab.index(v) if v in vocab else 1  # noqa: E731
        out[name] = np.array([[index(_position(row, p)) for p in range(S)] for row in column(name)])
    bins = lambda row: np.bincount([_hash_bin(v, 8) for v in present(row)], minlength=8)  # noqa: E731
    out["tags_hashed"] = np.array([np.minimum(bins(r), 1) for r in TAGS])
    out["ids_hashed"] = np.array([bins(r) for r in IDS])
    out["ids_hashed_seq"] = np.array(
        [[0 if _position(r, p) is None else 1 + _hash_bin(r[p], 8) for p in range(S)] for r in IDS]
    )
    pooled = {  # per value encoding, pooling, what an empty row pools from
        "x_mean": (lambda v: v, np.mean, mean),
        "x_sum": (norm, np.sum, mean),
        "x_max": (lambda v: 2 * v + 1, np.max, -1.0),
    }
    for name, (encode, pool, fill) in pooled.items():
        out[name] = np.array([[pool([encode(v) for v in (present(r) or [fill])])] for r in NUMS])
    out["x_sum_missing"] = np.array([[0.0 if present(r) else 1.0] for r in NUMS])
    one_hot = lambda v, edges: np.eye(len(edges) + 1)[np.digitize(v, edges)]  # noqa: E731
    out["x_bins"] = np.array([np.mean([one_hot(v, learned) for v in (present(r) or [mean])], axis=0) for r in NUMS])
    mask = lambda r, n: np.array([0.0 if _position(r, p) is None else 1.0 for p in range(n)])  # noqa: E731
    out["x_seq"] = np.array([[0.0 if _position(r, p) is None else norm(r[p]) for p in range(S)] for r in NUMS])
    out["x_bins_seq"] = np.array(
        [[0 if _position(r, p) is None else 1 + int(np.digitize(r[p], BOUNDARIES)) for p in range(S)] for r in NUMS]
    )
    out["x_hot_seq"] = np.array(
        [np.concatenate([np.zeros(4) if _position(r, p) is None else one_hot(r[p], BOUNDARIES) for p in range(2)])
         for r in NUMS]
    )
    for name, length in (("x_seq", S), ("x_bins_seq", S), ("x_hot_seq", 2)):
        out[f"{name}_mask"] = np.array([mask(r, length) for r in NUMS])
    return out


EXPECTED = expected_outputs(statistics())


def assert_outputs(got, expected=EXPECTED, names=None):
    got = {k: np.asarray(v) for k, v in got.items()}
    assert sorted(got) == sorted(names or expected)
    for name, value in got.items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-6, atol=1e-6, err_msg=name)


# --- inputs in every form ---------------------------------------------------------------

PADS = {"tags": "", "ids": -1, "x": math.nan}


def _pad_of(name):
    return PADS[name.split("_")[0]]


def padded(name, rows=None):
    """A dense (rows, values) array padded (and missing elements given) as the model takes it."""
    rows = column(name) if rows is None else rows
    pad = _pad_of(name)
    width = max(map(len, rows))
    dense = [[pad if v is None else v for v in row] + [pad] * (width - len(row)) for row in rows]
    return np.array(dense, dtype=object if pad == "" else np.int64 if pad == -1 else np.float32)


def ragged(name):
    pad = _pad_of(name)
    rows = [[pad if v is None else v for v in row] for row in column(name)]
    return tf.ragged.constant(rows, dtype=tf.string if pad == "" else tf.int64 if pad == -1 else tf.float32)


@pytest.fixture(scope="module")
def fs():
    return space()


def test_lists_of_lists_encode_as_numpy_computes(fs):
    assert_outputs(fs({name: column(name) for name in fs.features}))


def test_every_input_form_gives_the_same_outputs(fs):
    names = list(fs.features)
    forms = {
        "dense padded": {n: padded(n) for n in names},
        "ragged": {n: ragged(n) for n in names},
        "sparse": {n: ragged(n).to_sparse() for n in names},
        "numpy object arrays of lists": {n: np.array(column(n), dtype=object) for n in names},
        "tuples of numpy rows": {n: tuple(np.array(r, dtype=object) for r in column(n)) for n in names},
        "a DataFrame of lists": pd.DataFrame({n: pd.Series(column(n), dtype=object) for n in names}),
    }
    for form, data in forms.items():
        assert np.array(column("tags"), dtype=object).shape == (ROWS,)
        try:
            assert_outputs(fs(data))
        except AssertionError as e:
            raise AssertionError(f"{form}: {e}") from None


def test_keras_own_layers_fed_each_rows_values_agree(fs):
    out = {k: np.asarray(v) for k, v in fs({name: column(name) for name in fs.features}).items()}
    tags_vocab, ids_vocab = vocabulary(TAGS), vocabulary(IDS)
    keras_layers = {
        "tags": (keras.layers.StringLookup(vocabulary=tags_vocab, output_mode="multi_hot"), TAGS, tf.string),
        "tags_count": (keras.layers.StringLookup(vocabulary=tags_vocab, output_mode="count"), TAGS, tf.string),
        "ids": (keras.layers.IntegerLookup(vocabulary=ids_vocab, output_mode="multi_hot"), IDS, tf.int64),
        "tags_hashed": (keras.layers.Hashing(num_bins=8, output_mode="multi_hot"), TAGS, tf.string),
        "ids_hashed": (keras.layers.Hashing(num_bins=8, output_mode="count"), IDS, tf.int64),
    }
    for name, (layer, rows, dtype) in keras_layers.items():
        for i, row in enumerate(rows):
            theirs = layer(tf.constant(present(row), dtype=dtype, shape=[len(present(row))]))
            np.testing.assert_array_equal(out[name][i], np.asarray(theirs), err_msg=f"{name} row {i}")
    # "int": TextVectorization's indices (0 padding, 1 OOV, then the tokens), on rows with no
    # missing element (one in the middle keeps its position, as 0: not TextVectorization's).
    text = keras.layers.TextVectorization(
        vocabulary=tags_vocab, standardize=None, split="whitespace", output_mode="int", output_sequence_length=S
    )
    for i, row in enumerate(TAGS):
        if None not in row:
            np.testing.assert_array_equal(out["tags_seq"][i], np.asarray(text(tf.constant([" ".join(row)])))[0])
    hashing = keras.layers.Hashing(num_bins=8)
    normalization = keras.layers.Normalization(mean=MEAN, variance=VARIANCE)
    discretization = keras.layers.Discretization(bin_boundaries=LEARNED, output_mode="count")
    for i, row in enumerate(NUMS):
        values = present(row) or [MEAN]
        x = tf.constant(values, tf.float32)
        np.testing.assert_allclose(out["x_sum"][i, 0], np.sum(normalization(x[:, None])), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out["x_bins"][i], np.asarray(discretization(x)) / len(values), rtol=1e-6)
        np.testing.assert_allclose(out["x_seq"][i][: len(row)][: S], [
            0.0 if v is None else float(normalization(tf.constant([[v]]))[0, 0]) for v in row[:S]
        ], rtol=1e-5, atol=1e-6)
    for i, row in enumerate(IDS):
        kept = row[:S]
        bins = np.asarray(hashing(tf.constant([-1 if v is None else v for v in kept], tf.int64, shape=[len(kept)])))
        expected = [0 if v is None else 1 + int(b) for v, b in zip(kept, bins)] + [0] * (S - len(kept))
        np.testing.assert_array_equal(out["ids_hashed_seq"][i], expected)


def test_concat_mode_is_the_dict_outputs_side_by_side():
    names = [n for n in declarations() if n not in INT_OUTPUTS]
    out = np.asarray(space("concat", names)({n: column(n) for n in names}))
    dict_out = space("dict", names)({n: column(n) for n in names})
    extras = sorted(k for k in dict_out if k not in names)
    assert extras == ["x_hot_seq_mask", "x_seq_mask", "x_sum_missing"]
    # keras' concatenation of the features by name, then the indicators and masks by name.
    expected = np.hstack([EXPECTED[n] for n in sorted(names)] + [EXPECTED[n] for n in extras])
    assert out.shape == (ROWS, expected.shape[1])
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


def test_tf_data_batched_ragged_and_unbatched_rows(fs):
    data = {n: ragged(n) for n in fs.features}
    batches = list(tf.data.Dataset.from_tensor_slices(data).batch(3).map(fs))
    assert_outputs({k: np.concatenate([b[k] for b in batches]) for k in batches[0]})
    # Unbatched: each element's list is one row's values (a 1-D tensor), its output 1-D.
    rows = list(tf.data.Dataset.from_tensor_slices(data).map(fs))
    assert len(rows) == ROWS
    assert_outputs({k: np.stack([r[k] for r in rows]) for k in rows[0]})
    # A padded batch of dense rows, as padded_batch makes them with the pad values.
    arrays = {n: padded(n).astype(str) if _pad_of(n) == "" else padded(n) for n in fs.features}
    dense = tf.data.Dataset.from_tensor_slices(arrays)
    batches = list(dense.batch(4).map(fs))
    assert_outputs({k: np.concatenate([b[k] for b in batches]) for k in batches[0]})


def test_one_row_given_as_its_values(fs):
    one = {name: column(name)[3] for name in fs.features}  # a 1-D list: one row's values
    got = fs(one)
    expected = {k: v[3] for k, v in EXPECTED.items()}
    assert all(np.asarray(v).ndim == 1 for v in got.values())
    assert_outputs(got, expected)


def test_keras_save_load_and_export_serve_dense_padded_inputs(fs, tmp_path):
    model = keras.Model(fs.get_inputs(), fs.get_encoded_features())
    assert all(tuple(x.shape) == (None, None) for x in model.inputs)
    dense = {n: padded(n) for n in fs.features}
    model.save(str(tmp_path / "model.keras"))
    reloaded = keras.models.load_model(str(tmp_path / "model.keras"))
    model.export(str(tmp_path / "served"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "served"))
    tensors = {n: tf.constant(v.tolist(), dtype=model.input[n].dtype) for n, v in dense.items()}
    for label, outputs in (("model", model(dense)), ("reloaded", reloaded(dense)), ("served", served.serve(tensors))):
        try:
            assert_outputs(outputs)
        except AssertionError as e:
            raise AssertionError(f"{label}: {e}") from None
    fs.save(str(tmp_path / "fs.keras"))
    loaded = keras.models.load_model(str(tmp_path / "fs.keras"))
    assert_outputs(loaded({name: column(name) for name in fs.features}))


def test_concat_model_saves_loads_and_serves(tmp_path):
    names = [n for n in declarations() if n not in INT_OUTPUTS]
    fs = space("concat", names)
    model = keras.Model(fs.get_inputs(), fs.get_encoded_features())
    expected = np.asarray(fs({n: column(n) for n in names}))
    model.export(str(tmp_path / "served"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "served"))
    tensors = {layer_name(n): tf.constant(padded(n).tolist(), dtype=model.input[n].dtype) for n in names}
    np.testing.assert_allclose(np.asarray(served.serve(tensors)), expected, rtol=1e-6)
    model.save(str(tmp_path / "m.keras"))
    again = keras.models.load_model(str(tmp_path / "m.keras"))
    np.testing.assert_allclose(np.asarray(again({n: padded(n) for n in names})), expected, rtol=1e-6)


def test_sequence_boundaries_truncate_and_pad():
    """Rows of 0, S - 1, S and S + 1 values: the first S positions, padded with 0."""
    rows = [[], ["a", "b"], ["a", "b", "a"], ["b", "a", "b", "a"]]
    fs = FS({"t": FS.string_categorical(multivalent=True, output_mode="int", sequence_length=S)}, output_mode="dict")
    fs._set_statistics({"t": {"vocabulary": ["a", "b"]}})
    assert np.asarray(fs({"t": rows})["t"]).tolist() == [[0, 0, 0], [2, 3, 0], [2, 3, 2], [3, 2, 3]]
    # A dense input wider or narrower than S, and one with no column at all.
    assert np.asarray(fs({"t": np.array([["a", "", "b", "a", "b"]])})["t"]).tolist() == [[2, 0, 3]]
    assert np.asarray(fs({"t": np.zeros((2, 0), dtype=str)})["t"]).tolist() == [[0, 0, 0]] * 2


def test_empty_rows_and_an_all_empty_batch():
    fs = space("dict", ["tags", "x_sum", "x_seq", "ids_hashed"])
    out = fs({"tags": [[], []], "x_sum": [[], [None]], "x_seq": [[], []], "ids_hashed": [[None], []]})
    assert np.asarray(out["tags"]).tolist() == [[0.0] * (1 + len(vocabulary(TAGS)))] * 2
    assert np.asarray(out["x_sum"]).tolist() == [[0.0], [0.0]]  # the mean's encoding
    assert np.asarray(out["x_sum_missing"]).tolist() == [[1.0], [1.0]]
    assert np.asarray(out["x_seq_mask"]).tolist() == [[0.0] * S] * 2
    assert np.asarray(out["ids_hashed"]).tolist() == [[0.0] * 8] * 2


def test_integer_pad_value_is_declared_and_never_a_token():
    fs = FS({"i": FS.integer_categorical(multivalent=True, output_mode="count", pad_value=0)}, output_mode="dict")
    fs._set_statistics({"i": {"vocabulary": [4, 7]}})
    # padded_batch's default padding (0) is this feature's pad value; -1 is a value (OOV).
    assert np.asarray(fs({"i": np.array([[4, -1, 0, 0], [0, 0, 0, 0]])})["i"]).tolist() == [[1, 1, 0], [0, 0, 0]]
    assert np.asarray(fs({"i": [[4, None, -1], []]})["i"]).tolist() == [[1, 1, 0], [0, 0, 0]]
    with pytest.raises(SpecError, match="feature 'i'.*holds the value 0, the pad_value.*declare a pad_value"):
        fs._set_statistics({"i": {"vocabulary": [0, 4]}})
    with pytest.raises(SpecError, match="pad_value"):
        FS.integer_categorical(pad_value=0)  # not a list: no padding
    with pytest.raises(SpecError, match="unknown argument.*pad_value"):
        FS.string_categorical(multivalent=True, pad_value="")


def test_json_declarations_build_the_same_features():
    json_declared = FS(
        {
            "tags": {"type": "string_categorical", "multivalent": True},
            "x": {"type": "float_normalized", "multivalent": True, "sequence_length": S},
        },
        output_mode="dict",
    )
    json_declared._set_statistics({"tags": statistics()["tags"], "x": statistics()["x_seq"]})
    out = json_declared({"tags": TAGS, "x": NUMS})
    np.testing.assert_array_equal(np.asarray(out["tags"]), EXPECTED["tags"])
    np.testing.assert_allclose(np.asarray(out["x"]), EXPECTED["x_seq"], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(out["x_mask"]), EXPECTED["x_seq_mask"])


def test_wrong_list_values_name_the_feature_row_and_fix(fs):
    good = {name: column(name) for name in fs.features}
    cases = [
        ("tags", [["a", 1], []], ["feature 'tags'", "1 at row 0", "str(x)"]),
        ("x_mean", [[1.0], [2.0, "abc"]], ["feature 'x_mean'", "'abc' at row 1"]),
        ("x_mean", [[1.0], [2.0, 1e39]], ["feature 'x_mean'", "at row 1", "scale them"]),
        ("ids", [[1], [2, 2.5]], ["feature 'ids'", "2.5 at row 1", "whole numbers"]),
        ("tags", [["a"], "b"], ["feature 'tags'", "'b' at row 1, beside rows of values", "list of lists"]),
        ("tags", [[["a"]]], ["feature 'tags'", "['a'] at row 0", "list of values per row"]),
        ("tags", np.zeros((2, 1, 1)).astype(str), ["feature 'tags'", "shape (2, 1, 1)"]),
        ("tags", [["a"]] * 2, ["different numbers of rows", "'tags': 2", "list of lists"]),
    ]
    for name, value, words in cases:
        data = {**good, name: value}
        with pytest.raises(InputDataError) as error:
            fs(data)
        for word in words:
            assert word in str(error.value), (name, value, str(error.value))


def test_a_scalar_feature_given_lists_says_to_declare_it_multivalent():
    fs = FS({"s": FS.string_categorical()}, output_mode="dict")
    fs._set_statistics({"s": {"vocabulary": ["a"]}})
    with pytest.raises(InputDataError, match="declare the feature multivalent"):
        fs({"s": [["a", "b"], ["a"]]})


def test_every_float_output_is_float32(fs):
    out = fs({name: column(name) for name in fs.features})
    for name, value in out.items():  # indices as keras' layers give them (Discretization: int32)
        assert value.dtype.is_integer if name in INT_OUTPUTS else value.dtype == tf.float32, name


def test_a_bundle_of_parquet_list_columns_builds_the_same_encodings(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kdp_beam.builder.declarations import spec_of
    from kdp_beam.job import run_analysis

    types = {"tags": pa.string(), "ids": pa.int64(), "x": pa.float64()}
    table = pa.table({n: pa.array(column(n), pa.list_(types[n.split("_")[0]])) for n in declarations()})
    pq.write_table(table, tmp_path / "lists.parquet")
    run_analysis(spec_of(space()), str(tmp_path / "lists.parquet"), str(tmp_path / "bundle"))
    fs = FS.from_artifacts(str(tmp_path / "bundle"), output_mode="dict")
    stats = load_bundle(str(tmp_path / "bundle")).features
    for name in ("tags", "ids"):  # every occurrence counted; any tie order
        assert Counter(stats[name]["vocabulary"]) == Counter(vocabulary(column(name)))
    np.testing.assert_allclose([stats["x_sum"]["mean"], stats["x_sum"]["variance"]], [MEAN, VARIANCE], rtol=1e-12)
    assert_outputs(fs({n: column(n) for n in fs.features}), expected_outputs(stats))


def test_a_sequence_mask_named_like_another_feature_is_refused():
    with pytest.raises(SpecError, match="feature 'x': its mask would be named 'x_mask', which is another feature's name"):
        FS({"x": FS.float(multivalent=True, sequence_length=2), "x_mask": FS.float()})


@functools.cache
def _numbers_space():
    return space("dict", ["x_mean", "x_sum", "x_max", "x_seq", "x_bins_seq"])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(st.none(), st.floats(-1e3, 1e3, allow_nan=False, width=32)), max_size=6),
        min_size=1, max_size=5,
    )
)
def test_number_lists_of_any_shape_pool_and_pad_as_numpy_does(rows):
    out = {k: np.asarray(v) for k, v in _numbers_space()({n: rows for n in _numbers_space().features}).items()}
    norm = lambda v: (v - MEAN) / math.sqrt(VARIANCE)  # noqa: E731
    for i, row in enumerate(rows):
        values = present(row)
        np.testing.assert_allclose(out["x_mean"][i, 0], np.mean(values or [MEAN]), rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(out["x_sum"][i, 0], np.sum([norm(v) for v in values] or [0.0]), rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(out["x_max"][i, 0], max(2 * v + 1 for v in values) if values else -1.0, rtol=1e-6)
        assert out["x_sum_missing"][i, 0] == (0.0 if values else 1.0)
        kept = [_position(row, p) for p in range(S)]
        np.testing.assert_allclose(out["x_seq"][i], [0.0 if v is None else norm(v) for v in kept], rtol=1e-5, atol=1e-4)
        assert out["x_seq_mask"][i].tolist() == [0.0 if v is None else 1.0 for v in kept]
        assert out["x_bins_seq"][i].tolist() == [0 if v is None else 1 + int(np.digitize(v, BOUNDARIES)) for v in kept]


@pytest.mark.parametrize("output_mode", ["dict", "concat"])
def test_one_row_beside_a_scalar_is_one_row(output_mode):
    """{"tags": ["a", "b"], "p": 3.0}: one example (keras drops the batch axis for the scalar)."""
    fs = FS({"tags": FS.string_categorical(multivalent=True), "p": FS.float()}, output_mode=output_mode)
    fs._set_statistics({"tags": {"vocabulary": ["a", "b"]}, "p": {"mean": 0.0}})
    for p in (3.0, np.float32(3.0)):
        out = fs({"tags": ["a", "z", "a"], "p": p})
        if output_mode == "dict":
            assert {k: np.asarray(v).tolist() for k, v in out.items()} == {"p": [3.0], "tags": [1.0, 1.0, 0.0]}
        else:
            assert np.asarray(out).tolist() == [3.0, 1.0, 1.0, 0.0]
    batch = fs({"tags": [["a"], ["b", "b"]], "p": [1.0, 2.0]})
    expected = {"p": [[1.0], [2.0]], "tags": [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]}
    if output_mode == "dict":
        assert {k: np.asarray(v).tolist() for k, v in batch.items()} == expected
    else:
        assert np.asarray(batch).tolist() == [p + t for p, t in zip(expected["p"], expected["tags"])]
