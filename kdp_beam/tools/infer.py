"""kdp-beam infer: propose a declaration per column from a sample of the data.

Each choice is written with its reason beside it (the features JSON's "notes", which the
analysis ignores), ready to edit and pass to `kdp-beam analyze`. A column with no value
in the sample, or of structs (or lists of lists), is left out with a note; otherwise every
type with an infer_rank is asked in that order (FeatureType.propose, given a ColumnSample),
and the first to propose itself declares it. The rules are each type's own;
docs/feature-types.md lists them.

A list column (Parquet, JSON arrays, a tf.Example feature with more than one value in a
record) is proposed ``"multivalent": true``, its type asked about all of its values (the
types that take multivalent only). So is a string column whose values mostly (over half
of those not empty) hold one of SEPARATORS, unless its split values read as free text,
with that ``"separator"``; its values are typed as numbers when they all read as numbers.

With a label (``--label COLUMN``), that column is not a feature: the proposal names it
(``"label"``) and proposes its ``"label_type"`` by scikit-learn's type_of_target rule on
the sampled labels, read as the analysis reads them (their text), by the analysis' own
functions (kdp_beam.analyzers.labels): every label a number and some not whole,
regression; at most two distinct labels, binary; else multiclass. Labels analyze refuses
(one number spelled two ways, "1" and "1.0"; "nan" among numbers) are refused here too.

The sample is the first rows of the files in order. A CSV sample is typed by pyarrow's
inference over all of its rows (not its first block only), so a column that changes type
within the sample gets the type that holds all of it. An empty file adds no rows; a
record that cannot be read (bad UTF-8, a wrong field count) is an error naming its file
and line, as analyze would report it.
"""

import functools
import io
import itertools
import json
import re

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from apache_beam.io.filesystems import FileSystems

from kdp_beam.analyzers.dates import parse_dates
from kdp_beam.analyzers.labels import check_classes, inferred_type
from kdp_beam.columns import (
    NULL_VALUES,
    blank_as_null,
    cast_column,
    is_list,
    label_of_value,
    list_lengths,
    number_from_text,
    read_problem,
)
from kdp_beam.errors import InputDataError
from kdp_beam.feature_types import registered_types
from kdp_beam.io import infer_format
from kdp_beam.io.csv import locate_bad_record, read_header
from kdp_beam.io.files import matched_paths, open_input, require_matches
from kdp_beam.io.parquet import open_parquet
from kdp_beam.numbers import reads_as
from kdp_beam.output_files import write_output_file

DEFAULT_SAMPLE_ROWS = 100_000
# What infer looks for in strings to propose a multivalent feature split on it.
SEPARATORS = ("|", ";")


def infer_features(file_pattern, input_format=None, sample_rows=DEFAULT_SAMPLE_ROWS, label=None):
    """{"features": {name: declaration}, "notes": {name: reason}, "sampled": which rows}
    from a sample; with a `label` column, also {"label": label, "label_type": proposed}
    (no label_type when the sample holds no label: the analysis infers it)."""
    require_matches(file_pattern)
    input_format = input_format or infer_format(file_pattern)
    if input_format not in _READERS:
        raise InputDataError(f"infer reads {', '.join(_READERS)} files, not {input_format}")
    read = functools.partial(_READERS[input_format], label=label)
    sample, files, more = _sample(file_pattern, read, sample_rows)
    if label is not None and label not in sample.column_names:
        raise InputDataError(f"the label {label!r} is not a column of {file_pattern!r} (columns: {sample.column_names})")
    features, notes, label_type = {}, {}, None
    for name in sample.column_names:
        if name == label:
            label_type, notes[name] = _label_type(name, sample.column(name).combine_chunks())
            continue
        declaration, note = _declare(name, sample.column(name).combine_chunks(), sample.num_rows)
        notes[name] = note
        if declaration is not None:
            features[name] = declaration
    if not features:
        reasons = "; ".join(f"{name}: {note}" for name, note in notes.items())
        raise InputDataError(f"no column of {file_pattern!r} can be proposed ({reasons})")
    sampled = f"the first {sample.num_rows:,} rows of {files:,} file{'s' * (files != 1)}"
    if more:  # the rest was not looked at: a rarer category or a wider range may be there
        sampled += " (--sample-rows; the data has more rows, not looked at)"
    proposal = {"features": features, "notes": notes, "output_mode": "concat"}
    if label is not None:
        proposal["label"] = label
        if label_type is not None:
            proposal["label_type"] = label_type
    return {**proposal, "sampled": sampled}


def _sample(file_pattern, read, sample_rows):
    """(up to `sample_rows` rows from the files in order, the files' types unified (int64
    and double become double); how many files they come from; whether the data has more
    rows). One row more than the sample is asked for, to know whether there are more."""
    tables, rows = [], 0
    for path in matched_paths(file_pattern):
        table = read(path, sample_rows + 1 - rows)
        if table is None:
            continue  # an empty file: no columns, no rows
        _refuse_duplicates(path, table.column_names)
        tables.append((path, table))
        rows += table.num_rows
        if rows > sample_rows:
            break
    if not rows:
        raise InputDataError(f"no rows in {file_pattern!r} to infer from (empty or header-only files)")
    return _unified(tables).slice(0, sample_rows), len(tables), rows > sample_rows


def _refuse_duplicates(path, names):
    seen = set()
    for name in names:
        if name in seen:
            raise InputDataError(
                f"{path}: the column name {name!r} appears twice in the file; kdp_beam reads "
                "columns by name: rename one"
            )
        seen.add(name)


def _unified(tables):
    """One table of the files' samples; InputDataError naming the column and two files
    whose types cannot be unified."""
    try:
        return pa.concat_tables([table for _, table in tables], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        refused = e
    first = {}
    for path, table in tables:
        for field in table.schema:
            first_path, first_type = first.setdefault(field.name, (path, field.type))
            try:
                pa.unify_schemas(
                    [pa.schema([(field.name, first_type)]), pa.schema([field])], promote_options="permissive"
                )
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                raise InputDataError(
                    f"column {field.name!r} is {first_type} in {first_path} but {field.type} in "
                    f"{path}; infer from files that agree, or declare that column by hand"
                ) from None
    raise InputDataError(f"the sampled files cannot be read as one table ({refused}); infer from one file")


def _read_csv(path, limit, label=None):
    """About `limit` rows (or more) of a CSV file, typed by pyarrow's inference over all of
    them (the `label` column: its text, as the reader reads it); None for an empty file."""
    header = read_header(path)
    if header is None:
        return None
    _refuse_duplicates(path, header)
    # Read as text first: pyarrow's streaming reader types columns from its first block and
    # fails on a later one that does not fit; the whole sample is typed below.
    # Raw text (NULL_VALUES made null below, but for the label: "NA" is a class there).
    convert = pa_csv.ConvertOptions(column_types={name: pa.string() for name in header}, strings_can_be_null=False)
    batches, rows = [], 0
    with open_input(path) as raw:  # decompressed; a file cut short is an error
        try:
            reader = pa_csv.open_csv(
                raw,
                parse_options=pa_csv.ParseOptions(newlines_in_values=True),
                convert_options=convert,
            )
            for batch in reader:
                batches.append(batch)
                rows += batch.num_rows
                if rows >= limit:
                    break
        except (pa.ArrowInvalid, UnicodeDecodeError) as e:
            # every column is read (as text), and so checked: its bytes must be UTF-8
            problem = locate_bad_record(path, header, dict.fromkeys(header, "string"), e)
            raise InputDataError(f"{problem}. infer stops at a record it cannot read: fix it") from None
    raw = pa.Table.from_batches(batches, reader.schema).slice(0, limit)
    text = pa.table({
        name: column if name == label else pc.if_else(pc.is_in(column, pa.array(NULL_VALUES)), pa.scalar(None, pa.string()), column)
        for name, column in zip(raw.column_names, raw.columns)
    })
    typed = io.BytesIO()
    pa_csv.write_csv(text, typed)  # strings quoted, nulls empty: read back, typed as one block
    table = pa_csv.read_csv(
        pa.py_buffer(typed.getvalue()),
        # A row of one null is an empty line there (one column): still a row of the sample.
        parse_options=pa_csv.ParseOptions(ignore_empty_lines=False),
        convert_options=pa_csv.ConvertOptions(null_values=[""], strings_can_be_null=True),
    )
    # Codes such as 007 and 0042 type as integers, but as integers 007 is 7: their text is
    # the value. _declare proposes strings for them, saying why.
    for index, field in enumerate(table.schema):
        if field.name == label or (pa.types.is_integer(field.type) and pc.any(_leading_zero(text.column(field.name))).as_py()):
            table = table.set_column(index, field.name, text.column(field.name))
    return table


def _leading_zero(strings):
    """Whether each string is an integer written with a leading zero (007, -01)."""
    return pc.match_substring_regex(pc.utf8_trim_whitespace(strings), r"^[-+]?0\d")


def _read_parquet(path, limit, label=None):
    """About `limit` rows (or more) of a Parquet file, typed as stored."""
    with FileSystems.open(path) as stream:
        parquet = open_parquet(stream, path)
        _refuse_duplicates(path, parquet.schema_arrow.names)
        batches, rows = [], 0
        for batch in parquet.iter_batches():
            batches.append(batch)
            rows += batch.num_rows
            if rows >= limit:
                break
    return pa.Table.from_batches(batches) if batches else parquet.schema_arrow.empty_table()


def _read_json_lines(path, limit, label=None):
    """The first `limit` JSON objects of a JSON Lines file, parsed by Python (pyarrow's
    parser crashes on some lines: docs/reliability.md); lines that are not objects are
    left out of the sample. The `label`'s values as their text, as the reader reads them
    (strings, numbers and booleans alike)."""
    objects = []
    with open_input(path) as stream:  # decompressed; a file cut short is an error
        for line in stream:
            try:
                value = json.loads(line.decode("utf-8")) if line.strip() else None
            except (UnicodeDecodeError, ValueError, RecursionError):
                continue
            if isinstance(value, dict):
                if label in value and not isinstance(value[label], (list, dict)):
                    value[label] = label_of_value(value[label])
                objects.append(value)
                if len(objects) >= limit:
                    break
    try:
        return pa.Table.from_pylist(objects)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        refused = e
    for key in dict.fromkeys(key for value in objects for key in value):
        try:
            pa.array([value.get(key) for value in objects])
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise InputDataError(
                f"{path}: key {key!r} holds values of different types ({e}); declare it by hand"
            ) from None
    raise InputDataError(f"{path}: the sampled objects cannot be read as one table ({refused})")


def _read_tfrecord(path, limit, label=None):
    """The first `limit` tf.Example records of a TFRecord file, decoded with the types
    they hold: a feature with more than one value in a record is a list column, the
    others one value (or null) per row; None for an empty file."""
    from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

    from kdp_beam.io.tfrecord import first_values, read_records

    records = [record for _, _, record in itertools.islice(read_records(path), limit)]
    if not records:
        return None
    try:
        decoded = ExamplesToRecordBatchDecoder().DecodeBatch(records)
    except Exception as e:  # tfx_bsl raises plain RuntimeError/ValueError
        raise InputDataError(
            f"{path}: the sampled records do not decode as tf.Example ({str(e)[:200]}); declare the features by hand"
        ) from None
    columns = {}
    for name in decoded.schema.names:
        lists = decoded.column(name)
        columns[name] = lists if list_lengths(lists).max(initial=0) > 1 else first_values(lists)
    return pa.table(columns)


def _label_type(name, column):
    """(the proposed label_type or None, why) of the sampled label column, by
    scikit-learn's type_of_target rule on its values read as the analysis reads them
    (kdp_beam.columns' label kind: text; missing ones left out)."""
    problem = read_problem(column.type, "label")
    if problem is not None:
        raise InputDataError(f"the label {name!r} is {column.type}: {problem}")
    labels = cast_column(column, "label", name, "the sample").drop_null()
    if not len(labels):
        return None, "the label: no value in the sample; label_type left out, to be inferred from the data"
    classes = pc.unique(labels).to_pylist()
    label_type = inferred_type(classes)  # the analysis' rule, so that what infer proposes it accepts
    seen = f"{len(classes):,} distinct in {len(labels):,} labels"
    if label_type == "regression":
        return "regression", f"the label: numbers, some not whole ({seen}): regression"
    check_classes(name, classes)
    if label_type == "binary":
        return "binary", f"the label: {seen}: binary"
    numbers = all(reads_as(text, pa.float64()) for text in classes)
    what = "whole numbers" if numbers else "classes"
    caveat = '; if they measure a quantity, declare "regression"' if numbers else ""
    return "multiclass", f"the label: {what} ({seen}): multiclass{caveat}"


_READERS = {"csv": _read_csv, "parquet": _read_parquet, "jsonl": _read_json_lines, "tfrecord": _read_tfrecord}


def _declare(name, column, rows):
    """(declaration or None, reason) for one column of the sample: the first type, in
    infer_rank order, that proposes itself; for a list column (or strings split by a
    separator), the first that takes multivalent."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.dictionary_decode(), kind.value_type
    column, kind = _small(column), _small(column).type
    if is_list(kind):
        if not pa.types.is_nested(kind.value_type):
            return _declare_list(name, column, rows)
    if pa.types.is_nested(kind):
        return None, (
            f"nested values ({kind}) are not supported: a feature holds one value per row, or a list "
            "of values (multivalent); left out: flatten it into columns to use it"
        )
    text = blank_as_null(column)
    values = text.drop_null()
    split = _separated(name, text, rows)
    if split is not None:
        return split
    sample = ColumnSample(name, kind, values)
    if sample.n == 0:
        return None, f"no value in {rows:,} sampled rows: left out, declare it by hand"
    for feature_type in _ranked():
        proposal = feature_type.propose(sample)
        if proposal is not None:
            return proposal
    if sample.is_text_kind and sample.text is None:
        return None, f"bytes that are not UTF-8 text ({sample.share}): left out (kdp_beam reads strings as UTF-8)"
    return None, f"type {kind} is not supported by inference: declare it by hand"


def _small(values):
    """Large strings and bytes (tf.Example's) as strings and bytes, which types read."""
    if pa.types.is_large_string(values.type):
        return values.cast(pa.string())
    if pa.types.is_large_binary(values.type):
        return values.cast(pa.binary())
    return values


def _ranked(multivalent=False):
    """The types infer asks, in infer_rank order (`multivalent`: those that take it)."""
    ranked = sorted((t for t in registered_types() if t.infer_rank is not None), key=lambda t: t.infer_rank)
    return [t for t in ranked if not multivalent or "multivalent" in t.options]


def _declare_list(name, lists, rows, separator=None):
    """(declaration or None, reason) for a list column (or strings split on `separator`):
    multivalent, typed by all of its values."""
    if not pa.types.is_list(lists.type):
        lists = lists.cast(pa.list_(lists.type.value_type))
    lengths = pc.list_value_length(lists).fill_null(0)
    values = blank_as_null(_small(lists.flatten())).drop_null()
    if separator is not None:  # numbers written as text: typed as the readers will read them
        values = _as_numbers(values)
    sample = ColumnSample(name, values.type, values)
    if sample.n == 0:
        return None, f"lists with no value in {rows:,} sampled rows: left out, declare it by hand"
    per_row = f"{pc.mean(lengths).as_py():.1f} values per row, up to {pc.max(lengths).as_py():,}"
    where = "a list per row" if separator is None else f"values split on {separator!r}"
    for feature_type in _ranked(multivalent=True):
        proposal = feature_type.propose(sample)
        if proposal is not None:
            declaration, reason = proposal
            declaration = {"type": declaration} if isinstance(declaration, str) else dict(declaration)
            declaration["multivalent"] = True
            if separator is not None and separator != feature_type.options["separator"]:
                declaration["separator"] = separator
            return declaration, f"{where} ({per_row}): multivalent; its values: {reason}"
    return None, f"{where} of type {values.type} ({per_row}): no type proposes itself for the values; declare it by hand"


def _separated(name, text, rows):
    """_declare_list's proposal for strings (empty ones null) that mostly hold a separator
    (SEPARATORS, in order) splitting them into values that are not free text, else None."""
    if not pa.types.is_string(text.type) or text.null_count == len(text):
        return None
    for separator in SEPARATORS:
        holds = pc.mean(pc.match_substring(text, separator).cast(pa.int8())).as_py()  # of the non-empty
        if holds <= 0.5:
            continue
        # Every row, an empty one too (no values, as the readers read it): its values per row
        # are the analysis' and a list column's.
        lists = pc.split_pattern(text, separator)
        words = pc.list_value_length(pc.utf8_split_whitespace(blank_as_null(lists.flatten()).drop_null()))
        if len(words) and pc.mean(words).as_py() >= 3:
            continue  # sentences that happen to hold it: text
        declaration, reason = _declare_list(name, lists, rows, separator)
        return declaration, f"{holds:.0%} of the values hold {separator!r}: {reason}"
    return None


def _as_numbers(text):
    """Split text values as integers or floats when every one reads as such (NULL_VALUES
    left out), else as they are (codes with leading zeros too: 007 is not 7)."""
    text = text.filter(pc.invert(pc.is_in(text, value_set=pa.array(NULL_VALUES))))
    if pc.any(_leading_zero(text)).as_py():
        return text
    for arrow_type in (pa.int64(), pa.float64()):
        try:
            return number_from_text(text, arrow_type)
        except pa.ArrowInvalid:
            continue
    return text


# id, user_id, user-id, userId, USER_ID, key, uuid: the last word of the name.
_IDENTIFIER_NAME = re.compile(r"(?:^|[_\-\s.])(?i:id|key|uuid)$|(?<=[a-z])(?:Id|ID|Key|KEY|Uuid|UUID)$")


class ColumnSample:
    """What a type needs to propose itself for a sampled column: its name, Arrow `kind`,
    its non-null `values`, `n` of them, `distinct`, and `share` ("12 distinct in 340
    values"); for text, computed once when first asked."""

    def __init__(self, name, kind, values):
        self.name, self.kind, self.values = name, kind, values
        self.n = len(values)
        self.distinct = pc.count_distinct(values).as_py() if self.n else 0
        self.share = f"{self.distinct:,} distinct in {self.n:,} values"

    @property
    def is_text_kind(self):
        return pa.types.is_string(self.kind) or pa.types.is_binary(self.kind)

    @functools.cached_property
    def text(self):
        """The values as strings, or None when they are not text (or not UTF-8)."""
        if not self.is_text_kind:
            return None
        try:
            return self.values.cast(pa.string())
        except pa.ArrowInvalid:
            return None

    @functools.cached_property
    def iso_date_share(self):
        """The share of the text values that parse as ISO dates (None: not text)."""
        if self.text is None:
            return None
        return parse_dates(self.text)[1].mean()

    @functools.cached_property
    def words_per_value(self):
        return pc.list_value_length(pc.utf8_split_whitespace(self.text)).to_numpy().mean()

    @functools.cached_property
    def what(self):
        """How the text values are described: strings, or codes with leading zeros."""
        text = self.text
        if pc.any(_leading_zero(text)).as_py() and pc.all(
            pc.match_substring_regex(pc.utf8_trim_whitespace(text), r"^[-+]?\d+$")
        ).as_py():
            return "integer codes with leading zeros (007 is not 7: the zeros are part of the code), read as text"
        return "strings"

    def identifier_reason(self):
        """Why integer values look like identifiers rather than a quantity, or None."""
        if _IDENTIFIER_NAME.search(self.name):
            return "named like one"
        low, high = pc.min_max(self.values).values()
        if self.distinct == self.n and high.as_py() - low.as_py() < 2 * self.n:
            return "all distinct and dense, as row numbers"
        return None


def write_features(features, path):
    """Writes the proposal as a features JSON file (local or remote); KdpBeamError when the
    path cannot be written. What was sampled is for the person, not the declaration."""
    declaration = {key: value for key, value in features.items() if key != "sampled"}
    text = json.dumps(declaration, indent=2, ensure_ascii=False) + "\n"
    write_output_file(path, text.encode("utf-8"), "features JSON")


__all__ = ["infer_features", "write_features"]
