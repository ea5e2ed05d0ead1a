"""FeatureSpace.text encodes exactly as keras TextVectorization adapted on the same data."""

import keras
import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf

import kdp_beam
from kdp_beam.job import run_analysis
from kdp_beam.spec import FeatureSpec
from tests.conftest import write_shards

RNG = np.random.default_rng(8)
WORDS = ["The", "cat", "sat", "on", "the", "mat.", "A", "dog!", "ran", "far,", "très", "vite"]
TEXTS = np.array(
    [" ".join(RNG.choice(WORDS, RNG.integers(0, 12))) for _ in range(1200)] + ["", "  ", "?!"],
    dtype=object,
)


@pytest.mark.parametrize(
    "options",
    [
        {"output_mode": "multi_hot"},
        {"output_mode": "count", "max_tokens": 8},
        {"output_mode": "tf_idf", "max_tokens": 12, "ngrams": 2},
        {"output_mode": "int", "max_tokens": 10, "sequence_length": 7},
        {"output_mode": "multi_hot", "standardize": None, "ngrams": [1, 3]},
        {"output_mode": "count", "split": None, "standardize": "lower"},
    ],
)
def test_encodings_equal_text_vectorization_adapt(options):
    keras_options = dict(options)
    keras_options["output_sequence_length"] = keras_options.pop("sequence_length", None)
    if isinstance(keras_options.get("ngrams"), list):
        keras_options["ngrams"] = tuple(keras_options["ngrams"])
    layer = keras.layers.TextVectorization(**keras_options)
    layer.adapt(tf.data.Dataset.from_tensor_slices(TEXTS.astype(str)).batch(100))

    fs = kdp_beam.FeatureSpace({"t": kdp_beam.FeatureSpace.text(**options)}, output_mode="dict")
    fs.adapt({"t": TEXTS})
    ours = fs.preprocessors["t"]
    assert ours.get_vocabulary() == layer.get_vocabulary()
    inputs = tf.constant(TEXTS.astype(str))
    expected = np.asarray(layer(inputs if "split" not in options else inputs[:, None]))
    got = np.asarray(fs({"t": TEXTS})["t"])
    if options["output_mode"] == "tf_idf":
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    else:
        np.testing.assert_array_equal(got, expected)


def test_a_text_vectorization_given_its_vocabulary_keeps_it_as_in_keras(tmp_path):
    """keras' FeatureSpace does not adapt a TextVectorization constructed with a
    vocabulary; kdp_beam replaced its vocabulary with the data's (13 columns instead of
    3), in adapt and in from_artifacts alike."""
    def declared(feature_space):
        layer = keras.layers.TextVectorization(vocabulary=["cat", "dog"], output_mode="multi_hot")
        return {"t": feature_space.feature("string", layer, "float")}

    reference = keras.utils.FeatureSpace(declared(keras.utils.FeatureSpace), output_mode="dict")
    reference.adapt(tf.data.Dataset.from_tensor_slices({"t": TEXTS.astype(str)}).batch(100))
    expected = np.asarray(reference({"t": TEXTS[:40].astype(str)})["t"])
    assert expected.shape == (40, 3)
    fs = kdp_beam.FeatureSpace(declared(kdp_beam.FeatureSpace), output_mode="dict")
    fs.adapt({"t": TEXTS})
    np.testing.assert_array_equal(np.asarray(fs({"t": TEXTS[:40]})["t"]), expected)
    pattern = write_shards(pa.table({"t": TEXTS.astype(str)}), tmp_path / "csv", 1)
    run_analysis(FeatureSpec({"t": "text"}), pattern, str(tmp_path / "bundle"))
    built = kdp_beam.FeatureSpace.from_artifacts(str(tmp_path / "bundle"), features=declared(kdp_beam.FeatureSpace), output_mode="dict")
    np.testing.assert_array_equal(np.asarray(built({"t": TEXTS[:40]})["t"]), expected)


def test_text_from_a_bundle_saves_and_loads(tmp_path):
    pattern = write_shards(pa.table({"t": TEXTS.astype(str)}), tmp_path / "csv", 3)
    spec = FeatureSpec({"t": {"type": "text", "output_mode": "tf_idf", "max_tokens": 16, "ngrams": 2}})
    run_analysis(spec, pattern, str(tmp_path / "bundle"))
    model = kdp_beam.build_preprocessor(str(tmp_path / "bundle"))
    batch = {"t": tf.constant(TEXTS[:50].astype(str))[:, None]}
    expected = np.asarray(model(batch))
    assert expected.shape == (50, 16)
    model.save(str(tmp_path / "m.keras"))
    loaded = keras.models.load_model(str(tmp_path / "m.keras"))
    np.testing.assert_array_equal(np.asarray(loaded(batch)), expected)


@pytest.mark.parametrize("split", ["whitespace", "character", None])
@pytest.mark.parametrize("output_mode", ["multi_hot", "count", "tf_idf", "int"])
def test_declared_shape_on_feature_space_inputs_is_the_computed_one(split, output_mode):
    """On (batch, 1) strings, split or not, the symbolic shape is what the layer returns."""
    from kdp_beam.builder.layers import TextVectorization

    length = 3 if output_mode == "int" else None
    layer = TextVectorization(split=split, output_mode=output_mode, output_sequence_length=length)
    vocabulary = ["a", "b c", "d"]
    layer.set_vocabulary(vocabulary, idf_weights=[1.0] * 3 if output_mode == "tf_idf" else None)
    declared = layer(keras.Input(shape=(1,), dtype="string")).shape
    computed = layer(tf.constant([["a b c"], ["d"]])).shape
    assert declared[1:] == tuple(computed[1:])
