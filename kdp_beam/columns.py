"""The Arrow type each declared feature is read as, shared by readers and analyzers."""

import pyarrow as pa
import pyarrow.compute as pc

from kdp_beam import numbers
from kdp_beam.errors import InputDataError

ARROW_TYPES = {"float": pa.float64(), "integer": pa.int64(), "string": pa.string()}


def column_types(spec):
    """{feature name: Arrow type} for every declared feature, in declaration order."""
    return {name: ARROW_TYPES[f.column_kind] for name, f in spec.features.items()}


def cast_column(column, arrow_type, feature, where):
    """Cast a column to the declared type, or raise naming the feature and the source.

    Widening (int32 -> int64, float32 -> float64, large_string -> string) is exact;
    anything lossy (float -> int with a fraction, overflow) fails instead of guessing.
    """
    if column.type == arrow_type:
        return column
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        if arrow_type == pa.string():
            try:
                return column.cast(pa.string())  # validates UTF-8
            except pa.ArrowInvalid as e:
                raise InputDataError(
                    f"{where}: column {feature!r} holds bytes that are not UTF-8 ({e})"
                ) from None
    try:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            return numbers.cast_text(column, arrow_type)  # the one rule for numbers as text
        return column.cast(arrow_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise InputDataError(
            f"{where}: column {feature!r} has type {column.type}, which cannot be read "
            f"exactly as the declared {arrow_type} ({e}). Fix the data or the declaration."
        ) from None


def blank_as_null(column):
    """Empty strings as nulls: one notion of a missing string whatever the format (CSV
    writes a missing string as an empty field, Parquet/JSON/tf.Example as null)."""
    if column.type != pa.string() or len(column) == 0:
        return column
    blank = pc.equal(column, "")
    if not pc.any(blank).as_py():
        return column
    return pc.if_else(blank, pa.scalar(None, pa.string()), column)
