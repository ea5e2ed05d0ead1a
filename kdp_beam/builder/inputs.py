"""What a FeatureSpace is called with: one value per row and feature, of the declared
kind, or an InputDataError naming the feature, what it expects, what it got and what to
do. Missing values become what the model encodes as missing (docs/missing-values.md)."""

import math
import numbers
import reprlib
import sys

import keras
import numpy as np
import tensorflow as tf

from kdp_beam.errors import InputDataError
from kdp_beam.feature_types.categorical import IntegerCategorical
from kdp_beam.feature_types.options import FLOAT32_MAX, MAX_INT64

_ONE_PER_ROW = "Pass one value per row: shape (n,) or (n, 1), or a scalar for one row."
_TOO_LARGE = "Numbers must fit the feature's dtype: scale them first."
_CONVERT = {
    "string": "Convert them to strings first, e.g. x.astype(str) or tf.strings.as_string(x).",
    "integer": "Convert them to whole numbers first, e.g. x.astype('int64') or "
    "tf.cast(x, tf.int64) (a fraction is not truncated silently).",
    "number": "Convert them to numbers first, e.g. x.astype('float32') or "
    "tf.strings.to_number(x).",
}


def _kind(dtype):
    return "string" if dtype == "string" else "integer" if dtype.startswith("int") else "number"


def _refuse(name, feature, got, fix):
    raise InputDataError(
        f"feature {name!r} takes {_kind(feature.dtype)} values ({feature.dtype}); got {got}. {fix}"
    )


def checked_inputs(features, data):
    """`data` (a dict of arrays, lists, scalars or tensors) with each value checked against
    its feature and made of its dtype; raises InputDataError."""
    unknown = [name for name in data if name not in features]
    missing = [name for name in features if name not in data]
    if unknown or missing:
        raise InputDataError(
            f"the data's keys must be the declared features {sorted(features)}; "
            + (f"missing: {missing}" if missing else "")
            + ("; " if missing and unknown else "")
            + (f"not declared: {unknown} (leave them out, or declare them)" if unknown else "")
        )
    checked = {name: input_value(name, features[name], value) for name, value in data.items()}
    rows = {name: _rows(value) for name, value in checked.items()}
    known = {name: n for name, n in rows.items() if n is not None}
    if len(set(known.values())) > 1:
        raise InputDataError(
            f"features have different numbers of rows: {known}. {_ONE_PER_ROW}"
        )
    return checked


def _rows(value):
    """Rows of a value: None for a scalar or a length unknown until run time."""
    shape = value.shape
    return None if len(shape) == 0 or shape[0] is None else int(shape[0])


def input_value(name, feature, value):
    """One feature's value, checked and of its dtype (tensors: checked, left as they are)."""
    if isinstance(value, (tf.Tensor, tf.RaggedTensor, tf.SparseTensor, keras.KerasTensor)):
        _check_tensor(name, feature, value)
        integers = tf.as_dtype(value.dtype).is_integer
        if _kind(feature.dtype) == "number" and integers and not isinstance(value, keras.KerasTensor):
            return tf.cast(value, feature.dtype)  # numbers: filled where NaN, so floats
        return value
    try:  # a list's items keep their types (numpy would make [1, "b"] two strings)
        array = np.asarray(value, dtype=object) if isinstance(value, (list, tuple)) else np.asarray(value)
    except ValueError:  # rows of different lengths
        _refuse(name, feature, "rows of different lengths", _ONE_PER_ROW)
    _check_shape(name, feature, array.shape)
    if feature.dtype == "string" and array.dtype.kind in "US":
        return array  # "" is already how a missing string is encoded
    if array.dtype.kind in "OUS":
        return _from_objects(name, feature, array)
    if feature.dtype == "string" or array.dtype.kind not in "iuf":  # bool, dates, ...
        _refuse(name, feature, f"values of dtype {array.dtype}", _CONVERT[_kind(feature.dtype)])
    if feature.dtype.startswith("int"):
        return _integers(name, feature, array)
    return _floats(name, feature, array)


def _largest(feature):
    return FLOAT32_MAX if feature.dtype == "float32" else sys.float_info.max


def _floats(name, feature, array):
    """Numbers as the feature's float dtype; a finite value it cannot hold (beyond
    FLOAT32_MAX in float32) is refused, not turned into infinity."""
    too_large = np.isfinite(array) & (np.abs(array) > _largest(feature))
    if too_large.any():
        row = int(np.argmax(too_large.reshape(-1)))
        _refuse(name, feature, f"{array.reshape(-1)[row].item()!r} at row {row}", _TOO_LARGE)
    return array.astype(feature.dtype)


def _check_tensor(name, feature, tensor):
    dtype = tf.as_dtype(tensor.dtype)
    accepted = {
        "string": dtype == tf.string,
        "integer": dtype.is_integer,
        "number": dtype.is_integer or dtype.is_floating,
    }[_kind(feature.dtype)]
    if not accepted:
        _refuse(name, feature, f"a tensor of {dtype.name}", _CONVERT[_kind(feature.dtype)])
    if not isinstance(tensor, (tf.RaggedTensor, tf.SparseTensor)):
        _check_shape(name, feature, tuple(tensor.shape))


def _check_shape(name, feature, shape):
    if len(shape) > 2 or (len(shape) == 2 and shape[1] not in (1, None)):
        _refuse(name, feature, f"shape {tuple(shape)}", _ONE_PER_ROW)


def _missing_value(feature):
    """What a missing value is encoded as: NaN for numbers, "" for strings, the missing
    token (or keras' OOV token -1) for integers."""
    if feature.dtype == "string":
        return ""
    if feature.dtype.startswith("int"):
        token = getattr(feature, "missing_token", None)  # keras' own records: None
        return IntegerCategorical.oov_token if token is None else token
    return np.nan


def _is_missing(value):
    """None, "", NaN, and pandas' NA (when pandas is in use)."""
    pandas = sys.modules.get("pandas")
    return (
        value is None
        or (isinstance(value, str) and value == "")
        or (isinstance(value, numbers.Real) and value != value)
        or (pandas is not None and value is pandas.NA)
    )


def _from_objects(name, feature, array):
    """Python objects (lists, object or string arrays): None, "" and NaN are missing."""
    values = array.reshape(-1).tolist()
    kinds = set(map(type, values))
    # One type (and None) throughout, the usual case: whole-list conversions.
    if feature.dtype == "string" and kinds <= {str, bytes, type(None)}:
        return np.array(["" if v is None else v for v in values], dtype=object).reshape(array.shape)
    if feature.dtype.startswith("float") and kinds <= {float, int, type(None)}:
        try:
            return _floats(name, feature, np.array(values, dtype=np.float64)).reshape(array.shape)
        except OverflowError:  # an integer beyond float64: judged one by one below
            pass
    if feature.dtype.startswith("int") and kinds <= {int, type(None)}:
        missing = _missing_value(feature)
        try:
            return np.array([missing if v is None else v for v in values], dtype=np.int64).reshape(array.shape)
        except OverflowError:  # beyond int64: judged one by one below
            pass
    return _judged(name, feature, array, values)


def _judged(name, feature, array, values):
    """_from_objects value by value, naming the first value refused and its row."""
    checked = []
    for row, value in enumerate(values):
        if _is_missing(value):
            checked.append(_missing_value(feature))
        elif feature.dtype == "string" and isinstance(value, (str, bytes)):
            checked.append(value)
        elif feature.dtype != "string" and isinstance(value, numbers.Real) and not isinstance(value, bool):
            if feature.dtype.startswith("float") and abs(value) != math.inf and not abs(value) <= _largest(feature):
                _refuse(name, feature, f"{reprlib.repr(value)} at row {row}", _TOO_LARGE)
            checked.append(value)
        elif isinstance(value, (list, tuple, np.ndarray)):
            _refuse(name, feature, f"{reprlib.repr(value)} at row {row}", _ONE_PER_ROW)
        else:
            fix = (
                "Pass strings, e.g. str(x)." if feature.dtype == "string"
                else 'Pass numbers (None, NaN or "" for a missing value).'
            )
            _refuse(name, feature, f"{reprlib.repr(value)} at row {row}", fix)
    if feature.dtype == "string":
        return np.array(checked, dtype=object).reshape(array.shape)
    if feature.dtype.startswith("int"):
        return _integers(name, feature, np.array(checked, dtype=object)).reshape(array.shape)
    return _floats(name, feature, np.array(checked, dtype=np.float64)).reshape(array.shape)


def _integers(name, feature, array):
    """Integers as int64: whole floats are exact, NaN is missing; a fraction, an infinity
    or a number beyond int64 is refused (keras would truncate or wrap it silently)."""
    flat = array.reshape(-1)
    if flat.dtype.kind == "u" and flat.size and flat.max() > MAX_INT64:
        _refuse(name, feature, f"{flat.max()}, beyond int64", "IDs must fit int64.")
    if flat.dtype.kind in "iu":
        return flat.astype(np.int64).reshape(array.shape)
    if flat.dtype.kind == "f":
        missing = np.isnan(flat)
        whole = np.isfinite(flat) & (flat == np.round(flat)) & (np.abs(flat) < 2.0**63)
        bad = ~missing & ~whole
        filled = np.where(missing | bad, 0, flat).astype(np.int64)
        result = np.where(missing, _missing_value(feature), filled)
    else:  # Python numbers, any size
        bad = np.array(
            [not (isinstance(v, numbers.Integral) or float(v).is_integer()) or not -MAX_INT64 - 1 <= v <= MAX_INT64
             for v in flat.tolist()],
            dtype=bool,
        )
        result = np.array([0 if b else int(v) for v, b in zip(flat.tolist(), bad)], dtype=np.int64)
    if bad.any():
        row = int(np.argmax(bad))
        _refuse(
            name, feature, f"{reprlib.repr(flat.tolist()[row])} at row {row}",
            "Integer features take whole numbers within int64 (None or NaN for a missing value).",
        )
    return result.reshape(array.shape)
