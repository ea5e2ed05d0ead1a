"""What each declared feature's column is read as, and the one rule deciding which source
types can be read so: shared by every reader, the schema pre-check, the in-memory adapt
path and the analyzers, so that whether a file is accepted never depends on which file is
read first or which check sees it."""

import pyarrow as pa
import pyarrow.compute as pc

from kdp_beam.errors import InputDataError

# The column kinds (a feature's column_kind, and "date" for a date feature in ISO 8601)
# and the Arrow type the analysis receives for each.
ARROW_TYPES = {
    "float": pa.float64(),
    "integer": pa.int64(),
    "string": pa.string(),
    "date": pa.string(),
}


def column_kinds(spec):
    """{feature name: kind} for every declared feature, in declaration order, as its type
    reads it: its column kind, or "date" for text that also comes as typed timestamps and
    dates (read as ISO 8601 text)."""
    return {name: f.read_kind for name, f in spec.features.items()}


def column_types(spec):
    """{feature name: Arrow type} for every declared feature, in declaration order."""
    return {name: ARROW_TYPES[kind] for name, kind in column_kinds(spec).items()}


def _is_text(t):
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _is_bytes(t):
    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t)


def _is_temporal(t):
    return pa.types.is_timestamp(t) or pa.types.is_date(t)


# For errors: what each kind is, and what it reads.
_KIND_NAMES = {
    "float": "a float feature",
    "integer": "an integer feature",
    "string": "a string feature",
    "date": "a date feature",
}
_READS = {
    "float": "integers and floating-point numbers",
    "integer": "integers",
    "string": "text, bytes (UTF-8) and booleans",
    "date": "text, timestamps and dates",
}


def read_problem(source, kind):
    """Why a column of Arrow type `source` cannot be read as `kind`, as a sentence saying
    what to do, or None when it can. The one rule for every format and every file:

    - type null (a column with no value) reads as any kind, all missing;
    - float: integers (rounded to the nearest double beyond 2^53, as numbers written as
      text are) and floating point of any width;
    - integer: integers of any width (a value beyond int64 fails when read); not floating
      point, even whole values, nor booleans;
    - string: text, bytes (which must be UTF-8) and booleans, as "true" / "false";
    - date: text, and timestamps of any unit and dates as their ISO 8601 text. A
      timestamp with a time zone is an instant, stored in UTC: it is read as its UTC
      time, whatever zone it is tagged with (exact, and no time-zone database needed;
      pyarrow's, for one, applies no summer time after 2037).

    Dictionary-encoded columns are read as their values.
    """
    if pa.types.is_dictionary(source):
        source = source.value_type
    readable = {
        "float": pa.types.is_integer(source) or pa.types.is_floating(source),
        "integer": pa.types.is_integer(source),
        "string": _is_text(source) or _is_bytes(source) or pa.types.is_boolean(source),
        "date": _is_text(source) or _is_bytes(source) or _is_temporal(source),
    }
    if pa.types.is_null(source) or readable[kind]:
        return None
    if pa.types.is_boolean(source):
        return 'declare a string feature, e.g. a string categorical (booleans are read as "true" / "false")'
    if pa.types.is_floating(source) and kind == "integer":
        return (
            "floating-point values are not read as integers, even whole ones: declare a "
            "float feature, or write the column as integers"
        )
    if _is_temporal(source):
        return (
            "timestamps and dates are read by a date feature without a format, as ISO 8601 "
            "text: declare it so"
        )
    if readable["float"]:
        return (
            "numbers are not read as text: declare a numeric feature (an integer "
            "categorical for codes), or write the column as strings"
        )
    if pa.types.is_nested(source):
        return "a feature holds one value per row: flatten the column into columns of their own"
    if pa.types.is_decimal(source):
        return "decimals are not read: write the column as floating point (or integers)"
    return f"{_KIND_NAMES[kind]} reads {_READS[kind]}: write the column as one of those"


def check_readable(source, kind, feature, where):
    """Raises InputDataError naming the file (`where`) and the column when read_problem
    finds one."""
    problem = read_problem(source, kind)
    if problem is not None:
        raise InputDataError(
            f"{where}: column {feature!r} is {source}, which cannot be read as "
            f"{_KIND_NAMES[kind]}: {problem}."
        )


def cast_column(column, kind, feature, where):
    """The column as the Arrow type of `kind` (ARROW_TYPES), by the rule of read_problem,
    or InputDataError naming the feature and the source (`where`).

    Widening (int32 -> int64, float32 -> float64, large_string -> string) is exact; a
    value that does not fit (a uint64 beyond int64, bytes that are not UTF-8) fails
    instead of guessing.
    """
    check_readable(column.type, kind, feature, where)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    source, target = column.type, ARROW_TYPES[kind]
    if source == target:
        return column
    if pa.types.is_null(source):
        return pa.nulls(len(column), target)
    if pa.types.is_boolean(source):
        return pc.if_else(column, "true", "false")
    if pa.types.is_timestamp(source) and source.tz is not None:
        column = column.cast(pa.timestamp(source.unit))  # its UTC time
    try:
        # An integer beyond 2^53 has no exact double: the nearest one, as for text.
        return column.cast(target, safe=not (kind == "float" and pa.types.is_integer(source)))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        what = "bytes that are not UTF-8" if _is_bytes(source) else "a value that does not fit"
        raise InputDataError(
            f"{where}: column {feature!r} holds {what} ({e}). Fix the data or the declaration."
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
