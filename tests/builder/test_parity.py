"""Encodings equal keras.utils.FeatureSpace.adapt's on the same rows and declarations."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kdp_beam
from kdp_beam.bundle.loader import load_bundle
from kdp_beam.builder.declarations import spec_of
from kdp_beam.job import run_analysis
from tests.builder.helpers import DATA, ROWS, declare, feature_data_table
from tests.conftest import write_shards

OUR_EPSILON = 1e-3  # kdp_beam.analyzers.quantiles.DEFAULT_EPSILON


def keras_space(output_mode):
    space = keras.utils.FeatureSpace(
        declare(keras.utils.FeatureSpace, output_mode), crosses=[("sc", "ic")], crossing_dim=8, output_mode=output_mode
    )
    space.adapt(tf.data.Dataset.from_tensor_slices(DATA).batch(256))
    return space


def encode(space, output_mode):
    out = space(DATA)
    return {k: np.asarray(v) for k, v in out.items()} if output_mode == "dict" else np.asarray(out)


def assert_bins_agree_within_error(ours_space, keras_space_, values, ours_bins, keras_bins):
    """Our boundaries are within our sketch's stated rank error of the exact quantiles;
    bins may differ only for values lying between our boundary and keras' (keras' own
    adapt is approximate too: on this data its boundaries are up to 1.25% off in rank)."""
    ours_b = np.array(ours_space.preprocessors["d"].bin_boundaries)
    keras_b = np.array(keras_space_.preprocessors["d"].bin_boundaries)
    assert ours_b.shape == keras_b.shape
    ordered = np.sort(values)
    num_bins = len(ours_b) + 1
    for i, boundary in enumerate(ours_b, start=1):
        rank = np.searchsorted(ordered, boundary) / ordered.size
        assert abs(rank - i / num_bins) <= OUR_EPSILON + 1 / ordered.size
    differ = ours_bins != keras_bins
    low, high = np.minimum(ours_b, keras_b), np.maximum(ours_b, keras_b)
    for value in values[differ]:
        assert np.any((low <= value) & (value <= high)), value


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory):
    """A bundle of the same rows from the Beam pipeline over sharded CSV."""
    directory = tmp_path_factory.mktemp("parity")
    space = kdp_beam.FeatureSpace(declare(kdp_beam.FeatureSpace), crosses=[("sc", "ic")], crossing_dim=8)
    feature_spec = spec_of(space)  # the declarations, crosses included, as kdp_beam.spec
    pattern = write_shards(feature_data_table(), directory / "csv", shards=3)
    run_analysis(feature_spec, pattern, str(directory / "bundle"))
    return str(directory / "bundle")


def test_adapt_encodes_like_keras_featurespace():
    reference = keras_space("dict")
    ours = kdp_beam.FeatureSpace(
        declare(kdp_beam.FeatureSpace), crosses=[("sc", "ic")], crossing_dim=8, output_mode="dict"
    )
    ours.adapt(DATA)  # a dict of arrays, analysed in-process in one pass
    expected, got = encode(reference, "dict"), encode(ours, "dict")
    assert list(got) == list(expected)
    assert {k: v.shape for k, v in got.items()} == {k: v.shape for k, v in expected.items()}
    for name in ("f", "r", "ic", "sc", "sc2", "sh", "ih", "sc_X_ic"):
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    np.testing.assert_allclose(got["n"], expected["n"], rtol=1e-5, atol=1e-5)
    assert_bins_agree_within_error(
        ours, reference, DATA["d"], got["d"].argmax(-1), expected["d"].argmax(-1)
    )


def test_concat_output_equals_keras_column_for_column():
    reference = keras_space("concat")
    ours = kdp_beam.FeatureSpace(
        declare(kdp_beam.FeatureSpace, "concat"), crosses=[("sc", "ic")], crossing_dim=8
    )
    ours.adapt(DATA)
    got, expected = encode(ours, "concat"), encode(reference, "concat")
    assert got.shape == expected.shape
    # keras concatenates features in sorted name order, then crosses in sorted order.
    widths = {"f": 1, "r": 1, "n": 1, "d": 4, "ic": 8, "sc": 5, "sc2": 4, "sh": 16, "ih": 16}
    order = sorted(widths) + ["sc_X_ic"]
    widths["sc_X_ic"] = 8
    start = 0
    for name in order:
        stop = start + widths[name]
        if name == "n":
            np.testing.assert_allclose(got[:, start:stop], expected[:, start:stop], rtol=1e-5, atol=1e-5)
        elif name == "d":
            assert_bins_agree_within_error(
                ours, reference, DATA["d"], got[:, start:stop].argmax(-1), expected[:, start:stop].argmax(-1)
            )
        else:
            np.testing.assert_array_equal(got[:, start:stop], expected[:, start:stop], err_msg=name)
        start = stop
    assert start == got.shape[1]


def test_bundle_from_beam_encodes_like_in_process_adapt(bundle_path):
    from_bundle = kdp_beam.FeatureSpace.from_artifacts(bundle_path, output_mode="dict")
    adapted = kdp_beam.FeatureSpace(
        declare(kdp_beam.FeatureSpace), crosses=[("sc", "ic")], crossing_dim=8, output_mode="dict"
    )
    adapted.adapt(DATA)
    got, expected = encode(from_bundle, "dict"), encode(adapted, "dict")
    assert list(got) == list(expected)
    for name in got:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-6, atol=1e-6, err_msg=name)
    reference = keras_space("dict")
    np.testing.assert_array_equal(got["sc"], encode(reference, "dict")["sc"])
    assert load_bundle(bundle_path).row_count == ROWS


@pytest.mark.parametrize(
    "make",
    [
        lambda: tf.data.Dataset.from_tensor_slices(DATA).batch(100),
        lambda: tf.data.Dataset.from_tensor_slices(DATA),  # unbatched scalars
        lambda: __import__("pandas").DataFrame(DATA),
    ],
    ids=["tf_data_batched", "tf_data_unbatched", "pandas"],
)
def test_every_in_memory_input_gives_the_same_statistics(make):
    by_dict = kdp_beam.FeatureSpace(declare(kdp_beam.FeatureSpace), output_mode="dict")
    by_dict.adapt(DATA)
    other = kdp_beam.FeatureSpace(declare(kdp_beam.FeatureSpace), output_mode="dict")
    other.adapt(make())
    for name in ("sc", "ic", "sc2"):
        assert other.preprocessors[name].get_vocabulary() == by_dict.preprocessors[name].get_vocabulary()
    assert other.preprocessors["d"].bin_boundaries == by_dict.preprocessors["d"].bin_boundaries
    np.testing.assert_allclose(
        np.asarray(other.preprocessors["n"].mean), np.asarray(by_dict.preprocessors["n"].mean), rtol=1e-7
    )


def test_adapt_on_a_file_pattern_runs_the_beam_pipeline(tmp_path):
    pattern = write_shards(feature_data_table(), tmp_path / "pq", 2, fmt="parquet")
    from_files = kdp_beam.FeatureSpace(declare(kdp_beam.FeatureSpace), output_mode="dict")
    from_files.adapt(pattern)
    in_memory = kdp_beam.FeatureSpace(declare(kdp_beam.FeatureSpace), output_mode="dict")
    in_memory.adapt(DATA)
    got, expected = encode(from_files, "dict"), encode(in_memory, "dict")
    for name in got:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-6, atol=1e-6, err_msg=name)


def test_custom_adaptable_preprocessors_are_adapted_the_keras_way():
    text = np.array(["red fox", "blue fox", "red dog", "red"] * 50)
    data = {"n": DATA["n"][:200], "t": text}

    def features(cls):
        return {
            "n": cls.float_normalized(),
            "t": cls.feature(
                dtype="string",
                preprocessor=keras.layers.TextVectorization(max_tokens=6, output_mode="multi_hot"),
                output_mode="float",
            ),
        }

    reference = keras.utils.FeatureSpace(features(keras.utils.FeatureSpace), output_mode="dict")
    reference.adapt(tf.data.Dataset.from_tensor_slices(data).batch(50))
    ours = kdp_beam.FeatureSpace(features(kdp_beam.FeatureSpace), output_mode="dict")
    ours.adapt(data)
    np.testing.assert_array_equal(np.asarray(ours(data)["t"]), np.asarray(reference(data)["t"]))
    # keras' float32 statistics drift here (values ~1e4, batches of 50); ours are the
    # exact float64 ones, rounded once to the layer's float32.
    n = data["n"].astype(np.float64)
    layer = ours.preprocessors["n"]
    assert np.asarray(layer.mean).item() == np.float32(n.mean())
    assert np.asarray(layer.variance).item() == np.float32(n.var())


@pytest.mark.parametrize("container", ["dict", "DataFrame"])
def test_layers_kdp_beam_has_no_analyzer_for_are_adapted_by_keras_from_in_memory_data(container):
    """keras' own adapt() takes a dict only from keras 3.15; kdp_beam's takes one with every
    keras it supports, also for the layers it leaves to keras (character tokens here)."""
    pd = pytest.importorskip("pandas")
    data = {"n": DATA["n"][:200], "t": np.array(["ab", "ba", "c", "abc"] * 50)}

    def features(cls):
        vectorizer = keras.layers.TextVectorization(split="character", output_mode="count")
        return {"n": cls.float_normalized(), "t": cls.feature("string", vectorizer, "float")}

    reference = keras.utils.FeatureSpace(features(keras.utils.FeatureSpace), output_mode="dict")
    reference.adapt(tf.data.Dataset.from_tensor_slices(data))
    ours = kdp_beam.FeatureSpace(features(kdp_beam.FeatureSpace), output_mode="dict")
    ours.adapt(pd.DataFrame(data) if container == "DataFrame" else data)
    vocabulary = reference.preprocessors["t"].get_vocabulary()
    assert sorted(vocabulary) == ["[UNK]", "a", "b", "c"]
    assert ours.preprocessors["t"].get_vocabulary() == vocabulary
    np.testing.assert_array_equal(np.asarray(ours(data)["t"]), np.asarray(reference(data)["t"]))


def test_a_feature_space_of_only_custom_preprocessors_adapts_as_keras():
    """With no feature a kdp_beam type analyses, adapt() refused the space ("features must
    declare at least one feature"); keras adapts it, and so does kdp_beam now."""
    data = {"t": np.array(["ab", "ba", "c", "abc"] * 50)}

    def features(cls):
        vectorizer = keras.layers.TextVectorization(split="character", output_mode="count")
        return {"t": cls.feature("string", vectorizer, "float")}

    reference = keras.utils.FeatureSpace(features(keras.utils.FeatureSpace), output_mode="dict")
    reference.adapt(tf.data.Dataset.from_tensor_slices(data))
    ours = kdp_beam.FeatureSpace(features(kdp_beam.FeatureSpace), output_mode="dict")
    ours.adapt(data)
    assert ours.preprocessors["t"].get_vocabulary() == reference.preprocessors["t"].get_vocabulary()
    np.testing.assert_array_equal(np.asarray(ours(data)["t"]), np.asarray(reference(data)["t"]))
