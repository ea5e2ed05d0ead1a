"""What each declared feature's column (and the spec's label and fold key: read_kinds) is
read as, and the one rule deciding which source types can be read so: shared by every
reader, the schema pre-check, the in-memory adapt path and the analyzers, so that whether
a file is accepted never depends on which file is read first or which check sees it.

Also the one normal form of a multivalent feature's list column (cast_list: lists, or text
split on the separator), and numbers read from text as CSV reads them (number_from_text),
which a split text field's values follow in every format."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kdp_beam import numbers
from kdp_beam.errors import InputDataError
from kdp_beam.feature_types.multivalent import OPTIONS as MULTIVALENT_OPTIONS

# The column kinds (a feature's column_kind, "date" for a date feature in ISO 8601,
# "list<KIND>" for a multivalent feature's list of values per row, "label" for a class
# label's or a fold key's text) and the Arrow type the analysis receives for each.
ARROW_TYPES = {
    "float": pa.float64(),
    "integer": pa.int64(),
    "string": pa.string(),
    "date": pa.string(),
    "label": pa.string(),
    "list<float>": pa.list_(pa.float64()),
    "list<integer>": pa.list_(pa.int64()),
    "list<string>": pa.list_(pa.string()),
}

# Fields read as null (missing) in numeric columns, and as a missing value among the
# values of a multivalent number field. "nan"/"NaN" are not among them: a float column
# reads them as NaN, which the statistics count apart from nulls.
NULL_VALUES = ["", "NA", "N/A", "n/a", "NULL", "null", "#N/A"]


class _ReadKind(str):
    """A read kind that carries what reading it needs beside the kind (the attributes
    named by ``carried``): equal to, and usable as, the kind's string, and pickled with
    what it carries (Beam ships readers to workers)."""

    carried = ()

    def __new__(cls, kind, *values):
        read_kind = super().__new__(cls, kind)
        for name, value in zip(cls.carried, values, strict=True):
            setattr(read_kind, name, value)
        return read_kind

    def __reduce__(self):
        return type(self), (str(self), *(getattr(self, name) for name in self.carried))


class ListKind(_ReadKind):
    """A multivalent feature's read kind, its "list<KIND>" string, carrying the
    ``separator`` that splits its text values. A {name: kind} mapping (column_kinds) so
    brings the separator to every reader and to the analysis' cast (cast_column) without
    a second mapping to keep beside it."""

    carried = ("separator",)


class LabelKind(_ReadKind):
    """The read kind of the spec's label or fold key column (read_kinds), or of a column a
    transform keeps as text or float (kdp_beam.transform.encode.keep_kinds): "label" (a
    class's text; the fold key's; any scalar's text) or "float" (a regression label), read
    from whichever type a file holds it as, carrying ``role`` ("label", "fold_key" or
    "keep") so that errors name the column's part and say what to declare instead."""

    carried = ("role",)

    @property
    def part(self):
        """The column's part, for errors: "the label", "the fold key" or "the kept column"."""
        return {"fold_key": "the fold key", "keep": "the kept column"}.get(self.role, "the label")


def element_kind(kind):
    """The kind of each value of a list kind ("list<float>" -> "float"); None for a
    scalar kind."""
    return kind[5:-1] if kind.startswith("list<") else None


def column_kinds(spec):
    """{feature name: kind} for every declared feature, in declaration order, as its type
    reads it: its column kind, "date" for text that also comes as typed timestamps and
    dates (read as ISO 8601 text), or for a multivalent feature a ListKind (its list kind
    and separator)."""
    kinds = {}
    for name, feature in spec.features.items():
        kind = feature.read_kind
        separator = feature.options.get("separator", MULTIVALENT_OPTIONS["separator"])
        kinds[name] = ListKind(kind, separator) if element_kind(kind) else kind
    return kinds


def read_kinds(spec):
    """{column: kind} of every column readers read: the features' (column_kinds), then the
    spec's label (spec.label_kind: "label", or "float" for a regression label) and fold
    key ("label"), each a LabelKind, when the spec has them. The label is never a feature:
    analyzers that iterate the features (column_kinds) do not see it."""
    kinds = column_kinds(spec)
    if spec.label is not None:
        kinds[spec.label] = LabelKind(spec.label_kind, "label")
    if spec.fold_key is not None:
        kinds[spec.fold_key] = LabelKind("label", "fold_key")
    return kinds


def kinds_read(spec, columns=None):
    """{column: kind} a reader reads: `columns` when given (a transform's: the features'
    and the kept columns'), else read_kinds(spec)."""
    return read_kinds(spec) if columns is None else dict(columns)


def column_types(spec):
    """{feature name: Arrow type} for every declared feature, in declaration order."""
    return {name: ARROW_TYPES[kind] for name, kind in column_kinds(spec).items()}


def _is_text(t):
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _is_bytes(t):
    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t)


def _is_temporal(t):
    return pa.types.is_timestamp(t) or pa.types.is_date(t)


def is_list(t):
    """Whether an Arrow type is a list a multivalent feature reads (list, large_list,
    fixed_size_list)."""
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def list_lengths(lists):
    """Values per row of a list column (0 for a null row), as a numpy integer array."""
    return pc.list_value_length(lists).fill_null(0).to_numpy(zero_copy_only=False)


# For errors: what each kind is, and what it reads.
_KIND_NAMES = {
    "float": "a float feature",
    "integer": "an integer feature",
    "string": "a string feature",
    "date": "a date feature",
    "label": "a label",
    "list<float>": "a multivalent float feature",
    "list<integer>": "a multivalent integer feature",
    "list<string>": "a multivalent string feature",
}
_READS = {
    "float": "integers and floating-point numbers",
    "integer": "integers",
    "string": "text, bytes (UTF-8) and booleans",
    "date": "text, timestamps and dates",
    "label": "text, bytes (UTF-8), booleans and numbers",
}


def _kind_name(kind):
    """What a column read as `kind` is, for errors: the label and the fold key by their
    part in the spec."""
    if isinstance(kind, LabelKind):
        return "the regression label" if kind == "float" else kind.part
    return _KIND_NAMES[kind]


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
    - label (a class label's, or a fold key's, text): text, bytes (UTF-8), booleans
      ("true" / "false"), integers of any width (decimal text) and floating point (as
      pyarrow writes it: 1.0 is "1", 0.5 "0.5"). Not lists, structs, timestamps or
      dates. A regression label is read as a float.

    - list<KIND> (a multivalent feature): lists (list, large_list, fixed_size_list) of
      values KIND reads, by the rules above; and text or bytes, split on the feature's
      separator (cast_column). Not one number (or boolean, date...) per row: that is a
      scalar feature's column.

    A list where a scalar is declared is refused, saying to declare the feature
    multivalent. Dictionary-encoded columns are read as their values.
    """
    if pa.types.is_dictionary(source):
        source = source.value_type
    element = element_kind(kind)
    if element is not None:
        return _list_problem(source, element)
    readable = {
        "float": pa.types.is_integer(source) or pa.types.is_floating(source),
        "integer": pa.types.is_integer(source),
        "string": _is_text(source) or _is_bytes(source) or pa.types.is_boolean(source),
        "date": _is_text(source) or _is_bytes(source) or _is_temporal(source),
        "label": _is_text(source) or _is_bytes(source) or pa.types.is_boolean(source)
        or pa.types.is_integer(source) or pa.types.is_floating(source),
    }
    if pa.types.is_null(source) or readable[kind]:
        return None
    if kind == "label" or isinstance(kind, LabelKind):
        return _label_problem(source, kind)
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
    if is_list(source):
        return (
            "it holds a list of values per row, and this feature one value per row: declare the "
            'feature multivalent ("multivalent": true) to read every value, or flatten the column'
        )
    if pa.types.is_nested(source):
        return "a feature holds one value per row: flatten the column into columns of their own"
    if pa.types.is_decimal(source):
        return "decimals are not read: write the column as floating point (or integers)"
    return f"{_KIND_NAMES[kind]} reads {_READS[kind]}: write the column as one of those"


def _label_problem(source, kind):
    """read_problem of the label's or fold key's column (`kind` "label", or "float" for a
    regression label), which it cannot read."""
    fold_key = getattr(kind, "role", None) == "fold_key"
    part = "the fold key" if fold_key else "a label"
    if is_list(source) or pa.types.is_nested(source):
        if fold_key:
            return "the fold key holds one value per row (the row's id): write one id per row"
        return (
            "a label holds one value per row (a class or a number): write one value per row "
            "(a one-hot or multi-label column: write the class instead)"
        )
    if kind == "float" and (_is_text(source) or _is_bytes(source) or pa.types.is_boolean(source)):
        return (
            'a regression label (label_type "regression") reads numbers: write the column as numbers, '
            'or declare label_type "binary" or "multiclass" (or leave it out, to infer it) to read classes'
        )
    if _is_temporal(source):
        return f"timestamps and dates are not read as {part}: write the column as text"
    if pa.types.is_decimal(source):
        return "decimals are not read: write the column as floating point, integers or text"
    return f"{part} reads {_READS[kind]}: write the column as one of those"


def _list_problem(source, element):
    """read_problem of a multivalent feature's column, whose values are `element`s."""
    if pa.types.is_null(source) or _is_text(source) or _is_bytes(source):
        return None  # no value at all; text split on the separator
    if pa.types.is_nested(source) and not is_list(source):  # a map, struct, list view...
        return (
            "a multivalent feature reads a list column (list, large_list, fixed_size_list) or "
            "text split on its separator: write the column as one of those"
        )
    if not is_list(source):
        return (
            f"a multivalent feature reads a list of values per row (a list column, or text split on "
            f"its separator), and this column holds one {source} per row: declare the feature without "
            "multivalent, or write the column as lists"
        )
    values = source.value_type
    if pa.types.is_dictionary(values):
        values = values.value_type
    if pa.types.is_nested(values):
        return "a list of lists (or of structs) is not read: write one list of values per row"
    if _is_temporal(values):
        return (
            "a list of timestamps or dates is not read (a date feature holds one value per "
            "row): write the values as text in a list of strings, or as numbers"
        )
    problem = read_problem(values, element)
    return None if problem is None else f"its values are {values}: {problem}"


def check_readable(source, kind, feature, where):
    """Raises InputDataError naming the file (`where`) and the column when read_problem
    finds one."""
    problem = read_problem(source, kind)
    if problem is not None:
        raise InputDataError(
            f"{where}: column {feature!r} is {source}, which cannot be read as "
            f"{_kind_name(kind)}: {problem}."
        )


def cast_column(column, kind, feature, where, separator=None, keep_dictionary=False):
    """The column as the Arrow type of `kind` (ARROW_TYPES), by the rule of read_problem,
    or InputDataError naming the feature and the source (`where`).

    `keep_dictionary`: a dictionary-encoded column of text read as "string" stays encoded,
    its dictionary as string (kdp_beam.analyzers.dataset.dictionary_features says for
    which features the analysis takes that).

    Widening (int32 -> int64, float32 -> float64, large_string -> string) is exact; a
    value that does not fit (a uint64 beyond int64, bytes that are not UTF-8) fails
    instead of guessing.

    A list kind gives the normalised list column (cast_list; `separator`: default the
    kind's own when it is a ListKind, else "|"). The label kind gives text with its
    missing values null (label_text). Idempotent: a column it gave comes back as it is.
    """
    if element_kind(kind) is not None:
        return cast_list(column, kind, feature, where, separator)
    check_readable(column.type, kind, feature, where)
    if pa.types.is_dictionary(column.type):
        kept = string_dictionary(column) if keep_dictionary and kind == "string" else None
        if kept is not None:
            return kept
        column = column.cast(column.type.value_type)
    if kind == "label":
        return label_text(column, feature, where)
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


def label_text(column, feature, where):
    """A column read_problem lets the label kind read, as the text of its values: text as
    it is (bytes must be UTF-8), booleans "true" / "false", integers in decimal, floating
    point whole below 2^63 as that integer (1.0 is "1", 1e10 "10000000000"; -0 is "0"),
    other floating point as pyarrow writes it (the shortest text that reads back as the
    value, of the column's own width: a float32 0.1 is "0.1"). Missing: null, NaN and
    the empty string (blank_as_null), so that one value missing in any format is missing."""
    source = column.type
    if pa.types.is_null(source):
        return pa.nulls(len(column), pa.string())
    if pa.types.is_boolean(source):
        return pc.if_else(column, "true", "false")
    if pa.types.is_floating(source):
        if pa.types.is_float16(source):
            column = column.cast(pa.float32())  # exact; compute has no float16 kernels
        nan = pc.is_nan(column)
        column = pc.add(column, pa.scalar(0, column.type))  # -0 + 0 is 0: one class
        column = pc.if_else(nan, pa.scalar(None, column.type), column)
        # A whole number is the text of the integer, as the same number written as an integer
        # (JSON's 10000000000, a Parquet int64) reads: 1e10 is "10000000000", not "1e+10".
        whole = pc.fill_null(pc.and_(pc.equal(pc.floor(column), column), pc.less(pc.abs(column), 2.0**63)), False)
        integers = pc.if_else(whole, column, pa.scalar(0, column.type)).cast(pa.int64())
        return blank_as_null(pc.if_else(whole, integers.cast(pa.string()), column.cast(pa.string())))
    try:
        text = column if column.type == pa.string() else column.cast(pa.string())
    except pa.ArrowInvalid as e:
        raise InputDataError(
            f"{where}: column {feature!r} holds bytes that are not UTF-8 ({e}). Fix the data."
        ) from None
    return blank_as_null(text)


def label_of_value(value):
    """The label kind's text of one value a JSON parser gives (None, str, bool, int,
    float), as label_text writes a column of it: for the record-by-record paths, which
    must read as the vectorised ones. An int of any size is its decimal text."""
    if value is None or isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return label_text(pa.array([value], pa.float64()), "", "").to_pylist()[0]


def string_dictionary(column):
    """A DictionaryArray of text with its dictionary as string (from large_string), or
    None when it is not one, or its dictionary holds a null (Arrow allows it: the rows
    pointing there would be missing without counting as nulls)."""
    if not isinstance(column, pa.DictionaryArray) or not _is_text(column.type.value_type) or column.dictionary.null_count:
        return None
    if column.type.value_type == pa.string():
        return column
    return pa.DictionaryArray.from_arrays(column.indices, column.dictionary.cast(pa.string()))


def blank_as_null(column):
    """Empty strings as nulls: one notion of a missing string whatever the format (CSV
    writes a missing string as an empty field, Parquet/JSON/tf.Example as null). Of a
    dictionary-encoded column, the rows whose entry is "" (found in the dictionary)."""
    if pa.types.is_dictionary(column.type) and column.type.value_type == pa.string():
        blank = pc.equal(column.dictionary, "")
        if len(column) == 0 or not pc.any(blank).as_py():
            return column
        rows = pc.is_in(column.indices, value_set=pc.indices_nonzero(blank).cast(column.indices.type))
        indices = pc.if_else(rows, pa.scalar(None, column.indices.type), column.indices)
        return pa.DictionaryArray.from_arrays(indices, column.dictionary)
    if column.type != pa.string() or len(column) == 0:
        return column
    blank = pc.equal(column, "")
    if not pc.any(blank).as_py():
        return column
    return pc.if_else(blank, pa.scalar(None, pa.string()), column)


class UnreadableValue(InputDataError):
    """A value of a multivalent number field (text split on its separator) that is not a
    number by kdp_beam.numbers' rule: ``row``, its row (0-based) in the column cast,
    ``problem`` (the value and why), ``detail`` (the column and the problem), for readers
    to name the row of their file (``message``) or to skip it."""

    def __init__(self, where, row, feature, problem):
        self.row, self.problem = row, problem
        self.detail = f"column {feature!r}: {problem}"
        super().__init__(self.message(where, row + 1))

    def message(self, where, row):
        """The error naming `where` and its 1-based `row` there."""
        return f"{where}: row {row}, {self.detail}. Fix the value, or declare a string feature."


def cast_list(column, kind, feature, where, separator=None):
    """A multivalent feature's column (`kind` "list<KIND>") as ``pa.list_(T)``, T its
    values' ARROW_TYPES, normalised: the one rule for every reader and the analysis.

    - a list column (list, large_list, fixed_size_list): its values by the scalar rule of
      cast_column (int widths widen, float32 exactly, bytes must be UTF-8, booleans as
      "true" / "false");
    - text or bytes: split on `separator` (default: the kind's own when it is a ListKind,
      else "|"), values not trimmed; number
      values by kdp_beam.numbers' rule as CSV numbers are (number_from_text: spaces and
      tabs trimmed, NULL_VALUES missing), one that is not a number raising
      UnreadableValue (naming its row) rather than becoming a silent NaN;
    - a row with no values (null, an empty list, empty text) is ``[]``, never null; an
      empty string value is a null value (as a scalar string's), NaN stays NaN.

    Raises InputDataError naming the feature and `where` when read_problem refuses the
    column. Idempotent: a column it gave is returned as it is, at the cost of a null
    count (and for strings a search for "").
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    check_readable(column.type, kind, feature, where)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    element, target = element_kind(kind), ARROW_TYPES[kind]
    if _normalised(column, target):
        return column
    if pa.types.is_null(column.type):
        return pa.ListArray.from_arrays(pa.array(np.zeros(len(column) + 1, np.int32)), pa.array([], target.value_type))
    if _is_text(column.type) or _is_bytes(column.type):
        separator = list_separator(kind, separator)
        text = blank_as_null(cast_column(column, "string", feature, where))  # "" : no values
        lists = pc.split_pattern(text, separator)
        if element == "string":
            values = lists.flatten()
        else:
            values = _numbers_of_text(text, lists, element, feature, where, separator)
    else:
        if not pa.types.is_list(column.type):  # large_list, fixed_size_list
            column = column.cast(pa.list_(column.type.value_type))
        lists, values = column, column.flatten()
        values = cast_column(values, element, feature, where)
    lengths = list_lengths(lists)
    offsets = np.zeros(len(lengths) + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), blank_as_null(values))


def _normalised(column, target):
    """Whether a column is already cast_list's: of the type, no null row, no "" value,
    and its values buffer exactly its rows' (no slice)."""
    if column.type != target or column.null_count or column.offset:
        return False
    values = column.values
    if len(values) != column.offsets[-1].as_py():
        return False
    return not (pa.types.is_string(values.type) and len(values) and pc.any(pc.equal(values, "")).as_py())


def list_separator(kind, separator=None):
    """What splits a list kind's text: the separator given, else the ListKind's, else the
    declarations' default ("|")."""
    return separator or getattr(kind, "separator", None) or MULTIVALENT_OPTIONS["separator"]


def number_from_text(text, arrow_type):
    """Text as the numeric type, as a CSV number is read: NULL_VALUES are null, spaces
    and tabs around a number are trimmed; the rest by kdp_beam.numbers (pa.ArrowInvalid
    for a value that breaks it)."""
    null = pc.is_in(text, value_set=pa.array(NULL_VALUES))
    text = pc.if_else(null, pa.scalar(None, pa.string()), pc.utf8_trim(text, " \t"))
    return numbers.cast_text(text, arrow_type)


def number_fix(kind):
    """What to declare instead when a field of a number column (of `kind`) does not read
    as a number, for "Fix the value, or ..."."""
    if isinstance(kind, LabelKind) and kind.role == "label":
        return 'declare label_type "binary" or "multiclass" (or leave it out, to infer it) to read the label as classes'
    return "declare the column as a string feature"


def reads_as_number(text, arrow_type):
    """Whether one text value is null or a number of the type by number_from_text's rule
    (for the record-by-record paths, which must judge as the vectorised one)."""
    return text in NULL_VALUES or numbers.reads_as(text.strip(" \t"), arrow_type)


_NUMBER_NAMES = {"float": "a float", "integer": "an integer"}


def _numbers_of_text(text, lists, element, feature, where, separator):
    """The values of a multivalent number field (`text`, split into `lists`) as numbers,
    or UnreadableValue naming the first that is not one (found value by value: only for
    bad data)."""
    arrow_type = ARROW_TYPES[element]
    values = lists.flatten()
    try:
        return number_from_text(values, arrow_type)
    except pa.ArrowInvalid:
        pass
    texts = values.to_pylist()
    index = next(i for i, value in enumerate(texts) if value is not None and not reads_as_number(value, arrow_type))
    starts = np.cumsum(list_lengths(lists))
    row = int(np.searchsorted(starts, index, side="right"))
    problem = (
        f"cannot read {texts[index]!r:.100} (a value of {text[row].as_py()!r:.100} split on {separator!r}) "
        f"as {_NUMBER_NAMES[element]}"
    )
    raise UnreadableValue(where, row, feature, problem)


def unreadable_rows(column, kind, separator=None):
    """Per row of a column of a multivalent feature: whether it is text with a value
    that is not a number (skip mode's record-level check, run only after cast_list raised
    UnreadableValue: value by value)."""
    source = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    if element_kind(kind) == "string" or not (_is_text(source) or _is_bytes(source)):
        return np.zeros(len(column), dtype=bool)
    arrow_type = ARROW_TYPES[element_kind(kind)]
    text = cast_column(column, "string", "", "")
    separator = list_separator(kind, separator)
    return np.array(
        [
            field is not None and not all(reads_as_number(v, arrow_type) for v in field.split(separator))
            for field in text.to_pylist()
        ],
        dtype=bool,
    )
