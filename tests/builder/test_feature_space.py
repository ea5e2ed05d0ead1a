"""kdp_beam.FeatureSpace as a drop-in keras FeatureSpace: calls, saving, serving, errors."""

import json
import subprocess
import sys
from fractions import Fraction

import keras
import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf

import kdp_beam
from kdp_beam.errors import BundleError, InputDataError
from kdp_beam.job import run_analysis
from kdp_beam.spec import FeatureSpec
from tests.builder.helpers import DATA, declare, feature_data_table
from tests.conftest import write_shards

SPEC = {
    "features": {
        "n": "float_normalized",
        "d": {"type": "float_discretized", "num_bins": 4},
        "ic": {"type": "integer_categorical", "max_tokens": 8},
        "sc": {"type": "string_categorical", "max_tokens": 5},
        "sh": {"type": "string_hashed", "num_bins": 16},
    },
    "crosses": [{"feature_names": ["sc", "ic"], "crossing_dim": 8}],
}
ROW = {"n": 1e4, "d": 1.5, "ic": 3, "sc": "Paris", "sh": "user7"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fs")
    pattern = write_shards(feature_data_table(), directory / "csv", shards=2)
    run_analysis(FeatureSpec.from_json(SPEC), pattern, str(directory / "bundle"))
    return str(directory / "bundle")


def test_from_artifacts_builds_without_data_and_matches_the_declarations(bundle):
    fs = kdp_beam.FeatureSpace.from_artifacts(bundle)
    assert isinstance(fs, keras.utils.FeatureSpace)
    assert sorted(fs.get_inputs()) == ["d", "ic", "n", "sc", "sh"]
    assert fs.get_encoded_features().shape[-1] == 1 + 4 + 8 + 5 + 16 + 8
    assert fs.preprocessors["sc"].get_vocabulary()[0] == "[UNK]"
    assert sorted(fs.crossers) == ["sc_X_ic"]


def test_calls_on_batched_unbatched_and_scalar_dicts_inside_and_outside_tf_data(bundle):
    fs = kdp_beam.FeatureSpace.from_artifacts(bundle)
    batch = {k: np.asarray(DATA[k][:8]) for k in ROW}
    batched = np.asarray(fs(batch))
    assert batched.shape == (8, 42)
    one = np.asarray(fs({k: v[:1] for k, v in batch.items()}))  # rank-1 inputs
    scalar = np.asarray(fs({k: v[0] for k, v in batch.items()}))  # scalars -> unbatched
    np.testing.assert_array_equal(one[0], batched[0])
    np.testing.assert_array_equal(scalar, batched[0])
    mapped = tf.data.Dataset.from_tensor_slices(batch).batch(4).map(fs)
    np.testing.assert_array_equal(np.concatenate([np.asarray(x) for x in mapped]), batched)
    unbatched = tf.data.Dataset.from_tensor_slices(batch).map(fs)
    np.testing.assert_array_equal(np.stack([np.asarray(x) for x in unbatched]), batched)


def test_a_model_trains_on_features_from_a_cli_bundle(bundle):
    fs = kdp_beam.FeatureSpace.from_artifacts(bundle)
    n = DATA["n"].astype("float64")
    label = (DATA["sc"] == "Paris").astype("float32") + 0.3 * (n - n.mean()) / n.std()
    dataset = tf.data.Dataset.from_tensor_slices(({k: DATA[k] for k in ROW}, label)).batch(64)
    dataset = dataset.map(lambda x, y: (fs(x), y))
    inputs = keras.Input(shape=(42,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(keras.optimizers.Adam(0.05), "mse")
    history = model.fit(dataset, epochs=6, shuffle=False, verbose=0)
    assert history.history["loss"][-1] < 0.02 < history.history["loss"][0]


SUBPROCESS_LOAD = """
import json, sys
import numpy as np
import keras
from kdp_beam import FeatureSpace  # registers kdp_beam>FeatureSpace; no Beam, no analysis
loaded = keras.models.load_model(sys.argv[1])  # safe_mode=True, the default
rows = json.loads(sys.argv[2])
out = loaded({k: np.asarray(v) for k, v in rows.items()})
print(json.dumps({"out": np.asarray(out).tolist(), "type": type(loaded).__name__,
                  "beam": "apache_beam" in sys.modules,
                  "analysis": "kdp_beam.analyzers" in sys.modules}))
"""


def test_save_and_load_in_a_fresh_process_gives_identical_outputs(bundle, tmp_path):
    fs = kdp_beam.FeatureSpace.from_artifacts(bundle)
    rows = {k: (DATA[k][:16].tolist()) for k in ROW}
    rows["sc"][0] = "new\nline"
    expected = np.asarray(fs({k: np.asarray(v) for k, v in rows.items()}))
    fs.save(str(tmp_path / "prep.keras"))
    done = subprocess.run(
        [sys.executable, "-c", SUBPROCESS_LOAD, str(tmp_path / "prep.keras"), json.dumps(rows)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["type"] == "FeatureSpace"
    assert not result["beam"] and not result["analysis"]
    np.testing.assert_array_equal(np.asarray(result["out"], dtype=np.float32), expected)


def test_vocabularies_with_newlines_survive_saving(tmp_path):
    data = {"s": np.array(["a\nb", " ", "c", "c", "a\nb", "a\nb"])}
    fs = kdp_beam.FeatureSpace({"s": kdp_beam.FeatureSpace.string_categorical()}, output_mode="dict")
    fs.adapt(data)
    fs.save(str(tmp_path / "s.keras"))
    loaded = keras.models.load_model(str(tmp_path / "s.keras"))
    assert loaded.preprocessors["s"].get_vocabulary() == ["[UNK]", "a\nb", "c", " "]
    np.testing.assert_array_equal(np.asarray(loaded(data)["s"]), np.asarray(fs(data)["s"]))


def test_config_round_trip(bundle):
    fs = kdp_beam.FeatureSpace.from_artifacts(bundle, output_mode="dict")
    again = kdp_beam.FeatureSpace.from_config(fs.get_config())
    assert type(again) is kdp_beam.FeatureSpace
    assert again.get_config() == fs.get_config()
    assert keras.saving.get_registered_name(kdp_beam.FeatureSpace) == "kdp_beam>FeatureSpace"


def test_build_preprocessor_exports_a_savedmodel_serving_raw_features(bundle, tmp_path):
    model = kdp_beam.build_preprocessor(bundle, output_mode="concat")
    batch = {k: np.asarray(DATA[k][:5]).reshape(-1, 1) for k in sorted(ROW)}
    expected = np.asarray(model(batch))
    model.export(str(tmp_path / "served"))
    served = tf.saved_model.load(str(tmp_path / "served"))
    tensors = {k: tf.constant(v, dtype=model.input[k].dtype) for k, v in batch.items()}
    np.testing.assert_allclose(np.asarray(served.serve(tensors)), expected)
    dict_model = kdp_beam.build_preprocessor(bundle, output_mode="dict")
    assert sorted(dict_model.output) == ["d", "ic", "n", "sc", "sc_X_ic", "sh"]


@pytest.mark.parametrize(
    "features, words",
    [
        ({"missing": "float_normalized"}, ["'missing'", "not in the bundle"]),
        ({"n": "string_categorical"}, ["'n'", "string_categorical here", "float_normalized"]),
        ({"sc": kdp_beam.FeatureSpace.string_categorical(max_tokens=50)}, ["'sc'", "max_tokens=50", "max_tokens=5"]),
        ({"d": kdp_beam.FeatureSpace.float_discretized(num_bins=10)}, ["'d'", "num_bins=10", "num_bins=4"]),
    ],
    ids=["unknown_feature", "changed_type", "changed_max_tokens", "changed_bins"],
)
def test_code_that_disagrees_with_the_bundle_fails_naming_feature_and_difference(bundle, features, words):
    with pytest.raises(BundleError) as error:
        kdp_beam.FeatureSpace.from_artifacts(bundle, features=features)
    for word in words:
        assert word in str(error.value)


def test_code_declarations_that_agree_with_the_bundle_are_accepted(bundle):
    fs = kdp_beam.FeatureSpace.from_artifacts(
        bundle,
        features={
            "sc": kdp_beam.FeatureSpace.string_categorical(max_tokens=5, output_mode="int"),
            "n": "float_normalized",
        },
        output_mode="dict",
    )
    encoded = fs({"sc": "Paris", "n": 1e4})
    assert np.asarray(encoded["sc"]).item() == fs.preprocessors["sc"].get_vocabulary().index("Paris")


def test_unknown_input_types_are_rejected_like_keras():
    fs = kdp_beam.FeatureSpace(declare(kdp_beam.FeatureSpace))
    with pytest.raises(ValueError, match="adapt"):
        fs.adapt(42)


def test_features_declared_as_in_the_features_json_build_what_the_constructors_build():
    """A features-JSON object or a kdp_beam.spec declaration, the spec's own forms, were
    refused (a raw "AttributeError: 'TrackedDict' object has no attribute 'dtype'", and
    keras' "Invalid feature type"); an unknown name now says what is registered."""
    from kdp_beam import spec
    from kdp_beam.errors import SpecError

    data = {"n": DATA["n"][:300], "h": np.array([f"t{i % 23}" for i in range(300)]), "d": DATA["n"][:300]}
    as_json = kdp_beam.FeatureSpace(
        {"n": spec.float_normalized(fill_value=0.5), "h": {"type": "string_hashed", "num_bins": 8}, "d": "float_discretized"},
        num_discretization_bins=4, output_mode="dict",
    )
    constructed = kdp_beam.FeatureSpace(
        {"n": kdp_beam.FeatureSpace.float_normalized(fill_value=0.5), "h": kdp_beam.FeatureSpace.string_hashed(8),
         "d": kdp_beam.FeatureSpace.float_discretized(4)},
        output_mode="dict",
    )
    for fs in (as_json, constructed):
        fs.adapt(data)
    assert {n: f.declaration for n, f in as_json.features.items()} == {n: f.declaration for n, f in constructed.features.items()}
    for name in data:
        np.testing.assert_array_equal(np.asarray(as_json(data)[name]), np.asarray(constructed(data)[name]))
    with pytest.raises(SpecError, match=r"feature 'x': unknown feature type 'floatz'; expected one of \[.*'float'"):
        kdp_beam.FeatureSpace({"x": "floatz"})
    with pytest.raises(SpecError, match=r"feature 'x': string_hashed: argument\(s\) \['num_bins'\] are required"):
        kdp_beam.FeatureSpace({"x": {"type": "string_hashed"}})


FLOAT32_LARGEST = float(np.finfo(np.float32).max)


@pytest.mark.parametrize(
    "declaration, values, statistic",
    [
        ("float_normalized", [1e50, 3e50, 2e50], "mean"),  # the outsider's case: NaN for every row
        ("float_normalized", [1e30, -1e30], "variance"),  # values fit float32, 1e60 does not: 0 for every row
        ({"type": "float_discretized", "num_bins": 2}, [-1e50, 0.0, 1e50, 2e50], "mean"),  # the fill
        ({"type": "float_discretized", "num_bins": 2, "fill_value": 0.0}, [-1e50, 0.0, 1e50, 2e50], "bin boundary"),
        ({"type": "float_rescaled", "scale": 1e-20}, [1e50, 2e50], "mean"),  # the fill
        ("float_normalized", [1e19, -1e19], None),  # variance 1e38: fits
        ({"type": "float_rescaled", "scale": 1e-20, "fill_value": 0.0}, [1e30, -1e30, 1e50], None),  # holds nothing big
    ],
)
def test_statistics_beyond_float32_are_refused_not_nan(tmp_path, declaration, values, statistic):
    """The model computes in float32: a statistic beyond it would be inf there and every
    output NaN or 0. Refused by from_artifacts and adapt naming the feature and what to do;
    what fits gives the values numpy computes in float64."""
    pattern = write_shards(pa.table({"x": values}), tmp_path / "csv", shards=1)
    run_analysis(FeatureSpec.from_json({"features": {"x": declaration}}), pattern, str(tmp_path / "b"))
    mean = float(sum(map(Fraction, values)) / len(values))
    if statistic is not None:
        message = rf"feature 'x': its {statistic} .* is beyond float32 .*divide it by 1e\d+"
        with pytest.raises(InputDataError, match=message):
            kdp_beam.FeatureSpace.from_artifacts(str(tmp_path / "b"))
        options = {"type": declaration} if isinstance(declaration, str) else dict(declaration)
        fs = kdp_beam.FeatureSpace({"x": getattr(kdp_beam.FeatureSpace, options.pop("type"))(**options)})
        with pytest.raises(InputDataError, match=message):
            fs.adapt({"x": np.array(values)})
        assert statistic != "mean" or abs(mean) > FLOAT32_LARGEST
        return
    fs = kdp_beam.FeatureSpace.from_artifacts(str(tmp_path / "b"), output_mode="dict")
    x = np.array([v for v in values if abs(v) < 1e38] + [np.nan])
    got = np.asarray(fs({"x": x})["x"]).ravel()
    if declaration == "float_normalized":
        expected = (np.append(x[:-1], mean) - mean) / np.std(values)
    else:
        expected = np.append(x[:-1], 0.0) * 1e-20
    np.testing.assert_allclose(got, expected, rtol=1e-6)
