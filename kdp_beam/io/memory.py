"""In-memory data (tf.data, dict of arrays, pandas) as RecordBatches for the analyzers.

For FeatureSpace.adapt: no Beam, and TensorFlow is imported only to read a tf.data.Dataset
(the analysis workers never import it).

A multivalent feature's rows (kdp_beam.columns.cast_list normalises them) may be given as
lists of lists (None, [] or "" for no values), a numpy object array of lists, a DataFrame
column of lists, text split on the separator, a tf.RaggedTensor, or a dense padded 2-D
array or tensor (the model's input), whose padding is no value at all, dropped wherever it
is: "" for strings, NaN for floats, the feature's ``pad_value`` for integers (default -1).
In a tf.data.Dataset a rank-2 tensor is a batch of rows; a rank-1 one is one row's values
(an unbatched dataset), or one value per row when the element's scalar features come in a
batch; a rank-0 one is one row (text split on the separator).

The spec's label and fold key (kdp_beam.columns.read_kinds) are read beside the features:
a key of the dict or of a tf.data element, a column of the DataFrame, or the second
element of a tf.data dataset of ``(features, label)`` tuples (keras' fit() input), one
value per row (a class's text, a number, a boolean; a one-hot row is refused).
"""

import numpy as np
import pyarrow as pa

from kdp_beam.columns import LabelKind, cast_column, element_kind, read_kinds
from kdp_beam.errors import InputDataError

BATCH_ROWS = 65536
INTEGER_PAD_VALUE = -1  # a dense integer list's padding, unless the feature declares pad_value


def _rows(values, name, where, kind=None):
    """A feature's (or the label's, `kind` a LabelKind) values as one value per row: shape
    (n,), (n, 1) or a scalar."""
    try:
        array = np.asarray(values)
    except ValueError:  # ragged lists: Arrow then names them as lists (one value per row)
        array = np.asarray(values, dtype=object)
    if array.dtype.kind in "US" and isinstance(values, (list, tuple)):
        # numpy writes a list mixing strings and numbers as strings ("1", "2.5"); Arrow
        # tells the kinds apart, as for a DataFrame column.
        array = np.asarray(values, dtype=object)
    if array.ndim > 2 or (array.ndim == 2 and array.shape[1] != 1):
        if isinstance(kind, LabelKind):
            raise InputDataError(
                f"{where}: {kind.part} {name!r} has shape {array.shape}; it holds one value per row: pass "
                "shape (n,) or (n, 1) (a one-hot label: its class, e.g. argmax along axis 1)"
            )
        raise InputDataError(
            f"{where}: feature {name!r} has shape {array.shape}; pass one value per row: "
            'shape (n,) or (n, 1), or declare the feature multivalent ("multivalent": true) for '
            "a list of values per row"
        )
    return array.reshape(-1)


def _list_rows(values, name, where, pad, one_row=False):
    """A multivalent feature's rows as an Arrow array (lists, or text to split), for
    cast_column to normalise. `pad`: a dense integer array's padding; `one_row`: a dense
    array of rank 1 is one row's values (an unbatched tf.data element)."""
    if hasattr(values, "row_splits"):  # tf.RaggedTensor (or tf's RaggedTensorValue)
        return _ragged(values, name, where)
    if type(values).__name__ == "Series":  # a DataFrame's column: Arrow reads pandas' lists
        return _arrow(lambda: pa.Array.from_pandas(values), values, name, where)
    if isinstance(values, (list, tuple)):  # lists of lists, None, text
        values = list(values)
        return _arrow(lambda: pa.array(values), values, name, where)
    array = np.asarray(values)
    if array.dtype == object and array.ndim == 1 and not one_row:  # lists, arrays, None, text
        items = [item.tolist() if isinstance(item, np.ndarray) else item for item in array]
        return _arrow(lambda: pa.array(items), items, name, where)
    if array.ndim == 0 or (array.ndim == 1 and not one_row):
        items = array.reshape(-1).tolist()  # one value per row: text to split (else refused)
        return _arrow(lambda: pa.array(items), items, name, where)
    if array.ndim > 2:
        raise InputDataError(
            f"{where}: feature {name!r} has shape {array.shape}; pass a list of values per row: "
            "lists of lists, a tf.RaggedTensor, or a padded array of shape (n, k)"
        )
    return _dense(array.reshape(1, -1) if array.ndim == 1 else array, name, where, pad)


def _dense(array, name, where, pad):
    """The rows of a dense padded (n, k) array, its padding dropped ("" / b"" for text,
    NaN for floats, `pad` for integers)."""
    if array.dtype.kind == "f":
        keep = ~np.isnan(array)
    elif array.dtype.kind in "iu":
        keep = array != pad
    elif array.dtype.kind in "SUO":
        keep = (array != "") & (array != b"")
    else:
        keep = np.ones(array.shape, dtype=bool)  # booleans: no padding
    return _list_array(np.concatenate([[0], np.cumsum(keep.sum(axis=1))]), array[keep], name, where)


def _ragged(ragged, name, where):
    values = ragged.values
    if hasattr(values, "row_splits"):
        raise InputDataError(
            f"{where}: feature {name!r} is a ragged tensor of lists of lists; pass one list of "
            "values per row (ragged_rank 1)"
        )
    return _list_array(np.asarray(ragged.row_splits), np.asarray(values), name, where)


def _list_array(offsets, values, name, where):
    flat = values.tolist() if values.dtype.kind in "SUO" else values  # bytes, str or objects
    flat = _arrow(lambda: pa.array(flat), flat, name, where)
    return pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), flat)


def _same_rows(columns, where):
    lengths = {name: len(column) for name, column in columns.items()}
    if len(set(lengths.values())) > 1:
        raise InputDataError(
            f"{where}: features have different numbers of rows: {lengths}; pass one value "
            "per row of each feature"
        )


def _kinds(values):
    """The Python kinds of the present values, for an error message."""
    return sorted({type(v).__name__ for v in values if v is not None})


def _arrow(convert, values, name, where, kind=None):
    """`convert()`: an Arrow array of a feature's values, or InputDataError naming the
    feature (the label or fold key, `kind` a LabelKind) and the kinds of values it holds
    (Arrow takes one kind per column)."""
    try:
        return convert()
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as e:  # (an int beyond int64)
        if isinstance(kind, LabelKind):
            what, fix = f"{kind.part} {name!r}", f"{kind.part} as one kind: str for classes (or ids), numbers or booleans"
        else:
            what, fix = f"feature {name!r}", "a feature as one kind: str for a string or text feature, numbers for a numeric one"
        raise InputDataError(
            f"{where}: {what} holds values of kinds {_kinds(values)}, which cannot be read as one "
            f"column ({e}). Write every value of {fix} (None for missing)."
        ) from None


def _column(values, kind, name, where):
    if element_kind(kind) is not None:  # already an Arrow array of the rows (_list_rows)
        return cast_column(values, kind, name, where)
    array = _rows(values, name, where, kind)
    if array.dtype.kind in "SUO":  # bytes, str or objects: let Arrow infer, then cast
        values = array.tolist()
        column = _arrow(lambda: pa.array(values), values, name, where, kind)
    else:
        column = pa.array(array)
    return cast_column(column, kind, name, where)


def _batch(columns, types, where):
    arrays = {name: _column(columns[name], t, name, where) for name, t in types.items()}
    _same_rows(arrays, where)
    return pa.RecordBatch.from_arrays(list(arrays.values()), names=list(types))


def _require_columns(available, types, where):
    missing = [name for name in types if name not in available]
    labels = [name for name in missing if isinstance(types[name], LabelKind)]
    if labels:
        parts = " and ".join(f"{types[name].part} {name!r}" for name in labels)
        raise InputDataError(
            f"{where}: {parts} of the spec is missing; it has {sorted(available)}. Pass it beside the "
            "features: a key, a column, or the label of a tf.data dataset of (features, label) tuples"
        )
    if missing:
        raise InputDataError(
            f"{where}: declared feature(s) {missing} are missing; it has {sorted(available)}"
        )


def record_batches(data, spec):
    """Yields RecordBatches of the declared columns of `data`, reading it once: the
    features, and the spec's label and fold key (kdp_beam.columns.read_kinds).

    Accepts a tf.data.Dataset of dicts (batched or not) or, with a label, of
    ``(features, label)`` tuples, a dict of arrays/lists, or a pandas DataFrame. Values
    are cast exactly to the declared column types.
    """
    types = read_kinds(spec)
    pads = {name: f.options.get("pad_value", INTEGER_PAD_VALUE) for name, f in spec.features.items()}
    if isinstance(data, dict):
        where = "the dict passed to adapt()"
        _require_columns(data, types, where)
        columns = {
            name: _list_rows(data[name], name, where, pads[name]) if element_kind(kind) else _rows(data[name], name, where, kind)
            for name, kind in types.items()
        }
        _same_rows(columns, where)  # before slicing, which would drop a longer one's rows
        total = len(next(iter(columns.values()))) if columns else 0
        for start in range(0, total, BATCH_ROWS):
            chunk = {n: c[start : start + BATCH_ROWS] for n, c in columns.items()}
            yield _batch(chunk, types, where)
        return
    if type(data).__name__ == "DataFrame" and hasattr(data, "columns"):
        where = "the DataFrame passed to adapt()"
        _require_columns(set(data.columns), types, where)
        for start in range(0, len(data), BATCH_ROWS):
            chunk = data.iloc[start : start + BATCH_ROWS]
            # Arrow reads pandas' own types (nullable Int64 with NA stays integer; numpy
            # would make it float with NaN).
            arrays = [
                cast_column(_arrow(lambda: pa.Array.from_pandas(chunk[n]), chunk[n], n, where, t), t, n, where)
                for n, t in types.items()
            ]
            yield pa.RecordBatch.from_arrays(arrays, names=list(types))
        return
    yield from _dataset_batches(data, types, pads, spec.label)


def _dataset_batches(dataset, types, pads, label):
    import tensorflow as tf

    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(
            "`adapt()` can only be called on a tf.data.Dataset, a dict of arrays/lists, a "
            "pandas DataFrame or a file pattern. "
            f"Received instead: {dataset} (of type {type(dataset)})"
        )
    where = "the tf.data.Dataset passed to adapt()"
    buffered, rows = {name: [] for name in types}, 0
    for element in dataset:
        element = _columns_of(element, label, where)
        _require_columns(element, types, where)
        element = {name: _tensor_values(element[name], name, where) for name in types}
        # A list's rank-1 tensor is one row, unless the scalar features come in batches.
        batched = any(np.ndim(element[name]) > 0 for name, kind in types.items() if not element_kind(kind))
        for name, kind in types.items():
            if element_kind(kind):
                rows_of = _list_rows(element[name], name, where, pads[name], one_row=not batched)
                buffered[name].append(cast_column(rows_of, kind, name, where))
            else:
                buffered[name].append(_rows(element[name], name, where, kind))
        rows += len(buffered[next(iter(types))][-1])
        if rows >= BATCH_ROWS:
            yield _batch(_joined(buffered, types), types, where)
            buffered, rows = {name: [] for name in types}, 0
    if rows:
        yield _batch(_joined(buffered, types), types, where)


def _columns_of(element, label, where):
    """A tf.data element as a dict of its columns: a dict as it is; a (features, label)
    tuple, with a label, as its features and the label under its name."""
    if isinstance(element, dict):
        return element
    if isinstance(element, tuple) and len(element) == 2 and isinstance(element[0], dict) and label is not None:
        features, values = element
        if isinstance(values, (dict, tuple)):
            raise InputDataError(
                f"{where}: the label of its (features, label) elements is a {type(values).__name__} (several "
                f"outputs); kdp_beam reads one label {label!r}: map the dataset to (features, that label)"
            )
        if label in features:
            raise InputDataError(
                f"{where}: its (features, label) elements also hold the label {label!r} among the "
                "features: which one to read cannot be told; leave it out of the features"
            )
        return {**features, label: values}
    if isinstance(element, tuple) and element and isinstance(element[0], dict):
        if label is None:
            hint = (
                "a (features, label) tuple is read with a label (label=...); else map the dataset to "
                "its features: dataset.map(lambda x, y: x)"
            )
        else:
            hint = f"(features, label) tuples are read, not tuples of {len(element)} (sample weights are not read)"
        raise InputDataError(f"{where}: elements must be dicts of features, got a tuple: {hint}")
    raise InputDataError(f"{where}: elements must be dicts of features, got {type(element)}")


def _tensor_values(tensor, name, where):
    """A tf.data element's tensor: a ragged one as it is (its row splits), a dense one as
    numpy."""
    import tensorflow as tf

    if isinstance(tensor, tf.RaggedTensor):
        return tensor
    if isinstance(tensor, tf.SparseTensor):
        raise InputDataError(
            f"{where}: feature {name!r} is a tf.SparseTensor; pass dense or ragged tensors "
            "(tf.sparse.to_dense, or tf.RaggedTensor.from_sparse for a list of values per row)"
        )
    return tensor.numpy()


def _joined(buffered, types):
    """The buffered elements' rows of each feature as one array."""
    return {n: pa.concat_arrays(v) if element_kind(types[n]) else np.concatenate(v) for n, v in buffered.items()}


def string_batches(data):
    """String columns (pyarrow) of an array, list or tf.data.Dataset of strings."""
    if isinstance(data, (list, tuple, np.ndarray)):
        yield _column(data, "string", "values", "the data passed to adapt()")
        return
    for element in data.as_numpy_iterator():
        yield _column(element, "string", "values", "the tf.data.Dataset passed to adapt()")
