"""What a FeatureSpace is called with: one value per row and feature (a list of values
for a multivalent one), of the declared kind, or an InputDataError naming the feature, what
it expects, what it got and what to do. Missing values become what the model encodes as
missing (docs/missing-values.md); lists are padded to a dense (rows, values) array or tensor
with "", NaN or the integer pad_value (kdp_beam.builder.multivalent)."""

import math
import numbers
import reprlib
import sys

import keras
import numpy as np
import tensorflow as tf

from kdp_beam.builder.multivalent import is_list_feature, pad_value
from kdp_beam.errors import InputDataError
from kdp_beam.feature_types.categorical import IntegerCategorical
from kdp_beam.feature_types.options import FLOAT32_MAX, MAX_INT64

_ONE_PER_ROW = (
    "Pass one value per row: shape (n,) or (n, 1), or a scalar for one row (for a list of "
    "values per row, declare the feature multivalent)."
)
_LISTS = (
    "Pass a list of values per row: a list of lists, a tf.RaggedTensor, or a (rows, values) "
    "array padded with the feature's pad value; a 1-D value is one row's values."
)
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


def checked_inputs(features, data, columns=False):
    """(`data` with each value checked against its feature and made of its dtype, whether
    it is one row given as a multivalent feature's 1-D list of values); `data` is a dict of
    arrays, lists, scalars or tensors (`columns`: a DataFrame's, one item per row, whatever
    the items). Raises InputDataError."""
    unknown = [name for name in data if name not in features]
    missing = [name for name in features if name not in data]
    if unknown or missing:
        raise InputDataError(
            f"the data's keys must be the declared features {sorted(features)}; "
            + (f"missing: {missing}" if missing else "")
            + ("; " if missing and unknown else "")
            + (f"not declared: {unknown} (leave them out, or declare them)" if unknown else "")
        )
    checked, one_row = {}, False
    for name, value in data.items():
        if is_list_feature(features[name]):
            checked[name], single = list_value(name, features[name], value, columns)
            one_row = one_row or single
        else:
            checked[name] = input_value(name, features[name], value)
    rows = {name: _rows(value) for name, value in checked.items()}
    known = {name: n for name, n in rows.items() if n is not None}
    if len(set(known.values())) > 1:
        lists = " " + _LISTS if any(is_list_feature(features[name]) for name in data) else ""
        raise InputDataError(
            f"features have different numbers of rows: {known}. {_ONE_PER_ROW}{lists}"
        )
    return checked, one_row


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
    return _converted(name, feature, array)


def _converted(name, feature, array, rows=None):
    """An array's values checked and of the feature's dtype (`rows`: each value's row, for
    a list's values; None: the row is the index)."""
    if feature.dtype == "string" and array.dtype.kind in "US":
        return array  # "" is already how a missing string is encoded
    if array.dtype.kind in "OUS":
        return _from_objects(name, feature, array, rows)
    if feature.dtype == "string" or array.dtype.kind not in "iuf":  # bool, dates, ...
        _refuse(name, feature, f"values of dtype {array.dtype}", _CONVERT[_kind(feature.dtype)])
    if feature.dtype.startswith("int"):
        return _integers(name, feature, array, rows)
    return _floats(name, feature, array, rows)


def _is_row(value):
    return isinstance(value, (list, tuple, np.ndarray))


def list_value(name, feature, value, column=False):
    """A multivalent feature's value as a dense (rows, values) array or tensor of its dtype,
    padded with its pad value (a missing element given as it: None, NaN, "" are missing),
    and whether it was one row (a 1-D value, or a scalar: one row's values). `column`: a
    DataFrame's column, whose items are rows even when none is a list (no rows, or all None)."""
    if isinstance(value, (tf.Tensor, tf.RaggedTensor, tf.SparseTensor, keras.KerasTensor)):
        return _list_tensor(name, feature, value)
    if isinstance(value, (list, tuple)):
        array = np.empty(len(value), dtype=object)
        array[:] = list(value)  # a list of lists stays one row per item, whatever their lengths
    else:
        array = np.asarray(value)
    if array.ndim > 2:
        _refuse(name, feature, f"shape {array.shape}", _LISTS)
    if array.ndim == 2:
        row_of = np.repeat(np.arange(array.shape[0]), array.shape[1])
        dense = _converted(name, feature, array, row_of).reshape(array.shape)
        return _string_tensor(dense) if feature.dtype == "string" else dense, False
    items = array.reshape(-1).tolist()
    if array.ndim == 0 or not (column or any(map(_is_row, items))):
        return _padded(name, feature, [items]), True  # one row's values
    for row, item in enumerate(items):
        if not (_no_values(item) or _is_row(item)):
            _refuse(name, feature, f"{reprlib.repr(item)} at row {row}, beside rows of values", _LISTS)
    rows = [[] if _no_values(item) else item.tolist() if isinstance(item, np.ndarray) else list(item) for item in items]
    return _padded(name, feature, rows), False


def _no_values(item):
    """A row with no values: None, or NaN / pandas' NA (a DataFrame's missing row), as
    adapt() reads them."""
    return not isinstance(item, str) and not _is_row(item) and _is_missing(item)


def _padded(name, feature, rows):
    """Rows of Python values as a dense array padded with the feature's pad value."""
    lengths = np.array([len(row) for row in rows], dtype=np.int64)
    row_of = np.repeat(np.arange(len(rows)), lengths)
    flat = np.empty(int(lengths.sum()), dtype=object)
    flat[:] = [value for row in rows for value in row]
    values = _converted(name, feature, flat, row_of)
    position = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    width = int(lengths.max()) if len(rows) else 0
    dtype = object if feature.dtype == "string" else values.dtype
    dense = np.full((len(rows), width), _missing_value(feature), dtype=dtype)
    dense[row_of, position] = values
    return _string_tensor(dense) if feature.dtype == "string" else dense


def _string_tensor(dense):
    # str and bytes alike, and a (rows, 0) array still of strings.
    return tf.constant(dense.tolist() if dense.size else np.zeros(dense.shape, dtype=str), tf.string)


def _list_tensor(name, feature, tensor):
    """A tensor of lists as a dense (rows, values) tensor padded with the pad value (a
    RaggedTensor or SparseTensor filled out, numbers as floats, integers as int64)."""
    _check_tensor(name, feature, tensor)
    rank = tensor.shape.rank if not isinstance(tensor, keras.KerasTensor) else len(tensor.shape)
    if rank is not None and rank > 2 or (rank != 2 and not isinstance(tensor, tf.Tensor)):
        _refuse(name, feature, f"a tensor of shape {tuple(tensor.shape)}", _LISTS)
    if isinstance(tensor, keras.KerasTensor):
        return tensor, False
    kind = _kind(feature.dtype)
    if kind != "string":
        tensor = tf.cast(tensor, tf.int64 if kind == "integer" else feature.dtype)
    pad = _missing_value(feature)
    if isinstance(tensor, tf.RaggedTensor):
        return tensor.to_tensor(default_value=tf.constant(pad, tensor.dtype)), False
    if isinstance(tensor, tf.SparseTensor):
        return tf.sparse.to_dense(tensor, default_value=tf.constant(pad, tensor.dtype)), False
    if rank == 2 or rank is None:  # (a rank unknown until run time: taken as rows)
        return tensor, False
    return tf.reshape(tensor, [1, -1]), True  # one row's values


def _largest(feature):
    return FLOAT32_MAX if feature.dtype == "float32" else sys.float_info.max


def _row(index, rows):
    """The row of the `index`th value (`rows`: each value's row, or None: the index)."""
    return index if rows is None else int(rows[index])


def _floats(name, feature, array, rows=None):
    """Numbers as the feature's float dtype; a finite value it cannot hold (beyond
    FLOAT32_MAX in float32) is refused, not turned into infinity."""
    too_large = np.isfinite(array) & (np.abs(array) > _largest(feature))
    if too_large.any():
        index = int(np.argmax(too_large.reshape(-1)))
        _refuse(name, feature, f"{array.reshape(-1)[index].item()!r} at row {_row(index, rows)}", _TOO_LARGE)
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
    if not isinstance(tensor, (tf.RaggedTensor, tf.SparseTensor)) and not is_list_feature(feature):
        _check_shape(name, feature, tuple(tensor.shape))


def _check_shape(name, feature, shape):
    if len(shape) > 2 or (len(shape) == 2 and shape[1] not in (1, None)):
        _refuse(name, feature, f"shape {tuple(shape)}", _ONE_PER_ROW)


def _missing_value(feature):
    """What a missing value is encoded as: NaN for numbers, "" for strings, the missing
    token (or keras' OOV token -1) for integers, a list's pad_value in a list."""
    if feature.dtype == "string":
        return ""
    if is_list_feature(feature):
        return pad_value(feature.dtype, feature.declaration)
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


def _from_objects(name, feature, array, rows=None):
    """Python objects (lists, object or string arrays): None, "" and NaN are missing."""
    values = array.reshape(-1).tolist()
    kinds = set(map(type, values))
    # One type (and None) throughout, the usual case: whole-list conversions.
    if feature.dtype == "string" and kinds <= {str, bytes, type(None)}:
        return np.array(["" if v is None else v for v in values], dtype=object).reshape(array.shape)
    if feature.dtype.startswith("float") and kinds <= {float, int, type(None)}:
        try:
            return _floats(name, feature, np.array(values, dtype=np.float64), rows).reshape(array.shape)
        except OverflowError:  # an integer beyond float64: judged one by one below
            pass
    if feature.dtype.startswith("int") and kinds <= {int, type(None)}:
        missing = _missing_value(feature)
        try:
            integers = np.array([missing if v is None else v for v in values], dtype=np.int64)
            return _within_dtype(name, feature, integers, rows).reshape(array.shape)
        except OverflowError:  # beyond int64: judged one by one below
            pass
    return _judged(name, feature, array, values, rows)


def _judged(name, feature, array, values, rows=None):
    """_from_objects value by value, naming the first value refused and its row (`rows`:
    the row of each value, when they are a list's)."""
    checked = []
    for index, value in enumerate(values):
        row = _row(index, rows)
        if _is_missing(value):
            checked.append(_missing_value(feature))
        elif feature.dtype == "string" and isinstance(value, (str, bytes)):
            checked.append(value)
        elif feature.dtype != "string" and isinstance(value, numbers.Real) and not isinstance(value, bool):
            if feature.dtype.startswith("float") and abs(value) != math.inf and not abs(value) <= _largest(feature):
                _refuse(name, feature, f"{reprlib.repr(value)} at row {row}", _TOO_LARGE)
            checked.append(value)
        elif isinstance(value, (list, tuple, np.ndarray)):
            _refuse(name, feature, f"{reprlib.repr(value)} at row {row}", _LISTS if rows is not None else _ONE_PER_ROW)
        else:
            fix = (
                "Pass strings, e.g. str(x)." if feature.dtype == "string"
                else 'Pass numbers (None, NaN or "" for a missing value).'
            )
            _refuse(name, feature, f"{reprlib.repr(value)} at row {row}", fix)
    if feature.dtype == "string":
        return np.array(checked, dtype=object).reshape(array.shape)
    if feature.dtype.startswith("int"):
        return _integers(name, feature, np.array(checked, dtype=object), rows).reshape(array.shape)
    return _floats(name, feature, np.array(checked, dtype=np.float64), rows).reshape(array.shape)


def _integers(name, feature, array, rows=None):
    """Integers as int64: whole floats are exact, NaN is missing; a fraction, an infinity
    or a number beyond int64 -- or beyond the feature's own dtype, an int32 input's
    -- is refused (keras would truncate or wrap it silently: 2**40 in int32 is 0)."""
    flat = array.reshape(-1)
    if flat.dtype.kind == "u" and flat.size and flat.max() > MAX_INT64:
        _refuse(name, feature, f"{flat.max()}, beyond int64", "IDs must fit int64.")
    if flat.dtype.kind in "iu":
        return _within_dtype(name, feature, flat.astype(np.int64), rows).reshape(array.shape)
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
        index = int(np.argmax(bad))
        _refuse(
            name, feature, f"{reprlib.repr(flat.tolist()[index])} at row {_row(index, rows)}",
            "Integer features take whole numbers within int64 (None or NaN for a missing value).",
        )
    return _within_dtype(name, feature, result, rows).reshape(array.shape)


def _within_dtype(name, feature, values, rows):
    """`values` (int64), refused when one is beyond a narrower dtype the feature's input
    is declared as (int32): the model's cast would wrap it. (A missing value is already
    the missing token, -1 unless declared: within int32.)"""
    if feature.dtype != "int32" or not values.size:
        return values
    info = np.iinfo(np.int32)
    outside = (values < info.min) | (values > info.max)
    if outside.any():
        index = int(np.argmax(outside))
        _refuse(
            name, feature, f"{values[index].item()!r} at row {_row(index, rows)}",
            f"Its values must fit int32 [{info.min}, {info.max}]: declare the feature int64, or scale them.",
        )
    return values
