"""Fuzzing: random, mutated and generated input ends in a result or a clear kdp_beam
error, never a crash, a hang or wrong statistics; and differential tests of every reader,
whose result must equal an independent one (Python's csv and json modules,
pyarrow.parquet, TensorFlow's record reader and tf.train.Example parsing)."""

import bz2
import codecs
import copy
import csv
import datetime
import gzip as gzip_module
import hashlib
import io
import json
import os
import shutil
import sys
import zlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf
from apache_beam.io.filesystems import FileSystems
from hypothesis import HealthCheck, assume, event, example, given, settings
from apache_beam.io.filesystem import FileMetadata
from hypothesis import strategies as st

from kdp_beam.analyzers import analyze_batches
from kdp_beam.analyzers.dates import parse_dates
from kdp_beam.bundle.layout import MANIFEST
from kdp_beam.bundle.loader import load_bundle
from kdp_beam.bundle.writer import write_bundle
from kdp_beam.bad_records import BadRecord
from kdp_beam.columns import ARROW_TYPES, column_kinds, read_problem
from kdp_beam.dates import PARTS
from kdp_beam.errors import BundleError, InputDataError
from kdp_beam.io.csv import NULL_VALUES, _ReadCsvRange, _records_skipping_bad, read_header
from kdp_beam.io.jsonl import _ReadJsonRange
from kdp_beam.io.parquet import _ListRowGroups, _ReadRowGroup
from kdp_beam.io.ranges import byte_ranges
from kdp_beam.io.tfrecord import _DecodeExamples, _ReadRecords
from kdp_beam.spec import FeatureSpec
from tests.io.helpers import split_outputs
from tests.io.test_csv_numbers import csv_rule

SPEC = FeatureSpec(
    {
        "x": "float_normalized",
        "q": {"type": "float_discretized", "num_bins": 3},
        "n": "integer_categorical",
        "s": {"type": "string_categorical", "max_tokens": 4},
        "t": {"type": "text", "max_tokens": 6},
        "d": "date",
    }
)
# The number of cases comes from the hypothesis profile (tests/conftest.py).
FUZZ = settings(deadline=5000, suppress_health_check=list(HealthCheck))


# --- the bundle loader --------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_bundle(tmp_path_factory):
    table = pa.table(
        {
            "x": [1.5, 2.5, None, 4.0],
            "q": [1.0, 2.0, 3.0, 4.0],
            "n": [1, 2, 2, 2**40],
            "s": ["a", "b\n", "", "ü"],
            "t": ["the cat", "a dog", "", "cat"],
            "d": ["2024-01-02", "bad", "2020-12-31T10:00:00", None],
        }
    )
    statistics = analyze_batches(SPEC, [table.to_batches()[0]])
    directory = str(tmp_path_factory.mktemp("bundle"))
    write_bundle({"spec": SPEC.to_json(), **statistics}, directory)
    load_bundle(directory)  # valid to begin with
    return directory


def copy_bundle(source, target):
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    return target


def resign(directory, name):
    """Updates the manifest's size and sha256 of `name`, as a careless editor would."""
    manifest_path = os.path.join(directory, MANIFEST)
    manifest = json.load(open(manifest_path, encoding="utf-8"))
    data = open(os.path.join(directory, *name.split("/")), "rb").read()
    manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    open(manifest_path, "w", encoding="utf-8").write(json.dumps(manifest))


def load_outcome(directory, with_state=True):
    try:
        return load_bundle(directory, with_state=with_state)
    except BundleError as e:
        return e


@FUZZ
@given(data=st.data())
def test_mutated_bundle_files_load_or_fail_clearly(good_bundle, tmp_path_factory, data):
    directory = copy_bundle(good_bundle, str(tmp_path_factory.mktemp("m")))
    names = sorted(
        os.path.relpath(os.path.join(root, f), directory).replace(os.sep, "/")
        for root, _, files in os.walk(directory)
        for f in files
    )
    name = data.draw(st.sampled_from(names))
    path = os.path.join(directory, *name.split("/"))
    original = open(path, "rb").read()
    kind = data.draw(st.sampled_from(["flip", "truncate", "insert"]))
    at = data.draw(st.integers(0, max(len(original) - 1, 0)))
    if kind == "flip":
        mutated = original[:at] + bytes([original[at] ^ data.draw(st.integers(1, 255))]) + original[at + 1 :]
    elif kind == "truncate":
        mutated = original[:at]
    else:
        mutated = original[:at] + data.draw(st.binary(min_size=1, max_size=8)) + original[at:]
    assume(mutated != original)
    open(path, "wb").write(mutated)
    resigned = name != MANIFEST and data.draw(st.booleans())
    if resigned:
        resign(directory, name)
    outcome = load_outcome(directory)
    if name != MANIFEST and not resigned:
        assert isinstance(outcome, BundleError) and name in str(outcome)  # checksums catch it
    assert isinstance(outcome, (BundleError, type(load_bundle(good_bundle))))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2**63) | st.floats() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=6,
)


def json_paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from json_paths(child, prefix + (key,))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from json_paths(child, prefix + (i,))


@FUZZ
@given(data=st.data())
def test_consistently_edited_statistics_and_manifests_fail_clearly(good_bundle, tmp_path_factory, data):
    directory = copy_bundle(good_bundle, str(tmp_path_factory.mktemp("e")))
    name = data.draw(st.sampled_from(["statistics.json", MANIFEST]))
    path = os.path.join(directory, name)
    document = json.load(open(path, encoding="utf-8"))
    where = data.draw(st.sampled_from(list(json_paths(document))[1:]))
    edited = copy.deepcopy(document)
    parent = edited
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = data.draw(JSON_VALUES)
    open(path, "w", encoding="utf-8").write(json.dumps(edited))
    if name != MANIFEST:
        resign(directory, name)
    outcome = load_outcome(directory)  # never KeyError, TypeError, ... from the loader
    assert isinstance(outcome, (BundleError, type(load_bundle(good_bundle))))


# --- the CSV reader -----------------------------------------------------------------------

CSV_SPEC = FeatureSpec({"x": "float_normalized", "n": "integer_categorical", "s": "string_categorical"})
VALID = 'x,n,s\n1.5,1,a\n,2,"b,c"\n-3e2,3,"q""uote"\n4,,\n'
PIECES = [b'"', b",", b"\n", b"\r\n", b"\r", b"\xff", b"\xc3", b"1", b"e", b"nan", b"NA", b" ", b"x", b"-", b"\x00"]


def python_rows(data):
    """An independent reading: Python's csv module over the decoded text (None when it
    cannot: bad UTF-8 or malformed quoting)."""
    try:
        text = data.decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except (UnicodeDecodeError, csv.Error):
        return None
    return [r for r in rows[1:] if r]


def edit_lists(pieces):
    """Up to 4 insertions of a piece, or deletions of 2 bytes, at any position."""
    edit = st.tuples(st.integers(0, 10_000), st.sampled_from(["insert", "delete"]), st.sampled_from(pieces))
    return st.lists(edit, max_size=4)


def mutated_file(tmp_path_factory, valid, edits, name):
    """(path, bytes) of `valid` with the edits applied, written to a new file."""
    data = valid.encode()
    for position, kind, piece in edits:
        at = position % (len(data) + 1)
        data = data[:at] + piece + data[at:] if kind == "insert" else data[:at] + data[at + 2 :]
    path = str(tmp_path_factory.mktemp("fuzz") / name)
    open(path, "wb").write(data)
    return path, data


def read_or_clear_error(dofn, element, skip):
    """(batches, bad records) a reader's DoFn yields, or None when it raised InputDataError;
    any other exception fails the test."""
    try:
        elements = list(dofn.process(element))
    except InputDataError:
        event("clear error")
        return None
    batches, bad = split_outputs(elements)
    assert skip or not bad
    return batches, bad


@FUZZ
@given(edits=edit_lists(PIECES), skip=st.booleans())
# Found by fuzzing: a header the strict csv module refuses (a stray quote) crashed the
# record-by-record path.
@example(edits=[(0, "insert", b'"'), (0, "insert", b'"'), (0, "insert", b",")], skip=False)
@example(edits=[(0, "insert", b'"'), (0, "insert", b'"'), (32, "insert", b'"')], skip=True)
def test_mutated_csv_reads_right_or_fails_clearly(tmp_path_factory, edits, skip):
    path, data = mutated_file(tmp_path_factory, VALID, edits, "f.csv")
    outcome = read_or_clear_error(_ReadCsvRange(CSV_SPEC, 64, "skip" if skip else "fail"), (path, 0, None), skip)
    if outcome is None:
        return  # a clear error, naming the file
    batches, bad = outcome
    rows = python_rows(data)
    if rows is None or (bad and any(b.reason == "bad_utf8" for b in bad)):
        return  # the independent reader cannot decode it: nothing to compare
    table = pa.Table.from_batches(batches) if batches else None
    got_rows = table.num_rows if table is not None else 0
    assert got_rows + len(bad) == len(rows)  # every record is read or kept
    event("rows counted")
    if bad or table is None:
        return
    event("values compared")
    # Read right: the same values as the independent reading.
    first = data.decode("utf-8-sig").splitlines()[0].split(",")
    if first != ["x", "n", "s"]:
        return
    assert table.column("x").to_pylist() == pytest.approx([csv_rule(r[0], pa.float64())[1] for r in rows], nan_ok=True)
    assert table.column("n").to_pylist() == [csv_rule(r[1], pa.int64())[1] for r in rows]
    assert table.column("s").to_pylist() == [r[2] for r in rows]


SPLIT_VALID = VALID + '5,5,"multi\nline"\n6,6,f\n7,7,"a\r\nb"\n8,8,h\n'


def byte_ranges_of(path, size, split_size):
    return [(path, start, min(start + split_size, size)) for start in range(0, size, split_size)]


def read_ranges(dofn, ranges, skip):
    """Rows and bad-record reasons of reading the ranges in order, or None for a clear error."""
    rows, bad = [], []
    for element in ranges:
        outcome = read_or_clear_error(dofn, element, skip)
        if outcome is None:
            return None
        rows += [row for batch in outcome[0] for row in batch.to_pylist()]
        bad += [b.reason for b in outcome[1]]
    return rows, sorted(bad)


def nan_as_text(outcome):
    """(rows, bad) with NaN as "nan", so equal readings compare equal."""
    rows, bad = outcome
    return [{k: "nan" if v != v else v for k, v in row.items()} for row in rows], bad


@FUZZ
@given(edits=edit_lists(PIECES), split_size=st.integers(1, 60), skip=st.booleans())
# Found by fuzzing: pyarrow reads " 6" as 6, the record-by-record path refused it; the
# record-by-record path did not take a lone \r as a line end, as pyarrow does.
@example(edits=[(231, "insert", b" "), (211, "insert", b",")], split_size=29, skip=True)
@example(edits=[(72, "insert", b","), (6, "insert", b","), (2144, "insert", b","), (3649, "insert", b"\r")], split_size=29, skip=True)
def test_split_csv_reads_equal_the_whole_read_or_fail_clearly(tmp_path_factory, edits, split_size, skip):
    path, data = mutated_file(tmp_path_factory, SPLIT_VALID, edits, "f.csv")
    reader = _ReadCsvRange(CSV_SPEC, 64, "skip" if skip else "fail")
    whole = read_ranges(reader, [(path, 0, None)], skip)
    split = read_ranges(reader, byte_ranges_of(path, len(data), split_size) or [(path, 0, None)], skip)
    if python_rows(data) is None:
        return  # malformed quoting, which splitting may cut differently (docs/scaling.md)
    if split is None:
        event("split: clear error")  # e.g. a boundary inside a quoted newline
        return
    assert whole is not None
    assert nan_as_text(split) == nan_as_text(whole)
    event("split equals whole")


def quoted_field(text, tail):
    """A field as CSV: plain, quoted, or quoted then followed by more text (`"ab"c`)."""
    if tail is None:
        return text if not any(c in text for c in ',"\n\r') else '"' + text.replace('"', '""') + '"'
    return '"' + text.replace('"', '""') + '"' + tail


FIELD_TEXT = st.text(alphabet=list('ab1.,"\n '), max_size=4)
FIELD_TAIL = st.none() | st.text(alphabet=list("ab1. "), min_size=1, max_size=3)


@FUZZ
@given(rows=st.lists(st.tuples(*[st.tuples(FIELD_TEXT, FIELD_TAIL)] * 3), min_size=1, max_size=6))
def test_skip_mode_reads_malformed_quoting_as_pyarrow_does(tmp_path_factory, rows):
    """A quoted value followed by more text (`"ab"c`), which Python's strict csv refuses:
    the record-by-record path of skip mode reads it as pyarrow's fast path does."""
    text = "x,n,s\n" + "".join(",".join(quoted_field(t, tail) for t, tail in row) + "\n" for row in rows)
    path = str(tmp_path_factory.mktemp("fuzz") / "f.csv")
    open(path, "w", encoding="utf-8", newline="").write(text)
    spec = FeatureSpec({"x": "string_categorical", "n": "string_categorical", "s": "string_categorical"})
    fast = read_ranges(_ReadCsvRange(spec, 64, "fail"), [(path, 0, None)], False)
    assume(fast is not None)
    event("malformed" if python_rows(text.encode()) is None else "well formed")
    slow = list(_records_skipping_bad(path, read_header(path), 0, None, 0, column_kinds(spec)))
    assert not [e for e in slow if isinstance(e, BadRecord)]
    assert [r for b in slow for r in b.to_pylist()] == fast[0]


# --- the Parquet reader -------------------------------------------------------------------

TIME_ZONES = [None, "UTC", "Europe/Paris", "+05:30"]
SECONDS = st.integers(-3 * 10**9, 3 * 10**9)  # 1875 to 2065: Python's datetime reads them


def integer_type(arrow_type):
    info = np.iinfo(arrow_type.to_pandas_dtype())
    return arrow_type, st.integers(int(info.min), int(info.max))


def timestamp_type(unit, tz):
    scale = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[unit]
    return pa.timestamp(unit, tz=tz), st.builds(lambda s, f: s * scale + f % scale, SECONDS, st.integers(0, 10**9))


TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=4)  # UTF-8 only
# (Arrow type, values) of the columns a Parquet file may hold.
PARQUET_COLUMNS = [
    *(integer_type(t) for t in (pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64())),
    (pa.float16(), st.floats(width=16)),
    (pa.float32(), st.floats(width=32)),
    (pa.float64(), st.floats()),
    (pa.bool_(), st.booleans()),
    (pa.string(), TEXT),
    (pa.large_string(), TEXT),
    (pa.dictionary(pa.int32(), pa.string()), st.sampled_from(["a", "b", "", "é"])),
    (pa.binary(), st.binary(max_size=3)),
    (pa.null(), st.none()),
    (pa.date32(), st.integers(-10**5, 10**5)),
    (pa.date64(), st.integers(-10**5, 10**5).map(lambda d: d * 86_400_000)),
    (pa.list_(pa.int64()), st.lists(st.integers(0, 3), max_size=2)),
    *(timestamp_type(unit, tz) for unit in ("s", "ms", "us", "ns") for tz in TIME_ZONES),
]
DECLARED = {"float": "float_normalized", "integer": "integer_categorical", "string": "string_categorical", "date": "date"}


@st.composite
def parquet_tables(draw):
    """(table, {name: kind declared}): up to 4 columns of any PARQUET_COLUMNS type with
    nulls, sometimes two of one name, and the kinds declared for some of them."""
    rows = draw(st.integers(0, 12))
    names, arrays, kinds = [], [], {}
    for i in range(draw(st.integers(1, 4))):
        arrow_type, values = draw(st.sampled_from(PARQUET_COLUMNS))
        column = draw(st.lists(st.none() | values, min_size=rows, max_size=rows))
        storage = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
        if pa.types.is_timestamp(storage) or pa.types.is_date(storage):
            array = pa.array(column, pa.int64() if storage != pa.date32() else pa.int32()).cast(storage)
        else:
            array = pa.array(column, storage)
        arrays.append(array.dictionary_encode() if pa.types.is_dictionary(arrow_type) else array)
        names.append(draw(st.sampled_from(names)) if names and draw(st.integers(0, 5)) == 0 else f"c{i}")
        if names[-1] not in kinds and draw(st.integers(0, 3)):  # mostly a kind that reads it
            readable = [kind for kind in DECLARED if read_problem(arrow_type, kind) is None]
            kinds[names[-1]] = draw(st.sampled_from(readable if readable and draw(st.integers(0, 7)) else list(DECLARED)))
    assume(kinds)
    return pa.Table.from_arrays(arrays, names=names), kinds


def calendar_time(value, arrow_type):
    """A timestamp's or date's time to the second by Python's datetime (with a zone: in
    UTC, whatever the zone), from its stored integer: the independent reading of a typed
    date."""
    if pa.types.is_date(arrow_type):
        days = value // 86_400_000 if arrow_type == pa.date64() else value
        return datetime.datetime(1970, 1, 1) + datetime.timedelta(days=days)
    per_second = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[arrow_type.unit]
    return datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=value // per_second)


def expected_parquet_column(column, kind):
    """The declared column as the documented rule reads it (its values, or None when the
    file must be refused), from pyarrow's own reading of the file."""
    arrow_type = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    values = column.to_pylist()
    is_int, is_float = pa.types.is_integer(arrow_type), pa.types.is_floating(arrow_type)
    if pa.types.is_null(arrow_type):
        return values
    if kind == "float" and (is_int or is_float):
        return [None if v is None else float(v) for v in values]
    if kind == "integer" and is_int:
        return values if all(v is None or -(2**63) <= v < 2**63 for v in values) else None
    if kind in ("string", "date") and (pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)):
        return values
    if kind in ("string", "date") and pa.types.is_binary(arrow_type):
        try:
            return [None if v is None else v.decode("utf-8") for v in values]
        except UnicodeDecodeError:
            return None
    if kind == "string" and pa.types.is_boolean(arrow_type):
        return [None if v is None else "true" if v else "false" for v in values]
    if kind == "date" and (pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type)):
        storage = column.cast(arrow_type).cast(pa.int64() if arrow_type != pa.date32() else pa.int32())
        return [None if v is None else calendar_time(v, arrow_type) for v in storage.to_pylist()]
    return None


def read_parquet_file(path, spec):
    """kdp_beam's reading of a Parquet file, as its workers run it: the schema check,
    then every row group."""
    groups = list(_ListRowGroups(spec).process(FileSystems.match([path])[0].metadata_list[0]))
    batches = [b for group in groups for b in _ReadRowGroup(spec, 5).process(group)]
    return pa.Table.from_batches(batches, schema=pa.schema([(n, ARROW_TYPES[k]) for n, k in column_kinds(spec).items()]))


@FUZZ
@given(case=parquet_tables(), row_group_size=st.integers(1, 5))
def test_parquet_reads_as_pyarrow_reads_it_or_fails_clearly(tmp_path_factory, case, row_group_size):
    """Differential: generated Parquet files (every integer and float width, booleans,
    plain, large and dictionary strings, bytes, the null type, dates, timestamps of every
    unit with and without a time zone, lists, nulls, columns named twice, several row
    groups) read by kdp_beam equal pyarrow.parquet.read_table's reading converted by the
    documented rule, or fail with an InputDataError naming the file and a column."""
    table, kinds = case
    path = str(tmp_path_factory.mktemp("pq") / "f.parquet")
    pq.write_table(table, path, row_group_size=row_group_size)
    spec = FeatureSpec({name: DECLARED[kind] for name, kind in kinds.items()})
    names = pq.read_schema(path).names
    # read_table refuses a file with a name given twice: then the file's own reading.
    oracle = pq.read_table(path) if len(set(names)) == len(names) else pq.ParquetFile(path).read()
    expected = {n: None if names.count(n) > 1 else expected_parquet_column(oracle.column(n), k) for n, k in kinds.items()}
    try:
        read = read_parquet_file(path, spec)
    except InputDataError as e:
        refused = [n for n, values in expected.items() if values is None]
        assert str(e).startswith(path) and any(f"column {n!r}" in str(e) for n in refused), str(e)
        event("clear error")
        return
    assert None not in expected.values()
    for name, kind in kinds.items():
        values = read.column(name).to_pylist()
        source = oracle.column(name).type
        if pa.types.is_timestamp(source) or pa.types.is_date(source):  # as the date type reads the text
            parts, valid = parse_dates(read.column(name))
            values = [datetime.datetime(*(int(parts[p][i]) for p in PARTS)) if valid[i] else v for i, v in enumerate(values)]
        assert values == pytest.approx(expected[name], nan_ok=True) if kind == "float" else values == expected[name]
    event("values compared")

# Odd-but-valid CSV, generated, against an independent reading: Python's csv (and gzip,
# bz2) modules, and the number rule written apart (tests/io/test_csv_numbers.py).
FLOAT_FIELDS = st.one_of(
    st.floats(allow_nan=False).map(repr),  # 1e+308, -0.0, 5e-324, inf
    st.floats(allow_nan=False, allow_infinity=False).map("{:.6E}".format),
    st.sampled_from(["-0", "1e308", "-1e308", "1e309", "1E-7", ".5", "1.", "+2", "00.5", " 1.5", "2\t", "nan",
                     "NaN", "-inf", "Infinity", *NULL_VALUES, "0x10", "1_0", "abc", "1e", "\u0663"]),  # the last 5 bad
)
INT_FIELDS = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(str),
    st.integers(10**17, 10**20).map(str) | st.integers(-(10**20), -(10**17)).map(str),  # int64's edge
    st.sampled_from(["-0", "007", " 12", "3\t", *NULL_VALUES, "0x10", "0X1F", "+5", "1e3", "5.0", "\u0663"]),
)
HUGE_FIELD = "h" * 150_000 + ',"\n'  # over Python csv's default field limit (128 KiB)
TEXT_FIELDS = st.text(alphabet=list('ab \u00e9,"\n\r\t\ufeff'), max_size=6) | st.sampled_from(NULL_VALUES + [HUGE_FIELD])
ROW = st.tuples(st.fixed_dictionaries({"x": FLOAT_FIELDS, "n": INT_FIELDS, "s": TEXT_FIELDS, "u": TEXT_FIELDS}),
                st.sampled_from([0] * 8 + [-1, 1]))  # fields missing or extra: a wrong field count


@st.composite
def csv_files(draw):
    """(text, whether a quoted value holds a line end) of a CSV file with a header."""
    columns = draw(st.permutations(["x", "n", "s"] + draw(st.sampled_from([[], ["u"], ["u", "u"], ["", ""]]))))
    line_end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    quote_all = draw(st.booleans())

    def field(value):
        return '"' + value.replace('"', '""') + '"' if quote_all or any(c in value for c in ',"\r\n') else value

    lines = [",".join(field(c) for c in columns)]
    for values, arity in draw(st.lists(ROW, max_size=8)):
        fields = [field(values[c or "u"]) for c in columns]
        lines.append(",".join(fields[: len(fields) - 1] if arity < 0 else fields + ["x"] * arity))
        if draw(st.integers(0, 9)) == 0:
            lines.append("")  # a blank line
    text = draw(st.sampled_from(["", "\ufeff"])) + line_end.join(lines) + draw(st.sampled_from(["", line_end]))
    return text, any("\n" in line or "\r" in line for line in lines)


def python_reading(text):
    """(good rows, [(row, reason)] of the bad ones), independently of kdp_beam's reader."""
    records = [r for r in csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)]
    header, good, bad = records[0], [], []
    for row, record in enumerate((r for r in records[1:] if r), start=1):
        if len(record) != len(header):
            bad.append((row, "wrong_field_count"))
            continue
        (x_ok, x), (n_ok, n) = (csv_rule(record[header.index(c)], t) for c, t in (("x", pa.float64()), ("n", pa.int64())))
        if not (x_ok and n_ok):
            bad.append((row, "unparseable_number"))
            continue
        good.append({"x": x, "n": n, "s": record[header.index("s")]})
    return good, bad


@FUZZ
@given(file=csv_files(), compression=st.sampled_from(["", ".gz", ".bz2"]), split_size=st.sampled_from([0, 1, 7, 40]),
       block_size=st.sampled_from([64, 1 << 20]), skip=st.booleans())
def test_generated_csv_reads_as_python_reads_it(tmp_path_factory, file, compression, split_size, block_size, skip):
    text, quoted_line_end = file
    good, bad = python_reading(text)
    data = {"": bytes, ".gz": gzip_module.compress, ".bz2": bz2.compress}[compression](text.encode())
    path = str(tmp_path_factory.mktemp("gen") / f"f.csv{compression}")
    open(path, "wb").write(data)
    ranges = byte_ranges(FileMetadata(path, len(data)), max(split_size, len(data) // 20))  # a few dozen at most
    assert len(ranges) == 1 or not compression  # a compressed file is one unit of work
    reader = _ReadCsvRange(CSV_SPEC, block_size, "skip" if skip else "fail")
    try:
        elements = [e for element in ranges for e in reader.process(element)]
    except InputDataError as e:
        if quoted_line_end and len(ranges) > 1 and "inside a quoted value that contains a newline" in str(e):
            event("split inside a quoted line end: clear error")
        else:
            assert not skip and bad and f"row {bad[0][0]} " in str(e), str(e)[:300]  # the first bad one
            event("fail mode: the first bad record named")
        return
    assert skip or not bad
    batches, bad_records = split_outputs(elements)
    rows = [r for batch in batches for r in batch.to_pylist()]
    assert nan_as_text((rows, [])) == nan_as_text((good, []))
    found = [(b.row, b.reason) for b in bad_records]
    assert found == bad if len(ranges) == 1 else sorted(r for _, r in found) == sorted(r for _, r in bad)
    event("read as Python reads it")


# --- the JSON Lines reader ----------------------------------------------------------------

JSONL_VALID = '{"x": 1.5, "n": 1, "s": "a"}\n{"x": null, "n": 2, "s": "b,c"}\n{"n": 3, "s": "q\\"uote", "z": [1]}\n{"x": -3e2}\n'
JSONL_PIECES = [b'"', b",", b":", b"{", b"}", b"[", b"\n", b"\r\n", b"\xff", b"1", b".", b"e", b"-", b"null",
                b"NaN", b"Infinity", b'"x": 2, ', b"true", b"99999999999999999999", b" ", b"\\", b"\\ud800", b"\x00", b"\xef\xbb\xbf"]


class Pairs(list):
    """A JSON object as its (key, value) pairs, keys given twice included."""


def python_objects(data):
    """An independent reading: json.loads per non-blank line, each an object (a row of
    its declared keys, read by the documented rule: a float in x, an int64 in n, a string
    or a boolean as "true" / "false" in s, null or absent as None) or None (a bad line)."""
    return [python_object(line) for line in data.removeprefix(codecs.BOM_UTF8).split(b"\n") if line.strip(b" \t\r")]


def python_object(line):
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)  # lines nested thousands deep are valid JSON
    try:
        pairs = json.loads(line.decode("utf-8"), object_pairs_hook=Pairs)
    except (UnicodeDecodeError, ValueError):
        return None
    finally:
        sys.setrecursionlimit(limit)
    keys = [k for k, _ in pairs] if isinstance(pairs, Pairs) else None
    if keys is None or any(keys.count(k) > 1 for k in ("x", "n", "s")):
        return None  # not an object, or a declared key given twice
    row = {k: dict(pairs).get(k) for k in ("x", "n", "s")}
    x, n, s = row.values()
    if x is not None:
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            return None
        try:
            row["x"] = float(x)  # an integer: the nearest double
        except OverflowError:
            return None
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or not -(2**63) <= n < 2**63):
        return None
    if isinstance(s, bool):
        row["s"] = "true" if s else "false"
    elif s is not None and (not isinstance(s, str) or any(0xD800 <= ord(c) < 0xE000 for c in s)):
        return None  # not a string, or a lone surrogate (not UTF-8)
    return row


def assert_rows_equal(rows, expected):
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected):
        assert (row["n"], row["s"]) == (want["n"], want["s"])
        assert row["x"] == pytest.approx(want["x"], nan_ok=True) if want["x"] is not None else row["x"] is None


@FUZZ
@given(edits=edit_lists(JSONL_PIECES), split_size=st.integers(1, 60), skip=st.booleans())
def test_mutated_json_lines_read_right_or_fail_clearly(tmp_path_factory, edits, split_size, skip):
    path, data = mutated_file(tmp_path_factory, JSONL_VALID, edits, "f.jsonl")
    reader = _ReadJsonRange(CSV_SPEC, 64, "skip" if skip else "fail")
    # Read in byte ranges, the same as whole: the same rows, the same bad lines.
    whole = read_ranges(reader, [(path, 0, None)], skip)
    split = read_ranges(reader, byte_ranges_of(path, len(data), split_size) or [(path, 0, None)], skip)
    assert (split is None) == (whole is None)
    if whole is not None:
        assert nan_as_text(split) == nan_as_text(whole)
    outcome = read_or_clear_error(reader, (path, 0, None), skip)
    if outcome is None:
        return
    batches, bad = outcome
    expected = python_objects(data)
    good = [o for o in expected if o is not None]
    assert len(bad) == len(expected) - len(good)  # every bad line kept, none invented
    assert_rows_equal([row for batch in batches for row in batch.to_pylist()], good)
    event("values compared")


# Odd but valid JSON: the number, string and key spellings a generator may write.
JSON_NUMBERS = st.sampled_from(
    ["1e400", "-1e400", "1e-400", "-0.0", "-0", "0", "1E5", "2.5e-3", "5e-324", "1.7976931348623157e308",
     "123456789012345678901234567890", "-9223372036854775808", "9223372036854775807", "9223372036854775808",
     "18446744073709551616", "NaN", "Infinity", "-Infinity"]
) | st.integers().map(str) | st.floats(allow_nan=False, allow_infinity=False).map(repr)
JSON_STRINGS = st.sampled_from(
    ['"\\ud83d\\ude00"', '"\\ud800"', '"\\u00e9"', '"a\\/b"', '"\\"q\\""', '"t\\tn\\nr\\r"', '"\\u0000"', '""', '"é"']
) | st.text(max_size=4).map(lambda t: json.dumps(t, ensure_ascii=False))
JSON_KEYS = st.sampled_from(['"x"', '"n"', '"s"', '"z"', '"\\u0078"', '"s"'])  # \u0078 is x


def nested(depth):
    return "[" * depth + "]" * depth


JSON_SCALARS = JSON_NUMBERS | JSON_STRINGS | st.sampled_from(["true", "false", "null", "[]", "{}", '{"a": 1, "a": 2}'])
JSON_VALUES_TEXT = JSON_SCALARS | st.sampled_from([1, 30, 5000]).map(nested)
JSON_LINES = st.lists(st.tuples(JSON_KEYS, JSON_VALUES_TEXT), max_size=4).map(
    lambda pairs: "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
) | st.sampled_from(["null", "[1]", "1", '"a"', nested(5000), "", "  "])


@FUZZ
@given(
    lines=st.lists(st.tuples(JSON_LINES, st.sampled_from(["\n", "\r\n"])), min_size=1, max_size=8),
    bom=st.booleans(),
    pieces=st.integers(2, 12),
)
def test_generated_json_lines_read_as_python_reads_them(tmp_path_factory, lines, bom, pieces):
    """Differential: odd but valid JSON Lines (BOM, CRLF, 1e400, -0.0, big integers, NaN
    and Infinity, escapes, surrogates, keys given twice, nesting thousands deep) read by
    kdp_beam, whole or split, equal Python's json module line by line; in fail mode the
    error names the first bad line."""
    data = (codecs.BOM_UTF8 if bom else b"") + "".join(text + end for text, end in lines).encode()
    path = str(tmp_path_factory.mktemp("gen") / "f.jsonl")
    open(path, "wb").write(data)
    expected = python_objects(data)
    good = [o for o in expected if o is not None]
    reader = _ReadJsonRange(CSV_SPEC, 256, "skip")
    split = byte_ranges_of(path, len(data), len(data) // pieces + 1)
    for ranges in ([(path, 0, None)], split):
        rows, bad = read_ranges(reader, ranges, True)
        assert len(bad) == len(expected) - len(good)
        assert_rows_equal(rows, good)
    event("bad lines" if len(good) < len(expected) else "all good")
    if len(good) == len(expected):
        return
    physical = data.removeprefix(codecs.BOM_UTF8).split(b"\n")
    first_bad = [i for i, line in enumerate(physical, 1) if line.strip(b" \t\r")][expected.index(None)]
    for ranges in ([(path, 0, None)], split):
        with pytest.raises(InputDataError, match=rf"f\.jsonl: line {first_bad}\b"):
            for element in ranges:
                list(_ReadJsonRange(CSV_SPEC, 256, "fail").process(element))


# --- the tf.Example decoder ---------------------------------------------------------------


def example_bytes(x, n, s):
    feature = {}
    if x is not None:
        feature["x"] = tf.train.Feature(float_list=tf.train.FloatList(value=x))
    if n is not None:
        feature["n"] = tf.train.Feature(int64_list=tf.train.Int64List(value=n))
    if s is not None:
        feature["s"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=s))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


EXAMPLES = st.builds(
    example_bytes,
    st.none() | st.lists(st.floats(width=32), max_size=2),
    st.none() | st.lists(st.integers(-(2**63), 2**63 - 1), max_size=2),
    st.none() | st.lists(st.binary(max_size=4) | st.sampled_from([b"a", "é".encode()]), max_size=2),
)
BYTE_EDITS = st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255), st.booleans()), max_size=3)


def tensorflow_row(record):
    """An independent reading with TensorFlow's own proto parser: the row, or None when
    the record is not a tf.Example of one value (or none) of the declared kind each."""
    try:
        example = tf.train.Example.FromString(record)
    except Exception:  # protobuf's DecodeError
        return None
    row = {}
    for name, kind in (("x", "float_list"), ("n", "int64_list"), ("s", "bytes_list")):
        feature = example.features.feature.get(name)
        which = feature.WhichOneof("kind") if feature is not None else None
        values = list(getattr(feature, kind).value) if which == kind else []
        if (which not in (None, kind)) or len(values) > 1:
            return None
        row[name] = values[0] if values else None
        if name == "s" and values:
            try:
                row[name] = values[0].decode("utf-8")
            except UnicodeDecodeError:
                return None
    return row


def decode_as_tensorflow_does(named_records, skip):
    """Decodes (file, number, offset, record) tuples with kdp_beam's decoder: the rows
    equal TensorFlow's own parsing of the records that are tf.Examples of one value (or
    none) per declared feature, every other record is a BadRecord with its record number;
    or a clear error (fail mode)."""
    decoder = _DecodeExamples(CSV_SPEC, "skip" if skip else "fail")
    decoder.setup()
    outcome = read_or_clear_error(decoder, named_records, skip)
    if outcome is None:
        return
    batches, bad = outcome
    expected = [tensorflow_row(r) for *_, r in named_records]
    good = [row for row in expected if row is not None]
    assert sorted(b.row for b in bad) == [n for (_, n, _, _), row in zip(named_records, expected) if row is None]
    assert_rows_equal([row for batch in batches for row in batch.to_pylist()], good)
    event("values compared")


def mutated(data, edits):
    for position, byte, insert in edits:
        at = position % (len(data) + 1)
        data = data[:at] + bytes([byte]) + data[at:] if insert else data[:at] + data[at + 1 :]
    return data


@FUZZ
@given(records=st.lists(st.tuples(EXAMPLES, BYTE_EDITS), min_size=1, max_size=6), skip=st.booleans())
def test_mutated_tf_examples_decode_right_or_fail_clearly(records, skip):
    numbered = [("f.tfrecord", i + 1, None, mutated(record, edits)) for i, (record, edits) in enumerate(records)]
    decode_as_tensorflow_does(numbered, skip)


@FUZZ
@given(
    records=st.lists(EXAMPLES, max_size=5),
    gzip=st.booleans(),
    edits=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255), st.booleans()), max_size=2),
    cut=st.none() | st.integers(0, 400),
)
def test_tfrecord_files_read_as_tensorflow_reads_them(tmp_path_factory, records, gzip, edits, cut):
    """Differential on whole files: TFRecord files (plain or gzip) written by TensorFlow,
    then damaged (bytes changed, inserted, or the file cut short), are read by kdp_beam as
    TensorFlow's record reader reads them (the same records, decoded as TensorFlow parses
    them), or refused with an InputDataError naming the file where TensorFlow finds them
    corrupt, or where it leaves bytes unread or reads a damaged gzip stream (TensorFlow
    takes a record cut short at the end of a file as its end: kdp_beam, as truncated)."""
    path = str(tmp_path_factory.mktemp("tfr") / ("f.tfrecord.gz" if gzip else "f.tfrecord"))
    with tf.io.TFRecordWriter(path, "GZIP" if gzip else None) as writer:
        for record in records:
            writer.write(record)
    data = mutated(open(path, "rb").read(), edits)
    data = data if cut is None else data[: cut % (len(data) + 1)]
    open(path, "wb").write(data)
    try:  # the C++ reader of tf.data.TFRecordDataset, without a dataset per call
        expected = list(tf.compat.v1.io.tf_record_iterator(path, "GZIP" if gzip else None))
    except tf.errors.OpError:  # DataLossError: a CRC, a length or the gzip stream is wrong
        expected = None
    try:
        read = list(_ReadRecords(3).process(FileSystems.match([path])[0].metadata_list[0]))
    except InputDataError as e:
        assert str(e).startswith(path)
        if expected is not None:  # then the gzip stream is damaged, or TensorFlow left bytes unread
            try:
                payload = gzip_module.decompress(data) if gzip else data
            except (OSError, EOFError, zlib.error):
                payload = None
            assert payload is None or len(payload) != sum(len(r) + 16 for r in expected), str(e)
        event("clear error")
        return
    assert [r for batch in read for *_, r in batch] == expected
    assert [n for batch in read for _, n, _, _ in batch] == list(range(1, len(expected) + 1))
    for batch in read:
        decode_as_tensorflow_does(batch, skip=True)
