import json

import pytest

from kdp_beam import spec
from kdp_beam.errors import SpecError
from kdp_beam.spec import FeatureSpec


def test_bare_strings_take_featurespace_defaults():
    s = FeatureSpec(
        {"a": "float_discretized", "b": "string_hashed", "c": "integer_categorical"},
        hashing_dim=7,
        num_discretization_bins=5,
    )
    assert s.features["a"] == spec.float_discretized(num_bins=5)
    assert s.features["b"] == spec.string_hashed(7)
    assert s.features["c"].options == {
        "max_tokens": None, "num_oov_indices": 1, "output_mode": "one_hot", "missing_token": None,
        "counting": "exact", "multivalent": False, "separator": "|", "sequence_length": None, "pad_value": -1,
        "smoothing": 10.0, "min_count": 1, "with_count": False, "rank_by": "frequency", "folds": None,
    }


def test_json_round_trip_is_exact():
    s = FeatureSpec(
        {
            "age": "float_normalized",
            "x": spec.float_rescaled(scale=2.5, offset=-1),
            "fixed": spec.float_discretized(bin_boundaries=[0, 1.5, 3]),
            "city": {"type": "string_categorical", "max_tokens": 100, "output_mode": "int"},
            "id": spec.integer_hashed(16),
            "raw": spec.passthrough("int64"),
        },
        crosses=[("city", "id")],
        crossing_dim=64,
        output_mode="dict",
    )
    again = FeatureSpec.from_json_text(json.dumps(s.to_json()))
    assert again == s
    assert again.to_json() == s.to_json()
    assert again.crosses[0].crossing_dim == 64
    assert again.features["raw"].column_kind == "integer"


@pytest.mark.parametrize(
    "declaration, words",
    [
        ({"type": "float_discretized"}, ["'f'", "num_bins or bin_boundaries"]),
        ({"type": "string_categorical", "max_tokens": 1}, ["'f'", "max_tokens"]),
        ({"type": "string_categorical", "num_oov_indices": -1}, ["num_oov_indices"]),
        ({"type": "string_hashed"}, ["'f'", "num_bins", "required"]),
        ({"type": "float_normalized", "mean": 3}, ["'f'", "unknown argument", "mean"]),
        ({"type": "float_rescaled", "scale": "big"}, ["scale"]),
        ({"type": "string_categorical", "output_mode": "multi_hot"}, ["output_mode"]),
        ({"type": "passthrough", "dtype": "complex64"}, ["dtype"]),
        ("float_normalised", ["'f'", "unknown feature type"]),
        (42, ["'f'", "type string"]),
    ],
)
def test_invalid_declarations_name_the_feature_and_argument(declaration, words):
    with pytest.raises(SpecError) as error:
        FeatureSpec({"f": declaration})
    for word in words:
        assert word in str(error.value)


def test_cross_of_unknown_feature_and_bad_json_are_reported():
    with pytest.raises(SpecError, match="unknown feature"):
        FeatureSpec({"a": "string_categorical"}, crosses=[("a", "b")])
    with pytest.raises(SpecError, match="not valid JSON"):
        FeatureSpec.from_json_text("{", source="f.json")
    with pytest.raises(SpecError, match="top-level"):
        FeatureSpec.from_json({"features": {"a": "float"}, "extra": 1})
