"""In-memory data (tf.data, dict of arrays, pandas) as RecordBatches for the analyzers."""

import numpy as np
import pyarrow as pa

from kdp_beam.columns import cast_column, column_kinds
from kdp_beam.errors import InputDataError

BATCH_ROWS = 65536


def _column(values, kind, name, where):
    array = np.asarray(values)
    array = array.reshape(-1) if array.ndim != 1 else array
    if array.dtype.kind in "SUO":  # bytes, str or objects: let Arrow infer, then cast
        column = pa.array(array.tolist())
    else:
        column = pa.array(array)
    return cast_column(column, kind, name, where)


def _batch(columns, types, where):
    arrays = [_column(columns[name], t, name, where) for name, t in types.items()]
    lengths = {len(a) for a in arrays}
    if len(lengths) > 1:
        raise InputDataError(f"{where}: features have different numbers of rows")
    return pa.RecordBatch.from_arrays(arrays, names=list(types))


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
        _require_columns(data, types, "the dict passed to adapt()")
        columns = {name: np.asarray(data[name]) for name in types}
        total = len(columns[next(iter(types))].reshape(-1)) if types else 0
        for start in range(0, total, BATCH_ROWS):
            chunk = {n: c.reshape(-1)[start : start + BATCH_ROWS] for n, c in columns.items()}
            yield _batch(chunk, types, "the dict passed to adapt()")
        return
    if type(data).__name__ == "DataFrame" and hasattr(data, "columns"):
        _require_columns(set(data.columns), types, "the DataFrame passed to adapt()")
        for start in range(0, len(data), BATCH_ROWS):
            chunk = data.iloc[start : start + BATCH_ROWS]
            yield _batch({n: chunk[n].to_numpy() for n in types}, types, "the DataFrame")
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
            buffered[name].append(np.asarray(element[name]).reshape(-1))
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
