"""Feature types are units: every built-in type is declared, analysed, checked against a
bundle and converted to and from keras through the same interface, and compatibility is
decided by each type's own options."""

import pyarrow as pa
import pytest

import kdp_beam
from kdp_beam import spec as kspec
from kdp_beam.analyzers import analyze_batches
from kdp_beam.builder.declarations import check_compatible, declaration_of, keras_feature
from kdp_beam.errors import BundleError
from kdp_beam.feature_types import registered_types
from kdp_beam.spec import Feature, FeatureSpec

# Per built-in type: a declaration, and for each of its options a change of it (with what
# the change needs). A type that gains an option fails test_every_option_is_covered until
# the option is given here, and so is either compared or shown not to change statistics.
BASE = {
    "float": {},
    "float_rescaled": {},
    "float_normalized": {},
    "float_discretized": {"num_bins": 4},
    "integer_categorical": {"max_tokens": 10},
    "string_categorical": {"max_tokens": 10},
    "string_hashed": {"num_bins": 8},
    "integer_hashed": {"num_bins": 8},
    "passthrough": {"dtype": "int64"},
    "text": {},
    "date": {},
}


def on_lists(change):
    """A change of an option that applies to a list of values per row: (the declaration
    made multivalent, the change made to it)."""
    return {"multivalent": True}, change


# A list per row: its options, on the categorical, hashed (_CATEGORIES) and number types.
_CATEGORIES = {
    "multivalent": {"multivalent": True},
    "separator": on_lists({"separator": ","}),
    "sequence_length": on_lists({"output_mode": "int", "sequence_length": 4}),
}
_NUMBER = {
    "fill_value": {"fill_value": 1.5},
    "missing_indicator": {"missing_indicator": True},
    "multivalent": {"multivalent": True},
    "separator": on_lists({"separator": ","}),
    "sequence_length": on_lists({"pooling": None, "sequence_length": 4}),
    "pooling": on_lists({"pooling": "max"}),
}
def on_target(change):
    """A change of an encoding option of output_mode "target": (the declaration made a
    target encoding, the change made to it)."""
    return {"output_mode": "target"}, change


_LOOKUP = {
    "max_tokens": {"max_tokens": 5},
    "num_oov_indices": {"num_oov_indices": 2},
    "output_mode": {"output_mode": "int"},
    "counting": {"counting": "approximate"},
    "rank_by": {"rank_by": "mutual_information"},
    "folds": {"folds": 3},
    "smoothing": on_target({"smoothing": 2.5}),
    "min_count": on_target({"min_count": 4}),
    "with_count": on_target({"with_count": True}),
    **_CATEGORIES,
}
_HASHED = {"num_bins": {"num_bins": 4}, "output_mode": {"output_mode": "int"}, **_CATEGORIES}
CHANGES = {
    "float": _NUMBER,
    "float_rescaled": {"scale": {"scale": 2.0}, "offset": {"offset": 1.0}, **_NUMBER},
    "float_normalized": _NUMBER,
    "float_discretized": {
        "num_bins": {"num_bins": 3},
        "bin_boundaries": {"num_bins": None, "bin_boundaries": [0.0, 2.0]},
        "output_mode": {"output_mode": "int"},
        **_NUMBER,
    },
    "integer_categorical": {**_LOOKUP, "missing_token": {"missing_token": 7}, "pad_value": on_lists({"pad_value": 0})},
    "string_categorical": {**_LOOKUP, "missing_token": {"missing_token": "zz"}},
    "string_hashed": _HASHED,
    "integer_hashed": {**_HASHED, "pad_value": on_lists({"pad_value": 0})},
    "passthrough": {"dtype": {"dtype": "int32"}},
    "text": {
        "max_tokens": {"max_tokens": 50},
        "output_mode": {"output_mode": "count"},
        "ngrams": {"ngrams": 2},
        "sequence_length": {"output_mode": "int", "sequence_length": 4},
        "standardize": {"standardize": "lower"},
        "split": {"split": None},
    },
    "date": {
        "format": {"format": "%Y-%m-%d"},
        "components": {"components": ["year"]},
        "missing_indicator": {"missing_indicator": True},
    },
}
COLUMNS = {
    "float": pa.array([1.0, 2.5, None, 4.0, 2.5, float("nan")]),
    "integer": pa.array([1, 2, 2, None, 7, 1]),
    "string": pa.array(["a b", "b", None, "a", "", "c a"]),
    "date": pa.array(["2024-01-02", "1999-12-31", None, "2024-01-02", "bad", "2000-02-29"]),
    "list<float>": pa.array([[1.0, 2.5], [], [None, 4.0, float("nan")], [2.5], [7.0, 1.0, 1.0]], pa.list_(pa.float64())),
    "list<integer>": pa.array([[1, 2, 2], [], [None, 7], [1], [2, 2]], pa.list_(pa.int64())),
    "list<string>": pa.array([["a", "b"], [], ["b", None, "c"], ["a", "a"], ["c"]], pa.list_(pa.string())),
}
BUILT_IN = [kind for kind in registered_types() if kind.name in BASE]


def test_every_built_in_type_and_option_is_covered():
    assert sorted(k.name for k in BUILT_IN) == sorted(BASE)
    for kind in BUILT_IN:
        assert sorted(CHANGES[kind.name]) == sorted(kind.options), kind.name


def _cases():
    for kind in BUILT_IN:
        for option, change in CHANGES[kind.name].items():
            on, change = change if isinstance(change, tuple) else ({}, change)
            yield pytest.param(kind, option, on, change, id=f"{kind.name}.{option}")


@pytest.mark.parametrize("kind, option, on, change", _cases())
def test_an_option_is_compared_unless_the_statistics_do_not_depend_on_it(kind, option, on, change):
    bundle = Feature(kind.name, **{**BASE[kind.name], **on})
    code = Feature(kind.name, **{**BASE[kind.name], **on, **change})
    bundle_spec = FeatureSpec({"x": bundle}, label="y")  # a label: label-aware options too
    if option in kind.encoding_options:
        check_compatible("x", code, bundle_spec, "the bundle")  # accepted ...
        column = COLUMNS[bundle.read_kind]
        labels = ["1", "0", None, "1", "1", "0"][: len(column)]
        batch = pa.record_batch({"x": column, "y": labels})
        analysed = analyze_batches(bundle_spec, [batch])["features"]["x"]
        # ... because the same data gives the same statistics under either declaration.
        assert analyze_batches(FeatureSpec({"x": code}, label="y"), [batch])["features"]["x"] == analysed
    else:
        changed = "|".join(change)  # the first compared option that differs is named
        with pytest.raises(BundleError, match=f"feature 'x': ({changed})="):
            check_compatible("x", code, bundle_spec, "the bundle")


def test_an_approximate_bundle_is_refused_by_code_that_counts_exactly(tmp_path):
    """The drift this design makes impossible: counting was missing from one list."""
    bundle_spec = FeatureSpec({"city": {"type": "string_categorical", "max_tokens": 10, "counting": "approximate"}})
    code = kdp_beam.FeatureSpace.string_categorical(max_tokens=10)
    with pytest.raises(BundleError, match="counting='exact' here.*counting='approximate'"):
        check_compatible("city", declaration_of("city", code), bundle_spec, "b")
    approximate = kdp_beam.FeatureSpace.string_categorical(max_tokens=10, counting="approximate")
    check_compatible("city", declaration_of("city", approximate), bundle_spec, "b")


@pytest.mark.parametrize("kind", BUILT_IN, ids=lambda k: k.name)
def test_each_type_has_its_constructors_and_round_trips_through_keras(kind):
    declared = Feature(kind.name, **BASE[kind.name])
    assert Feature(**{**declared.to_json()}) == declared  # to_json is the declaration
    assert getattr(kspec, kind.name)(**BASE[kind.name]) == declared
    made = getattr(kdp_beam.FeatureSpace, kind.name)(**BASE[kind.name])
    assert declaration_of("x", made) == declared
    record = keras_feature(kdp_beam.FeatureSpace, "x", declared)
    assert declaration_of("x", record) == declared
    # Without kdp_beam's declaration on the record (keras made it, or an old saved model),
    # the type still recognises its preprocessor: every option keras can hold comes back.
    record.declaration = None
    recognised = declaration_of("x", record)
    assert recognised is not None and recognised.type in (kind.name, "float")
    if recognised.type == kind.name:
        assert recognised.options == declared.options


def test_bare_names_take_the_spec_sizes():
    spec = FeatureSpec(
        {"h": "string_hashed", "d": "float_discretized"}, hashing_dim=16, num_discretization_bins=5
    )
    assert spec.features["h"].options["num_bins"] == 16 and spec.features["d"].options["num_bins"] == 5
    fs = kdp_beam.FeatureSpace({"h": "string_hashed", "d": "float_discretized"}, hashing_dim=16, num_discretization_bins=5)
    assert fs.preprocessors["h"].num_bins == 16 and fs.preprocessors["d"].num_bins == 5


def test_a_type_is_named_only_in_its_own_unit():
    """Nothing outside kdp_beam/feature_types/<unit>.py spells a built-in type's name (the
    common words float, text and date aside) but the registry's list of built-in units:
    the rest of kdp_beam asks the registry."""
    import pathlib
    import re

    root = pathlib.Path(kdp_beam.__file__).parent
    for kind in BUILT_IN:
        if kind.name in ("float", "text", "date"):
            continue
        unit = pathlib.Path(__import__(type(kind).__module__, fromlist=["_"]).__file__)
        found = [
            str(path.relative_to(root))
            for path in root.rglob("*.py")
            if path not in (unit, root / "feature_types" / "__init__.py") and re.search(rf"\b{kind.name}\b", path.read_text())
        ]
        assert found == [], (kind.name, found)


def test_numpy_option_values_are_taken_as_keras_takes_them():
    """keras.utils.FeatureSpace.float_discretized(np.int64(4)) works; kdp_beam refused it
    ("num_bins must be a JSON value (finite numbers), got np.int64(4)")."""
    import keras
    import numpy as np
    import tensorflow as tf

    assert Feature("float_discretized", num_bins=np.int64(4)) == Feature("float_discretized", num_bins=4)
    boundaries = Feature("float_discretized", bin_boundaries=np.array([0.5, 2.0], dtype=np.float32))
    assert boundaries.to_json()["bin_boundaries"] == [0.5, 2.0]
    assert type(boundaries.to_json()["bin_boundaries"][0]) is float
    assert Feature("text", ngrams=[np.int32(1), np.int32(2)]).options["ngrams"] == [1, 2]
    values = np.random.default_rng(3).normal(size=400)
    data = {"x": values, "h": np.array([f"t{i % 37}" for i in range(400)])}

    def features(cls):
        return {"x": cls.float_discretized(np.int64(4)), "h": cls.string_hashed(np.int64(16))}

    reference = keras.utils.FeatureSpace(features(keras.utils.FeatureSpace), output_mode="dict")
    reference.adapt(tf.data.Dataset.from_tensor_slices(data).batch(100))
    ours = kdp_beam.FeatureSpace(features(kdp_beam.FeatureSpace), output_mode="dict")
    ours.adapt(data)
    np.testing.assert_array_equal(np.asarray(ours(data)["h"]), np.asarray(reference(data)["h"]))
    assert np.asarray(ours(data)["x"]).shape == np.asarray(reference(data)["x"]).shape == (400, 4)
    # Equal-frequency bins from the exact quantiles (keras' adapt approximates them).
    np.testing.assert_allclose(ours.preprocessors["x"].bin_boundaries, np.quantile(values, [0.25, 0.5, 0.75]), atol=0.02)
