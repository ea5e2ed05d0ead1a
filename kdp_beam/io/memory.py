"""In-memory data (tf.data, dict of arrays, pandas) as RecordBatches for the analyzers.

For FeatureSpace.adapt: no Beam, and TensorFlow is imported only to read a tf.data.Dataset
(the analysis workers never import it)."""

import numpy as np
import pyarrow as pa

from kdp_beam.columns import cast_column, column_kinds
from kdp_beam.errors import InputDataError

BATCH_ROWS = 65536


def _rows(values, name, where):
    """A feature's values as one value per row: shape (n,), (n, 1) or a scalar."""
    try:
        array = np.asarray(values)
    except ValueError:  # ragged lists: Arrow then names them as lists (one value per row)
        array = np.asarray(values, dtype=object)
    if array.dtype.kind in "US" and isinstance(values, (list, tuple)):
        # numpy writes a list mixing strings and numbers as strings ("1", "2.5"); Arrow
        # tells the kinds apart, as for a DataFrame column.
        array = np.asarray(values, dtype=object)
    if array.ndim > 2 or (array.ndim == 2 and array.shape[1] != 1):
        raise InputDataError(
            f"{where}: feature {name!r} has shape {array.shape}; pass one value per row: "
            "shape (n,) or (n, 1)"
        )
    return array.reshape(-1)


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


def _arrow(convert, values, name, where):
    """`convert()`: an Arrow array of a feature's values, or InputDataError naming the
    feature and the kinds of values it holds (Arrow takes one kind per column)."""
    try:
        return convert()
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as e:  # (an int beyond int64)
        raise InputDataError(
            f"{where}: feature {name!r} holds values of kinds {_kinds(values)}, which cannot "
            f"be read as one column ({e}). Write every value of a feature as one kind: "
            "str for a string or text feature, numbers for a numeric one (None for missing)."
        ) from None


def _column(values, kind, name, where):
    array = _rows(values, name, where)
    if array.dtype.kind in "SUO":  # bytes, str or objects: let Arrow infer, then cast
        values = array.tolist()
        column = _arrow(lambda: pa.array(values), values, name, where)
    else:
        column = pa.array(array)
    return cast_column(column, kind, name, where)


def _batch(columns, types, where):
    arrays = {name: _column(columns[name], t, name, where) for name, t in types.items()}
    _same_rows(arrays, where)
    return pa.RecordBatch.from_arrays(list(arrays.values()), names=list(types))


def _require_columns(available, types, where):
    missing = [name for name in types if name not in available]
    if missing:
        raise InputDataError(
            f"{where}: declared feature(s) {missing} are missing; it has {sorted(available)}"
        )


def record_batches(data, spec):
    """Yields RecordBatches of the declared columns of `data`, reading it once.

    Accepts a tf.data.Dataset of dicts (batched or not), a dict of arrays/lists, or a
    pandas DataFrame. Values are cast exactly to the declared column types.
    """
    types = column_kinds(spec)
    if isinstance(data, dict):
        where = "the dict passed to adapt()"
        _require_columns(data, types, where)
        columns = {name: _rows(data[name], name, where) for name in types}
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
                cast_column(_arrow(lambda: pa.Array.from_pandas(chunk[n]), chunk[n], n, where), t, n, where)
                for n, t in types.items()
            ]
            yield pa.RecordBatch.from_arrays(arrays, names=list(types))
        return
    yield from _dataset_batches(data, types)


def _dataset_batches(dataset, types):
    import tensorflow as tf

    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(
            "`adapt()` can only be called on a tf.data.Dataset, a dict of arrays/lists, a "
            "pandas DataFrame or a file pattern. "
            f"Received instead: {dataset} (of type {type(dataset)})"
        )
    where = "the tf.data.Dataset passed to adapt()"
    buffered, rows = {name: [] for name in types}, 0
    for element in dataset.as_numpy_iterator():
        if not isinstance(element, dict):
            raise InputDataError(f"{where}: elements must be dicts of features, got {type(element)}")
        _require_columns(element, types, where)
        for name in types:
            buffered[name].append(_rows(element[name], name, where))
        rows += buffered[next(iter(types))][-1].size
        if rows >= BATCH_ROWS:
            yield _batch({n: np.concatenate(v) for n, v in buffered.items()}, types, where)
            buffered, rows = {name: [] for name in types}, 0
    if rows:
        yield _batch({n: np.concatenate(v) for n, v in buffered.items()}, types, where)


def string_batches(data):
    """String columns (pyarrow) of an array, list or tf.data.Dataset of strings."""
    if isinstance(data, (list, tuple, np.ndarray)):
        yield _column(data, "string", "values", "the data passed to adapt()")
        return
    for element in data.as_numpy_iterator():
        yield _column(element, "string", "values", "the tf.data.Dataset passed to adapt()")
