"""Calling a FeatureSpace (or adapting one in memory) with the wrong values fails with an
InputDataError naming the feature, the dtype it takes, what it got and what to do; never a
bare conversion error, and never a value changed silently (a fraction truncated, a padded
row read as several rows)."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st

import kdp_beam
from kdp_beam.errors import InputDataError

FS = kdp_beam.FeatureSpace
GOOD = {"n": [1.0, 2.0], "s": ["a", "b"], "i": [1, 2], "t": ["a b", "c"], "d": ["2020-01-01", None]}


@pytest.fixture(scope="module")
def fs():
    space = FS(
        {
            "n": FS.float_normalized(),
            "s": FS.string_categorical(),
            "i": FS.integer_categorical(missing_token=0),
            "t": FS.text(),
            "d": FS.date(),
        },
        output_mode="dict",
    )
    space.adapt(GOOD)
    return space


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("n", ["abc", 1.0], ["feature 'n'", "float32", "'abc' at row 0", "Pass numbers"]),
        ("n", np.array(["abc", "1"]), ["feature 'n'", "float32", "'abc'"]),
        ("n", np.array([True, False]), ["feature 'n'", "bool", "Convert them to numbers"]),
        ("n", tf.constant(["a", "b"]), ["feature 'n'", "tensor of string", "tf.strings.to_number"]),
        ("s", np.array([1.5, 2.0]), ["feature 's'", "string", "float64", "strings"]),
        ("s", [1, "b"], ["feature 's'", "1 at row 0", "str(x)"]),
        ("i", np.array([1.0, 2.5]), ["feature 'i'", "int64", "2.5 at row 1", "whole numbers"]),
        ("i", [1, 2.5], ["feature 'i'", "2.5 at row 1"]),
        ("i", tf.constant([1.5, 2.0]), ["feature 'i'", "tensor of float32", "tf.cast"]),
        ("i", [2**70, 1], ["feature 'i'", "1180591620717411303424", "int64"]),
        ("i", np.array([2**64 - 1, 1], dtype=np.uint64), ["feature 'i'", "beyond int64"]),
        ("i", ["3", 1], ["feature 'i'", "'3' at row 0"]),
        ("n", np.array([[1.0, 2.0], [3.0, 4.0]]), ["feature 'n'", "shape (2, 2)", "one value per row", "(n, 1)"]),
        ("s", np.zeros((2, 1, 1)).astype(str), ["feature 's'", "shape (2, 1, 1)"]),
        ("t", [["a", "b"], ["c"]], ["feature 't'", "one value per row"]),
        ("n", [1.0, 2.0, 3.0], ["different numbers of rows", "'n': 3", "'s': 2"]),
    ],
)
def test_wrong_values_name_the_feature_dtype_value_and_fix(fs, name, value, words):
    with pytest.raises(InputDataError) as error:
        fs({**GOOD, name: value})
    for word in words:
        assert word in str(error.value)


def test_missing_and_undeclared_keys_are_named(fs):
    with pytest.raises(InputDataError, match=r"missing: \['n'\]"):
        fs({k: v for k, v in GOOD.items() if k != "n"})
    with pytest.raises(InputDataError, match=r"not declared: \['label'\]"):
        fs({**GOOD, "label": [0, 1]})


def test_inside_tf_data_the_error_names_the_feature_too(fs):
    dataset = tf.data.Dataset.from_tensor_slices({**GOOD, "d": ["2020-01-01", ""], "n": ["1", "2"]})
    with pytest.raises(Exception, match="feature 'n' takes number values"):
        list(dataset.batch(2).map(fs))


def test_accepted_forms_encode_as_the_plain_ones(fs):
    """Whole floats and NaN for integers, int tensors for numbers, (n, 1) columns."""
    expected = {k: np.asarray(v) for k, v in fs(GOOD).items()}
    variants = [
        {"i": np.array([1.0, 2.0])},
        {"i": np.array([1, 2], dtype=np.uint8)},
        {"n": tf.constant([1, 2])},
        {"n": np.array([[1.0], [2.0]]), "s": np.array([["a"], ["b"]])},
    ]
    for change in variants:
        for name, value in fs({**GOOD, **change}).items():
            np.testing.assert_array_equal(np.asarray(value), expected[name], err_msg=str(change))
    # NaN or None in an integer feature is missing: the declared missing_token (0), here OOV.
    out = np.asarray(fs({**GOOD, "i": np.array([np.nan, 1.0])})["i"])
    np.testing.assert_array_equal(out, np.asarray(fs({**GOOD, "i": [None, 1]})["i"]))
    np.testing.assert_array_equal(out, np.asarray(fs({**GOOD, "i": [0, 1]})["i"]))


@pytest.mark.parametrize(
    "data, words",
    [
        ({"n": np.array([[1.0, 2.0], [3.0, np.nan]]), "s": ["a", "b"]}, ["feature 'n'", "shape (2, 2)", "(n, 1)"]),
        ({"n": [1.0, 2.0], "s": ["a", "b", "c"]}, ["different numbers of rows", "'s': 3", "'n': 2"]),
        ({"n": [1.0, 2.0, 3.0], "s": ["a", "b"]}, ["different numbers of rows", "'n': 3"]),
    ],
)
def test_in_memory_adapt_names_the_feature_and_its_shape(data, words):
    space = FS({"n": FS.float_normalized(), "s": FS.string_categorical()})
    with pytest.raises(InputDataError) as error:
        space.adapt(data)
    for word in words:
        assert word in str(error.value)
    dataset = tf.data.Dataset.from_tensor_slices({"n": np.ones((4, 2)), "s": ["a"] * 4}).batch(2)
    with pytest.raises(InputDataError, match=r"feature 'n' has shape \(2, 2\)"):
        space.adapt(dataset)


def test_in_memory_adapt_accepts_one_column_matrices():
    space = FS({"n": FS.float_normalized()})
    space.adapt({"n": np.array([[1.0], [3.0]])})
    np.testing.assert_allclose(np.asarray(space({"n": [2.0]})), [[0.0]], atol=1e-6)


def test_pandas_nullable_integers_adapt_and_call_as_integers():
    """A pandas Int64 column with NA: adapt() reads it as integers with nulls (numpy would
    make it float), and a call takes the Series, NA as missing."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"i": pd.array([3, None, 3, 1], dtype="Int64"), "s": pd.array(["a", None, "b", "a"], dtype="string")})
    space = FS({"i": FS.integer_categorical(output_mode="int"), "s": FS.string_categorical(output_mode="int")}, output_mode="dict")
    space.adapt(frame)
    assert space.preprocessors["i"].get_vocabulary() == [-1, 3, 1]
    out = {k: np.asarray(v)[:, 0].tolist() for k, v in space({"i": frame["i"], "s": frame["s"]}).items()}
    assert out == {"i": [1, 0, 1, 2], "s": [1, 0, 2, 1]}


@pytest.mark.parametrize("value", [[1e300, 1.0], [10**400, 1.0], np.array([1e39, 1.0])])
def test_numbers_beyond_float32_are_refused_not_made_infinite(fs, value):
    with pytest.raises(InputDataError, match="feature 'n'.*at row 0.*must fit"):
        fs({**GOOD, "n": value})
    # An infinity given as such stays one (the analysis leaves it out of the moments).
    assert np.isposinf(np.asarray(fs({**GOOD, "n": [np.inf, 1.0]})["n"])[0, 0])


values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5), st.binary(max_size=3),
    st.lists(st.integers(), max_size=2),
)


@given(name=st.sampled_from(sorted(GOOD)), value=st.lists(values, min_size=1, max_size=3) | values)
def test_any_python_values_encode_or_raise_input_data_error(fs, name, value):
    try:
        fs({**GOOD, name: value})
    except InputDataError as e:
        assert f"feature {name!r}" in str(e) or "different numbers of rows" in str(e)


@pytest.mark.parametrize("container", ["dict", "DataFrame"])
@pytest.mark.parametrize(
    "feature, value, kinds",
    [
        ("s", ["a", 1, "a", 2.5], "['float', 'int', 'str']"),
        ("s", ["a", object(), "a", "b"], "['object', 'str']"),
        ("n", [1.0, "a", 2.0, 3.0], "['float', 'str']"),
    ],
)
def test_in_memory_adapt_of_mixed_kinds_names_the_feature_and_kinds(container, feature, value, kinds):
    """A column mixing kinds of values is refused with the feature and the kinds found,
    the same for a dict as for a DataFrame (numpy would write a dict's list as strings)."""
    pd = pytest.importorskip("pandas")
    data = {"n": [1.0, 2.0, 3.0, 4.0], "s": ["a", "b", "a", "c"], feature: value}
    data = pd.DataFrame(data) if container == "DataFrame" else data
    space = FS({"n": FS.float_normalized(), "s": FS.string_categorical()})
    with pytest.raises(InputDataError) as error:
        space.adapt(data)
    for word in [f"feature {feature!r}", kinds, "Write every value of a feature as one kind"]:
        assert word in str(error.value)


@pytest.mark.parametrize("value", [[["a"], ["b", "c"]], [{"a": 1}, {"b": 2}]])
def test_in_memory_adapt_of_nested_values_names_the_feature(value):
    with pytest.raises(InputDataError, match="column 's'.*one value per row"):
        FS({"s": FS.string_categorical()}).adapt({"s": value})


@pytest.mark.parametrize("declared", [FS.string_categorical, FS.float_normalized])
def test_in_memory_adapt_of_an_integer_beyond_int64_names_the_feature(declared):
    """Arrow cannot hold it (an OverflowError, not an Arrow error), as hypothesis found."""
    with pytest.raises(InputDataError, match="feature 'x' holds values of kinds \\['int'\\]"):
        FS({"x": declared()}).adapt({"x": [1, -(2**63) - 1]})


@given(value=st.lists(values, min_size=1, max_size=4), container=st.sampled_from(["dict", "DataFrame"]))
def test_any_python_values_adapt_or_raise_input_data_error(value, container):
    pd = pytest.importorskip("pandas")
    for declared in [FS.string_categorical(), FS.float_normalized()]:
        data = {"x": value}
        try:
            FS({"x": declared}).adapt(pd.DataFrame(data) if container == "DataFrame" else data)
        except InputDataError as e:
            assert "'x'" in str(e)


@pytest.mark.parametrize(
    "value", [[2**40, 1], np.array([2**40, 1]), [2.0**40, 1.0], np.array([2**31, 1], dtype=np.uint64), [-(2**31) - 1, 1]]
)
def test_integers_beyond_an_int32_input_are_refused_not_wrapped(value):
    # The model casts an int32 feature's int64 values: 2**40 would become 0, silently.
    space = FS({"p": FS.passthrough(dtype="int32")}, output_mode="dict")
    space.adapt({"p": [1, 2]})
    with pytest.raises(InputDataError, match=r"feature 'p'.*int32.*at row 0.*must fit int32"):
        space({"p": value})
    edges = [2**31 - 1, -(2**31), None]  # the edges are held exactly; a missing value is -1
    assert np.asarray(space({"p": edges})["p"])[:, 0].tolist() == [2**31 - 1, -(2**31), -1]
