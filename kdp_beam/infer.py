"""kdp-beam infer: propose a declaration per column from a sample of the data.

Each choice is written with its reason beside it (the features JSON's "notes", which the
analysis ignores), ready to edit and pass to `kdp-beam analyze`. The rules, in order:

- no value in the sample: left out (declare it by hand);
- timestamps and dates (typed, or strings >= 95% parsing as ISO): date;
- floating point: float_normalized;
- integers: integer_categorical when few distinct values (<= 100, and <= 5% of the
  values); integer_hashed when they look like identifiers (the column is named like one:
  id, user_id, userId, key, uuid; or every value is distinct and they run densely, as row
  numbers do); float_normalized otherwise (a count, an amount, a Unix time);
- strings: date when >= 95% parse as ISO dates; text when they average >= 3 words and are
  mostly distinct; string_categorical when <= 1,000 distinct; string_hashed otherwise
  (num_bins: twice the distinct count, to a power of two, at most 2^16).
"""

import json
import math
import re

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from apache_beam.io.filesystems import FileSystems

from kdp_beam.analyzers.dates import parse_dates
from kdp_beam.columns import blank_as_null
from kdp_beam.errors import InputDataError
from kdp_beam.io import infer_format
from kdp_beam.io.csv import NULL_VALUES
from kdp_beam.io.files import matched_paths, open_input, require_matches
from kdp_beam.io.parquet import open_parquet

DEFAULT_SAMPLE_ROWS = 100_000
MAX_CATEGORIES = 1000
MAX_INTEGER_CATEGORIES = 100


def infer_features(file_pattern, input_format=None, sample_rows=DEFAULT_SAMPLE_ROWS):
    """{"features": {name: declaration}, "notes": {name: reason}} from a sample."""
    require_matches(file_pattern)
    input_format = input_format or infer_format(file_pattern)
    sample = _sample(file_pattern, input_format, sample_rows)
    features, notes = {}, {}
    for name in sample.column_names:
        declaration, note = _declare(name, sample.column(name).combine_chunks(), sample.num_rows)
        notes[name] = note
        if declaration is not None:
            features[name] = declaration
    if not features:
        raise InputDataError(f"no column of {file_pattern!r} has a value in the sample")
    return {"features": features, "notes": notes, "output_mode": "concat"}


def _sample(file_pattern, input_format, sample_rows):
    """Up to `sample_rows` rows from the files in order, each file typed by pyarrow's own
    inference and the files' types unified (int64 and double become double)."""
    tables, rows = [], 0
    for path in matched_paths(file_pattern):
        table = _read(path, input_format, sample_rows - rows)
        tables.append(table)
        rows += table.num_rows
        if rows >= sample_rows:
            break
    if not rows:
        raise InputDataError(f"no rows in {file_pattern!r} to infer from")
    try:
        return pa.concat_tables(tables, promote_options="permissive").slice(0, sample_rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise InputDataError(
            f"the files of {file_pattern!r} disagree on a column's type ({e}); infer from one "
            "file, or declare that column by hand"
        ) from None


def _read(path, input_format, limit):
    """About `limit` rows (or more) of a file, typed as the format or pyarrow's inference
    gives them."""
    with open_input(path) as stream:  # decompressed; a cut .gz is an error
        if input_format == "jsonl":
            return _json_objects(stream, path, limit)
        batches, rows = [], 0
        if input_format == "csv":
            options = pa_csv.ConvertOptions(null_values=NULL_VALUES, strings_can_be_null=True)
            reader = pa_csv.open_csv(stream, convert_options=options)
        elif input_format == "parquet":
            reader = open_parquet(stream, path).iter_batches()
        else:
            raise InputDataError(f"infer reads csv, parquet or jsonl, not {input_format}")
        for batch in reader:
            batches.append(batch)
            rows += batch.num_rows
            if rows >= limit:
                break
    return pa.Table.from_batches(batches) if batches else pa.table({})


def _json_objects(stream, path, limit):
    """The first `limit` JSON objects of a JSON Lines file, parsed by Python (pyarrow's
    parser crashes on some lines: docs/reliability.md); lines that are not objects are
    left out of the sample."""
    objects = []
    for line in stream:
        try:
            value = json.loads(line.decode("utf-8")) if line.strip() else None
        except (UnicodeDecodeError, ValueError):
            continue
        if isinstance(value, dict):
            objects.append(value)
            if len(objects) >= limit:
                break
    try:
        return pa.Table.from_pylist(objects)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise InputDataError(f"{path}: a key holds values of different types ({e}); declare it by hand") from None


def _declare(name, column, rows):
    """(declaration or None, reason) for one column of the sample."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.dictionary_decode(), kind.value_type
    if pa.types.is_large_string(kind):
        column, kind = column.cast(pa.string()), pa.string()
    column = blank_as_null(column)
    values = column.drop_null()
    n = len(values)
    if n == 0:
        return None, f"no value in {rows:,} sampled rows: left out, declare it by hand"
    distinct = pc.count_distinct(values).as_py()
    share = f"{distinct:,} distinct in {n:,} values"
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return "date", f"{kind} values ({share}): a date, read as ISO text"
    if pa.types.is_floating(kind):
        return "float_normalized", f"floating point ({share}): normalised with the mean and variance"
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        if distinct <= MAX_INTEGER_CATEGORIES and distinct <= 0.05 * n:
            return "integer_categorical", f"integers, {share}: few values, one-hot categories"
        why = _identifier_reason(name, values, distinct, n)
        if why:
            bins = _hash_bins(distinct)
            return (
                {"type": "integer_hashed", "num_bins": bins},
                f"integers, {share}: identifiers ({why}); hashed into {bins} bins",
            )
        return "float_normalized", f"integers, {share}: a quantity, normalised"
    if not (pa.types.is_string(kind) or pa.types.is_binary(kind)):
        return None, f"type {kind} is not supported by inference: declare it by hand"
    values = values.cast(pa.string())
    _, parsed = parse_dates(values)
    if parsed.mean() >= 0.95:
        return "date", f"{parsed.mean():.0%} of {n:,} values parse as ISO dates"
    words = pc.list_value_length(pc.utf8_split_whitespace(values)).to_numpy()
    if words.mean() >= 3 and distinct > 0.5 * n:
        return (
            {"type": "text", "max_tokens": 10_000, "output_mode": "tf_idf"},
            f"{words.mean():.1f} words per value, {share}: free text",
        )
    if distinct <= MAX_CATEGORIES:
        return "string_categorical", f"strings, {share}: categories"
    bins = _hash_bins(distinct)
    return (
        {"type": "string_hashed", "num_bins": bins},
        f"strings, {share}: too many for a vocabulary, hashed into {bins} bins",
    )


# id, user_id, user-id, userId, USER_ID, key, uuid: the last word of the name.
_IDENTIFIER_NAME = re.compile(r"(?:^|[_\-\s.])(?i:id|key|uuid)$|(?<=[a-z])(?:Id|ID|Key|KEY|Uuid|UUID)$")


def _identifier_reason(name, values, distinct, n):
    """Why integer values look like identifiers rather than a quantity, or None."""
    if _IDENTIFIER_NAME.search(name):
        return "named like one"
    low, high = pc.min_max(values).values()
    if distinct == n and high.as_py() - low.as_py() < 2 * n:
        return "all distinct and dense, as row numbers"
    return None


def _hash_bins(distinct):
    return int(min(2 ** math.ceil(math.log2(max(2 * distinct, 2))), 1 << 16))


def write_features(features, path):
    with FileSystems.create(path) as f:
        f.write((json.dumps(features, indent=2, ensure_ascii=False) + "\n").encode())


__all__ = ["infer_features", "write_features"]
