"""One missing-value policy in analysis and model, for every feature type
(docs/missing-values.md)."""

import keras
import numpy as np
import pyarrow as pa
import tensorflow as tf

import kdp_beam
from kdp_beam.job import run_analysis
from kdp_beam.spec import FeatureSpec
from tests.conftest import write_shards

FS = kdp_beam.FeatureSpace
X = np.array([1.0, 2.0, np.nan, 4.0, 7.0, np.nan])
FINITE = X[~np.isnan(X)]


def test_numbers_fill_with_the_mean_and_add_indicators():
    fs = FS(
        {
            "n": FS.float_normalized(missing_indicator=True),
            "f": FS.float(),
            "r": FS.float_rescaled(scale=2.0, fill_value=-1.0),
            "d": FS.float_discretized(num_bins=2, missing_indicator=True),
        },
        output_mode="dict",
    )
    fs.adapt({"n": X, "f": X, "r": X, "d": X})
    mean, std = FINITE.mean(), FINITE.std()
    inputs = [1.0, None, np.nan, ""]  # a number, then missing as None, NaN, empty field
    out = {k: np.asarray(v) for k, v in fs({k: inputs for k in "nfrd"}).items()}
    np.testing.assert_allclose(out["n"][:, 0], [(1 - mean) / std, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(out["f"][:, 0], [1.0, mean, mean, mean], rtol=1e-6)
    np.testing.assert_allclose(out["r"][:, 0], [2.0, -2.0, -2.0, -2.0])
    # Discretized: the mean's bin, plus the indicator.
    boundary = fs.preprocessors["d"].bin_boundaries[0]
    mean_bin = [0, 1] if mean >= boundary else [1, 0]
    np.testing.assert_array_equal(out["d"], [[1, 0]] + [mean_bin] * 3)
    np.testing.assert_array_equal(out["n_missing"][:, 0], [0, 1, 1, 1])
    np.testing.assert_array_equal(out["d_missing"][:, 0], [0, 1, 1, 1])
    assert "f_missing" not in out


def test_indicators_come_last_in_concat_mode_and_survive_saving(tmp_path):
    fs = FS({"a": FS.float_normalized(missing_indicator=True), "b": FS.float()})
    fs.adapt({"a": X, "b": X})
    out = np.asarray(fs({"a": [np.nan, 3.0], "b": [1.0, None]}))
    mean = FINITE.mean()
    np.testing.assert_allclose(out, [[0.0, 1.0, 1.0], [(3 - mean) / FINITE.std(), mean, 0.0]], rtol=1e-6)
    fs.save(str(tmp_path / "fs.keras"))
    loaded = keras.models.load_model(str(tmp_path / "fs.keras"))
    np.testing.assert_array_equal(np.asarray(loaded({"a": [np.nan, 3.0], "b": [1.0, None]})), out)


def test_tf_data_inputs_with_nan_are_filled_too():
    fs = FS({"a": FS.float_normalized()})
    fs.adapt({"a": X})
    dataset = tf.data.Dataset.from_tensor_slices({"a": X.astype(np.float32)}).batch(3).map(fs)
    encoded = np.concatenate([np.asarray(b) for b in dataset])
    assert not np.isnan(encoded).any()
    np.testing.assert_allclose(encoded[[2, 5], 0], 0.0, atol=1e-6)


def test_categoricals_map_missing_to_oov_or_to_the_declared_token():
    data = {
        "s": np.array(["a", "b", "", None, "a", ""], dtype=object),
        "t": np.array(["a", "b", "", None, "a", ""], dtype=object),
        "i": [3, 2**40, None, 3, None, 5],
        "j": [3, 2**40, None, 3, None, 5],
    }
    fs = FS(
        {
            "s": FS.string_categorical(output_mode="int"),
            "t": FS.string_categorical(output_mode="int", missing_token="(none)"),
            "i": FS.integer_categorical(output_mode="int"),
            "j": FS.integer_categorical(output_mode="int", missing_token=0),
        },
        output_mode="dict",
    )
    fs.adapt(data)
    # Missing values are counted as the declared token, or left out of the vocabulary.
    assert fs.preprocessors["s"].get_vocabulary() == ["[UNK]", "a", "b"]
    assert fs.preprocessors["t"].get_vocabulary() == ["[UNK]", "(none)", "a", "b"]
    assert fs.preprocessors["i"].get_vocabulary() == [-1, 3, 1099511627776, 5]
    assert fs.preprocessors["j"].get_vocabulary() == [-1, 3, 0, 1099511627776, 5]
    out = {k: np.asarray(v)[:, 0].tolist() for k, v in fs(data).items()}
    assert out["s"] == [1, 2, 0, 0, 1, 0]  # OOV
    assert out["t"] == [2, 3, 1, 1, 2, 1]  # the token's index
    assert out["i"] == [1, 2, 0, 1, 0, 3]
    assert out["j"] == [1, 3, 2, 1, 2, 4]


def test_text_and_hashed_strings_treat_missing_as_empty():
    fs = FS({"t": FS.text(), "h": FS.string_hashed(num_bins=4)}, output_mode="dict")
    fs.adapt({"t": ["a b", "b", None, ""], "h": ["x", None, "", "y"]})
    out = fs({"t": [None, ""], "h": [None, ""]})
    np.testing.assert_array_equal(np.asarray(out["t"]), np.zeros((2, 3)))
    np.testing.assert_array_equal(np.asarray(out["h"])[0], np.asarray(out["h"])[1])


def test_analysis_and_model_agree_on_files_with_holes(tmp_path):
    table = pa.table(
        {
            "x": pa.array([1.0, None, 3.0, float("nan"), 8.0]),
            "c": pa.array(["p", None, "", "q", "p"]),
        }
    )
    pattern = write_shards(table, tmp_path / "csv", 2)
    spec = FeatureSpec(
        {
            "x": {"type": "float_normalized", "missing_indicator": True},
            "c": {"type": "string_categorical", "missing_token": "?", "output_mode": "int"},
        }
    )
    run_analysis(spec, pattern, str(tmp_path / "bundle"))
    bundle = kdp_beam.load_bundle(str(tmp_path / "bundle"))
    stats = bundle.features
    assert (stats["x"]["null_count"], stats["x"]["nan_count"], stats["x"]["missing_count"]) == (1, 1, 2)
    assert stats["x"]["mean"] == 4.0
    assert stats["c"]["missing_count"] == 2
    assert dict(zip(stats["c"]["vocabulary"], stats["c"]["vocabulary_counts"])) == {"?": 2, "p": 2, "q": 1}
    fs = FS.from_artifacts(bundle, output_mode="dict")
    assert fs.features["x"].fill == 4.0
    out = fs({"x": [None, 4.0], "c": [None, "?"]})
    np.testing.assert_allclose(np.asarray(out["x"])[:, 0], [0.0, 0.0])
    np.testing.assert_array_equal(np.asarray(out["x_missing"])[:, 0], [1.0, 0.0])
    assert np.asarray(out["c"])[0, 0] == np.asarray(out["c"])[1, 0] != 0


def test_int64_ids_round_trip_and_encode_as_keras(tmp_path):
    rng = np.random.default_rng(4)
    ids = (2**33 + rng.integers(0, 40, 3000) * 2**31).astype(np.int64)
    pattern = write_shards(pa.table({"user": ids}), tmp_path / "csv", 3)
    spec = FeatureSpec({"user": {"type": "integer_categorical", "max_tokens": 21, "output_mode": "int"}})
    run_analysis(spec, pattern, str(tmp_path / "bundle"))
    fs = FS.from_artifacts(str(tmp_path / "bundle"), output_mode="dict")
    layer = keras.layers.IntegerLookup(max_tokens=21, output_mode="int")
    layer.adapt(ids)
    assert fs.preprocessors["user"].get_vocabulary() == layer.get_vocabulary()
    assert max(layer.get_vocabulary()) > 2**36
    np.testing.assert_array_equal(np.asarray(fs({"user": ids})["user"])[:, 0], np.asarray(layer(ids)))
    # keras' FeatureSpace declares integer inputs int32, which would wrap these IDs.
    assert fs.get_inputs()["user"].dtype == "int64"
