"""Every features JSON either builds a spec or is refused with a SpecError that says where
and what is accepted: wrong shapes, absurd sizes, numbers the model cannot hold."""

import copy
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import kdp_beam.plugins.robust_scaler  # noqa: F401 - registers "robust_scaler"
from kdp_beam import spec
from kdp_beam.cli import main
from kdp_beam.errors import SpecError
from kdp_beam.feature_types import categorical, numeric, options, registered_types
from kdp_beam.feature_types import text as text_type
from kdp_beam.spec import FeatureSpec

# A valid spec with every feature type, option family and cross form.
VALID = {
    "features": {
        "f": "float",
        "r": {"type": "float_rescaled", "scale": 2.0, "offset": -1},
        "n": {"type": "float_normalized", "fill_value": 0.5, "missing_indicator": True},
        "d": {"type": "float_discretized", "num_bins": 8},
        "b": {"type": "float_discretized", "bin_boundaries": [0, 1.5, 3], "output_mode": "int"},
        "ic": {"type": "integer_categorical", "max_tokens": 10, "missing_token": 0},
        "sc": {"type": "string_categorical", "max_tokens": 100, "counting": "approximate"},
        "sh": {"type": "string_hashed", "num_bins": 16},
        "ih": "integer_hashed",
        "p": {"type": "passthrough", "dtype": "int64"},
        "t": {"type": "text", "max_tokens": 50, "ngrams": [1, 2], "output_mode": "tf_idf"},
        "ti": {"type": "text", "output_mode": "int", "sequence_length": 8, "standardize": None},
        "dt": {"type": "date", "format": "%Y-%m-%d", "components": ["year", "month"]},
        "c": {"type": "custom", "statistic": "robust_scaler", "options": {}},
    },
    "crosses": [{"feature_names": ["sc", "ic"], "crossing_dim": 8}, ["sh", "p"]],
    "output_mode": "dict",
    "crossing_dim": 16,
    "hashing_dim": 8,
    "num_discretization_bins": 4,
    "profile": False,
    "notes": "people's notes",
}

OPTION_NAMES = sorted({o for kind in registered_types() for o in kind.options})
KEYS = ["type", "feature_names", "statistic", "options", *OPTION_NAMES, *VALID]
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([0, -1, 1, 2, 3, 2**31, 2**63, 10**12, -(10**30)])
    | st.floats()
    | st.sampled_from([math.nan, math.inf, -math.inf, 1e300, 3.5e38, 1.5])
    | st.sampled_from(sorted(kind.name for kind in registered_types()) + KEYS + ["one_hot", "int", "dict", "exact"])
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


def _paths(value, path=()):
    """Every place in a JSON value: (path to the container, key or index) pairs."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield path, key
        yield from _paths(child, (*path, key))


VALID_PATHS = list(_paths(VALID))


@st.composite
def mutated_specs(draw):
    """VALID with up to four places replaced, removed, or given a new key."""
    obj = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 4))):
        path, key = draw(st.sampled_from(VALID_PATHS))
        container = obj
        try:
            for step in path:
                container = container[step]
            action = draw(st.sampled_from(["replace", "remove", "add"]))
            if action == "replace":
                container[key] = draw(json_values)
            elif action == "remove":
                del container[key]
            elif isinstance(container, dict):
                container[draw(st.sampled_from(KEYS))] = draw(json_values)
            else:
                container.append(draw(json_values))
        except (KeyError, IndexError, TypeError, AttributeError):
            continue  # an earlier mutation removed or replaced this place
    return obj


def _builds_or_refuses(obj):
    try:
        built = FeatureSpec.from_json(obj)
    except SpecError as e:
        assert str(e)  # says something
        return None
    # What is accepted survives the bundle's strict JSON unchanged.
    text = json.dumps(built.to_json(), allow_nan=False)
    assert FeatureSpec.from_json_text(text) == built
    return built


@given(json_values)
def test_any_json_value_builds_or_raises_spec_error(obj):
    _builds_or_refuses(obj)
    _builds_or_refuses({"features": obj})
    _builds_or_refuses({"features": {"x": obj}})
    _builds_or_refuses({"features": {"x": "string_categorical", "y": "string_hashed"}, "crosses": obj})


@given(mutated_specs())
def test_mutated_valid_specs_build_or_raise_spec_error(obj):
    _builds_or_refuses(obj)


def test_the_valid_spec_builds():
    assert _builds_or_refuses(copy.deepcopy(VALID)) is not None


@pytest.mark.parametrize(
    "obj, words",
    [
        ({"features": [{"a": "float"}]}, ["features must be an object", "list"]),
        ({"features": {"a": ["float"]}}, ["feature 'a'", 'a "type" key']),
        ({"features": {"a": {"type": ["x"]}}}, ["feature 'a'", "unknown feature type", "float_normalized"]),
        ({"features": {"a": "float"}, "crosses": 3}, ["crosses must be a list"]),
        ({"features": {"a": "string_hashed", "b": "string_hashed"}, "crosses": [{"feature_names": ["a", "b"], "x": 1}]},
         ["crosses[0]", "'feature_names', 'crossing_dim', 'output_mode'", "'x'"]),
        ({"features": {"a": "string_hashed", "b": "string_hashed"}, "crosses": ["ab"]},
         ["crosses[0]", "feature_names must be a list", "'ab'"]),
        ({"features": {"a": "string_hashed", "b": "float"}, "crosses": [["a", "b"]]},
         ["crosses[0]", "cannot cross ['b']", "float"]),
        ({"features": {"a": "string_hashed", "b": "string_hashed"}, "crosses": [["a", "b"], ["a", "b"]]},
         ["crosses[1]", "'a_X_b'", "another cross"]),
        ({"features": {"a": {"type": "passthrough", "dtype": ["x"]}}}, ["feature 'a'", "dtype must be one of", "int64"]),
        ({"features": {"a": {"type": "float_discretized", "num_bins": "5"}}}, ["feature 'a'", "num_bins", "'5'"]),
        ({"features": {"a": {"type": "float_discretized", "bin_boundaries": 3}}}, ["feature 'a'", "bin_boundaries"]),
        ({"features": {"a": {"type": "date", "components": 3}}}, ["feature 'a'", "components"]),
        ({"features": {"a": {"type": "custom", "statistic": "robust_scaler", "options": {"epsilon": math.nan}}}}, ["feature 'a'", "epsilon"]),
            ({"features": {"a": {"type": "robust_scaler", "epsilon": [math.inf]}}}, ["feature 'a'", "epsilon", "JSON"]),
        ({"features": {"a": "float"}, "hashing_dim": "8"}, ["hashing_dim", "'8'"]),
        ({"features": {"a": "string_hashed"}, "hashing_dim": None}, ["feature 'a'", "hashing_dim"]),
    ],
)
def test_wrong_shapes_name_the_place_and_what_is_accepted(obj, words):
    with pytest.raises(SpecError) as error:
        FeatureSpec.from_json(obj)
    for word in words:
        assert word in str(error.value)


def test_a_key_given_twice_and_deep_nesting_are_refused_in_the_text():
    with pytest.raises(SpecError, match=r"f.json: key\(s\) \['a'\] appear twice"):
        FeatureSpec.from_json_text('{"features": {"a": "float", "a": "text"}}', source="f.json")
    with pytest.raises(SpecError, match="nested too deeply"):
        FeatureSpec.from_json_text('{"features": ' + "[" * 100_000 + "]" * 100_000 + "}")


# --- sizes: each bounded argument, at its bound and just past it ---------------------------

def _declaration(type_, **options):
    return {"features": {"col": {"type": type_, **options}}}


SIZES = [
    # (declaration at the bound, the argument, its bound)
    (lambda v: _declaration("float_discretized", num_bins=v), "num_bins", numeric.MAX_QUANTILE_BINS),
    (lambda v: _declaration("float_discretized", bin_boundaries=list(range(v - 1))), "bin_boundaries", options.MAX_ENCODED_WIDTH),
    (lambda v: _declaration("string_hashed", num_bins=v), "num_bins", options.MAX_ENCODED_WIDTH),
    (lambda v: _declaration("integer_hashed", num_bins=v, output_mode="int"), "num_bins", options.MAX_INDEX),
    (lambda v: _declaration("string_categorical", max_tokens=v), "max_tokens", options.MAX_ENCODED_WIDTH),
    (lambda v: _declaration("integer_categorical", max_tokens=v, output_mode="int"), "max_tokens", options.MAX_INDEX),
    (lambda v: _declaration("string_categorical", max_tokens=v, output_mode="int", counting="approximate"),
     "max_tokens", categorical.MAX_APPROXIMATE_TOKENS),
    (lambda v: _declaration("string_categorical", num_oov_indices=v), "num_oov_indices", options.MAX_ENCODED_WIDTH),
    (lambda v: _declaration("text", max_tokens=v), "max_tokens", options.MAX_ENCODED_WIDTH),
    (lambda v: _declaration("text", max_tokens=v, output_mode="int", sequence_length=4), "max_tokens", options.MAX_INDEX),
    (lambda v: _declaration("text", output_mode="int", sequence_length=v), "sequence_length", options.MAX_ENCODED_WIDTH),
    (lambda v: _declaration("text", ngrams=v), "ngrams", text_type.MAX_NGRAM),
    (lambda v: _declaration("text", ngrams=[1, v]), "ngrams", text_type.MAX_NGRAM),
    (lambda v: {"features": {"a": "string_hashed", "b": "string_hashed"},
                "crosses": [{"feature_names": ["a", "b"], "crossing_dim": v}]}, "crossing_dim", options.MAX_ENCODED_WIDTH),
    (lambda v: {"features": {"a": "string_hashed", "b": "string_hashed"},
                "crosses": [{"feature_names": ["a", "b"], "crossing_dim": v, "output_mode": "int"}]},
     "crossing_dim", options.MAX_INDEX),
    (lambda v: {"features": {"a": "string_hashed", "b": "string_hashed"}, "crossing_dim": v,
                "crosses": [["a", "b"]]}, "crossing_dim", options.MAX_ENCODED_WIDTH),
    (lambda v: {"features": {"col": "string_hashed"}, "hashing_dim": v}, "hashing_dim", options.MAX_ENCODED_WIDTH),
    (lambda v: {"features": {"col": "float_discretized"}, "num_discretization_bins": v},
     "num_discretization_bins", numeric.MAX_QUANTILE_BINS),
]


@pytest.mark.parametrize("make, argument, bound", SIZES, ids=[f"{i}-{s[1]}" for i, s in enumerate(SIZES)])
def test_sizes_are_accepted_up_to_their_bound_and_refused_past_it(make, argument, bound):
    if argument != "bin_boundaries":  # a million-entry list: only past the bound
        FeatureSpec.from_json(make(bound))
    for absurd in {bound + 1, 10**12} - ({10**12} if argument == "bin_boundaries" else set()):
        with pytest.raises(SpecError) as error:
            FeatureSpec.from_json(make(absurd))
        message = str(error.value)
        assert argument.split("_dim")[0] in message
        assert ("feature 'col'" in message) or ("crosses[0]" in message)
        assert f"{bound:,}" in message or argument == "bin_boundaries"


def test_the_bounds_are_what_the_analysis_can_compute():
    from tfx_bsl.sketches import MisraGriesSketch

    from kdp_beam.feature_types.categorical import APPROXIMATE_BUCKETS_PER_TOKEN
    from kdp_beam.analyzers.quantiles import DEFAULT_EPSILON

    # Finer bins than the sketch's rank error would be its noise.
    assert numeric.MAX_QUANTILE_BINS == round(1 / DEFAULT_EPSILON)
    # The approximate count's sketch at its largest works (past ~2**28 buckets tfx_bsl aborts).
    buckets = APPROXIMATE_BUCKETS_PER_TOKEN * categorical.MAX_APPROXIMATE_TOKENS
    assert buckets < 2**28
    MisraGriesSketch(buckets).AddValues(__import__("pyarrow").array(["a"]))


# --- numbers: what the model's float32 cannot hold ---------------------------------------

@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e39, pytest.param(-(10**400), id="-10**400")])
@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda v: _declaration("float_normalized", fill_value=v), "fill_value"),
        (lambda v: _declaration("float", fill_value=v), "fill_value"),
        (lambda v: _declaration("float_discretized", num_bins=3, fill_value=v), "fill_value"),
        (lambda v: _declaration("float_rescaled", scale=v), "scale"),
        (lambda v: _declaration("float_rescaled", offset=v), "offset"),
        (lambda v: _declaration("float_discretized", bin_boundaries=[0.0, v]), "bin_boundaries"),
    ],
)
def test_numbers_the_model_cannot_hold_are_refused(make, argument, value):
    with pytest.raises(SpecError) as error:
        FeatureSpec.from_json(make(value))
    assert "feature 'col'" in str(error.value) and argument in str(error.value)
    assert "finite number" in str(error.value)


@pytest.mark.parametrize("boundaries", [[1.0, 1.0], [0.0, 2.0, 1.0], [1.0, 1.0 + 1e-9]])
def test_bin_boundaries_must_increase_strictly_in_float32(boundaries):
    with pytest.raises(SpecError, match="increase strictly"):
        FeatureSpec.from_json(_declaration("float_discretized", bin_boundaries=boundaries))


def test_integer_missing_token_must_fit_int64():
    with pytest.raises(SpecError, match="missing_token"):
        FeatureSpec.from_json(_declaration("integer_categorical", missing_token=2**63))
    FeatureSpec.from_json(_declaration("integer_categorical", missing_token=-(2**63)))


def test_refused_before_the_job_reads_anything(tmp_path, capsys):
    """An absurd declaration stops `analyze` with one line naming the feature and the
    argument, before any output exists."""
    data = tmp_path / "d.csv"
    data.write_text("x\n1.5\n2.5\n")
    for i, declaration in enumerate(
        [{"type": "float_normalized", "fill_value": math.nan}, {"type": "float_discretized", "num_bins": 10**12}]
    ):
        features = tmp_path / f"f{i}.json"
        features.write_text(json.dumps({"features": {"x": declaration}}))  # NaN as JSON's NaN
        out = tmp_path / f"out{i}"
        code = main(["analyze", "--features", str(features), "--input", str(data), "--output", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2
        assert err[-1].startswith("kdp-beam: error:") and "feature 'x'" in err[-1]
        assert ("fill_value" in err[-1]) if i == 0 else ("num_bins" in err[-1])
        assert not out.exists()
