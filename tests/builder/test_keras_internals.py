"""Each keras name kdp_beam.builder.keras_internals relies on exists and behaves as it
assumes, in the installed keras: a keras upgrade that moves one fails here first, by name.
`make test-keras KERAS=<version>` runs these (and every test that builds keras layers)
against another keras."""

import ast
import inspect
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

import kdp_beam
from kdp_beam.builder import keras_internals as ki
from kdp_beam.builder.layers import DateEncoding, FillMissing, TextVectorization

PACKAGE = pathlib.Path(kdp_beam.__file__).parent
FS = keras.utils.FeatureSpace

# --- classes keras does not export ---------------------------------------------------------


def test_keras_feature_is_the_record_feature_space_takes():
    record = FS.feature("float32", FS.float(name="k1").preprocessor, "float")
    assert type(record) is ki.KerasFeature
    ours = kdp_beam.FeatureSpace.float_normalized(fill_value=1.0)
    assert isinstance(ours, ki.KerasFeature)
    # keras' FeatureSpace takes it as a declared feature, as is (its isinstance check).
    assert FS({"x": ours}).features["x"] is ours


def test_identity_layer_is_float_preprocessor_and_runs_in_tf_data():
    assert ki.is_identity_layer(FS.float(name="k2").preprocessor)
    assert not ki.is_identity_layer(keras.layers.Identity())
    layer = ki.identity_layer("int64", "k2_passthrough")
    assert (layer.name, layer.dtype) == ("k2_passthrough", "int64")
    values = np.array([[3], [2**40]], dtype=np.int64)
    mapped = tf.data.Dataset.from_tensor_slices(values).batch(2).map(layer)
    np.testing.assert_array_equal(next(iter(mapped)).numpy(), values)


# --- FeatureSpace hooks --------------------------------------------------------------------


def spy_feature_space(calls):
    """keras' FeatureSpace recording each hook FEATURE_SPACE_HOOKS names when keras calls it."""

    def recording(name):
        def hook(self, *args, **kwargs):
            calls.append(name)
            return getattr(FS, name)(self, *args, **kwargs)

        return hook

    return type("Spy", (FS,), {name: recording(name) for name in ki.FEATURE_SPACE_HOOKS})


@pytest.mark.parametrize("hook", sorted(ki.FEATURE_SPACE_HOOKS))
def test_feature_space_hook_exists_with_the_arguments_kdp_beam_overrides(hook):
    assert hasattr(FS, hook), f"keras.utils.FeatureSpace has no {hook}() any more"
    parameters = list(inspect.signature(getattr(FS, hook)).parameters)
    assert tuple(parameters[1:]) == ki.FEATURE_SPACE_HOOKS[hook]
    ours = list(inspect.signature(getattr(kdp_beam.FeatureSpace, hook)).parameters)
    assert ours == parameters


# When keras' FeatureSpace calls each hook: built, adapted, called on data.
HOOK_CALLED_BY = {
    "_standardize_feature": "init",
    "_feature_to_input": "init",
    "_cross_to_crosser": "init",
    "_list_adaptable_preprocessors": "adapt",
    "_preprocess_features": "call",
    "_merge_features": "call",
}


@pytest.mark.parametrize("hook", sorted(ki.FEATURE_SPACE_HOOKS))
def test_feature_space_calls_the_hook(hook):
    calls = []
    data = {"a": np.array(["x", "y"]), "b": np.array(["u", "v"]), "n": np.array([1.0, 2.0])}
    space = spy_feature_space(calls)(
        {"a": "string_categorical", "b": "string_categorical", "n": "float_normalized"},
        crosses=[("a", "b")],
    )
    stage = HOOK_CALLED_BY[hook]
    if stage != "init":
        calls.clear()
        space.adapt(tf.data.Dataset.from_tensor_slices(data))
    if stage == "call":
        calls.clear()
        assert space(data).shape == (2, 32 + 3 + 3 + 1)
    assert hook in calls, f"keras' FeatureSpace no longer calls {hook}() on {stage}"


def test_kdp_beam_overrides_no_keras_private_method_but_the_hooks():
    ours = {n for n in vars(kdp_beam.FeatureSpace) if n.startswith("_") and not n.startswith("__")}
    overridden = {n for n in ours if hasattr(FS, n)}
    assert overridden == set(ki.FEATURE_SPACE_HOOKS)


class NeverAdapted(keras.layers.Layer):
    def adapt(self, data):
        raise AssertionError("adapted")

    def call(self, x):
        return x


def test_keras_adaptable_is_keras_rule():
    space = kdp_beam.FeatureSpace(
        {
            "n": FS.float_normalized(),
            "given": FS.feature("float32", keras.layers.Normalization(mean=0.0, variance=1.0), "float"),
            "s": FS.string_categorical(),
            "t": FS.feature(
                "string", keras.layers.TextVectorization(vocabulary=["a"], output_mode="multi_hot"), "float"
            ),
            "f": FS.float(),
            "c": FS.feature("float32", NeverAdapted(), "float"),
        }
    )
    assert sorted(ki.keras_adaptable(space)) == ["c", "n", "s"]


def test_keras_adapt_adapts_only_what_the_hook_lists_and_then_marks_the_space_adapted():
    """What FeatureSpace._adapt_the_keras_way relies on: with the hook listing nothing,
    keras' adapt reads no data, adapts no layer, and leaves the space adapted and built."""
    space = kdp_beam.FeatureSpace({"c": FS.feature("float32", NeverAdapted(), "float")})
    with pytest.raises(ValueError, match="adapt"):
        space.get_inputs()
    space._adapt_the_keras_way(tf.data.Dataset.range(0), [])
    assert space.built
    assert space.get_inputs()["c"].shape == (None, 1)
    np.testing.assert_array_equal(np.asarray(space({"c": np.array([2.0])})), [[2.0]])


# --- layers that take their input as given -------------------------------------------------


class Echo(keras.layers.Layer):
    def __init__(self, as_given, **kwargs):
        super().__init__(**kwargs)
        if as_given:
            ki.take_inputs_as_given(self)

    def call(self, x):
        return tf.convert_to_tensor(x)


def test_take_inputs_as_given_is_what_keras_preprocessing_layers_set():
    for layer in (keras.layers.StringLookup(), keras.layers.Hashing(num_bins=2)):
        assert layer._convert_input_args is False
        assert layer._allow_non_tensor_positional_args is True
    plain = keras.layers.Layer()
    assert (plain._convert_input_args, plain._allow_non_tensor_positional_args) == (True, False)


def test_take_inputs_as_given_keeps_dtypes_and_takes_lists():
    float64 = tf.constant([[1.5]], dtype=tf.float64)
    assert Echo(as_given=False)(float64).dtype == tf.float32  # keras' autocast
    assert Echo(as_given=True)(float64).dtype == tf.float64
    with pytest.raises(ValueError, match="positional"):
        Echo(as_given=False)(["2024-05-17"])
    assert Echo(as_given=True)(["2024-05-17"]).dtype == tf.string
    filled = FillMissing(0.5)(tf.constant([[np.nan], [2.0]], dtype=tf.float64))
    assert filled.dtype == tf.float64
    np.testing.assert_array_equal(filled.numpy(), [[0.5], [2.0]])
    assert DateEncoding(components=["month"])(["2024-01-01"]).shape == (1, 2)


# --- options and vocabularies through get_config / from_config -----------------------------


def upper(x):
    return tf.strings.upper(x)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"max_tokens": 7, "output_mode": "int", "output_sequence_length": 4, "ngrams": 2},
        {"standardize": None, "split": None, "ngrams": (1, 3), "output_mode": "count"},
        {"standardize": upper, "output_mode": "tf_idf", "max_tokens": 9},
    ],
)
def test_text_vectorization_options_are_the_constructor_arguments(options):
    layer = TextVectorization(**options)
    defaults = {
        "max_tokens": None,
        "standardize": "lower_and_strip_punctuation",
        "split": "whitespace",
        "ngrams": None,
        "output_mode": "int",
        "output_sequence_length": None,
        "pad_to_max_tokens": False,
        "sparse": False,
        "ragged": False,
        "encoding": "utf-8",
    }
    assert ki.text_vectorization_options(layer) == {**defaults, **options}


def save_and_load(layer, tmp_path, dtype):
    inputs = keras.Input(shape=(1,), dtype=dtype, name="x")
    keras.Model(inputs, layer(inputs)).save(tmp_path / "m.keras")
    return keras.models.load_model(tmp_path / "m.keras").get_layer(layer.name)


TOKENS = ["a\nb", "", " ", "c\r\n", "c"]


@pytest.mark.parametrize(
    "make, vocabulary, inputs",
    [
        (lambda: keras.layers.StringLookup(name="lk"), TOKENS, [["a\nb"], [""], ["c"], ["?"]]),
        (lambda: keras.layers.StringLookup(output_mode="multi_hot", name="lk"), TOKENS, [["c\r\n"], [""]]),
        (lambda: keras.layers.IntegerLookup(name="lk"), [7, -1, 2**40], [[2**40], [-1], [3]]),
        (
            lambda: TextVectorization(standardize=None, split=None, output_mode="multi_hot", name="lk"),
            ["a\nb", " ", "c\r\n"],
            [["a\nb"], ["c\r\n"], ["zz"]],
        ),
        (lambda: TextVectorization(output_mode="int", output_sequence_length=3, name="lk"), ["b", "a"], [["a b c"]]),
    ],
)
def test_with_vocabulary_encodes_as_set_vocabulary_and_keeps_every_token_saved(make, vocabulary, inputs, tmp_path):
    reference = make()
    reference.set_vocabulary(vocabulary)
    layer = ki.with_vocabulary(make(), vocabulary)
    assert (type(layer), layer.name) == (type(reference), "lk")
    assert layer.get_vocabulary() == reference.get_vocabulary()
    dtype = "int64" if isinstance(layer, keras.layers.IntegerLookup) else "string"
    x = tf.constant(inputs, dtype=dtype)
    np.testing.assert_array_equal(np.asarray(layer(x)), np.asarray(reference(x)))
    loaded = save_and_load(layer, tmp_path, dtype)
    assert loaded.get_vocabulary() == reference.get_vocabulary()
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(reference(x)))


def test_with_vocabulary_keeps_tf_idf_weights_saved(tmp_path):
    def make():
        return TextVectorization(output_mode="tf_idf", ngrams=2, name="lk")

    vocabulary, weights = ["a", "b", "a b"], np.array([0.5, 1.25, 2.0], dtype=np.float32)
    reference = make()
    reference.set_vocabulary(vocabulary, idf_weights=weights)
    layer = ki.with_vocabulary(make(), vocabulary, idf_weights=weights)
    x = tf.constant([["a b b"], ["c"]])
    np.testing.assert_allclose(np.asarray(layer(x)), np.asarray(reference(x)), rtol=1e-6)
    loaded = save_and_load(layer, tmp_path, "string")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(reference(x)), rtol=1e-6)
    assert ki.text_vectorization_options(loaded) == ki.text_vectorization_options(reference)


# --- no private keras name elsewhere ---------------------------------------------------------

def keras_private_names():
    """The private names of the keras objects kdp_beam handles."""
    objects = [
        keras.layers.Layer(),
        FS({"x": "float"}),
        FS.float(name="k3"),
        keras.layers.TextVectorization(),
        keras.layers.StringLookup(),
        keras.layers.IntegerLookup(),
        keras.layers.Normalization(),
        keras.layers.Discretization(num_bins=2),
        keras.layers.Hashing(num_bins=2),
        keras.layers.HashedCrossing(num_bins=2),
        keras.layers.CategoryEncoding(num_tokens=2),
        keras.layers.Rescaling(1.0),
    ]
    return {n for o in objects for n in dir(o) if n.startswith("_") and not n.startswith("__")}


def keras_modules():
    """kdp_beam's modules that use keras, but keras_internals: path -> parsed source."""
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if path.name != "keras_internals.py" and ("import keras" in source or "from keras" in source):
            yield path.relative_to(PACKAGE).as_posix(), source


def test_no_private_keras_use_outside_keras_internals():
    """The rule keras_internals exists for: elsewhere, no keras.src import and no private
    keras name, except the hooks FEATURE_SPACE_HOOKS lists."""
    modules = dict(keras_modules())
    assert "builder/feature_space.py" in modules and "builder/layers.py" in modules
    trees = {path: ast.parse(source) for path, source in modules.items()}
    ours = set()  # the private names kdp_beam itself defines
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                ours.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                ours.add(node.attr)
    keras_names = keras_private_names()
    found = []
    for path, tree in trees.items():
        allowed = set(ki.FEATURE_SPACE_HOOKS)
        if "keras.src" in modules[path] and "keras.src" not in allowed:
            found.append(f"{path}: imports keras.src")
        for node in ast.walk(tree):
            name = getattr(node, "attr", "")
            if not (isinstance(node, ast.Attribute) and name.startswith("_")) or name.startswith("__"):
                continue
            if name not in allowed and (name in keras_names or name not in ours):
                found.append(f"{path}:{node.lineno}: .{name}")
    assert not found, "private keras use outside keras_internals: " + ", ".join(found)
