"""The label and the fold key, read by every reader beside the features: the RecordBatches
hold a class label's (and the fold key's) text (kdp_beam.columns' "label" kind) and a
regression label's float, equal to an oracle computed from the files with Python's csv,
json and gzip modules, pyarrow.parquet and tf.train.Example's own parsing."""

import csv
import gzip
import io
import json
import math
import os
import re

import apache_beam as beam
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf
from apache_beam.io.filesystems import FileSystems
from apache_beam.testing.util import assert_that
from hypothesis import given, settings
from hypothesis import strategies as st

from kdp_beam import bad_records
from kdp_beam.columns import ARROW_TYPES, cast_column, column_kinds, read_kinds
from kdp_beam.errors import InputDataError
from kdp_beam.io import ReadInput, jsonl
from kdp_beam.io.csv import _ReadCsvRange
from kdp_beam.io.jsonl import _ReadJsonRange
from kdp_beam.io.memory import record_batches
from kdp_beam.io.parquet import _ListRowGroups, _ReadRowGroup
from kdp_beam.io.preflight import check_schemas
from kdp_beam.io.ranges import byte_ranges
from kdp_beam.io.tfrecord import _DecodeExamples, _ReadRecords
from kdp_beam.job import run_analysis
from kdp_beam.spec import FeatureSpec
from tests.io.helpers import split_outputs

SPEC = FeatureSpec({"x": "float_normalized"}, label="y", fold_key="k")
REGRESSION = FeatureSpec({"x": "float_normalized"}, label="y", label_type="regression")


# --- the oracle's text of a value, computed without pyarrow ---------------------------------


def float_text(value, width=64):
    """The contract's text of a float: the shortest digits that read back as the value at
    its width (numpy's Dragon4, not pyarrow's double-conversion), positional from 1e-6 to
    below 1e10, else d.ddde+x; a whole number below 2^63 the integer's decimal text; "0" for
    -0; NaN is missing."""
    if math.isnan(value):
        return None
    if value == 0:
        return "0"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == int(value) and abs(value) < 2**63:  # whole: the integer's text
        return str(int((np.float32 if width == 32 else np.float64)(value)))
    number = (np.float32 if width == 32 else np.float64)(value)
    mantissa, exponent = np.format_float_scientific(number, unique=True, trim="-").split("e")
    sign, digits, exponent = "-" * mantissa.startswith("-"), mantissa.lstrip("-").replace(".", ""), int(exponent)
    if -6 <= exponent < 10:
        if exponent >= 0:
            whole, fraction = digits[: exponent + 1].ljust(exponent + 1, "0"), digits[exponent + 1 :]
        else:
            whole, fraction = "0", "0" * (-exponent - 1) + digits
        return sign + whole + ("." + fraction if fraction else "")
    return f"{sign}{digits[0]}{'.' + digits[1:] if len(digits) > 1 else ''}e{'+' if exponent >= 0 else '-'}{abs(exponent)}"


def text_of(value, width=64):
    """The contract's text of a Python value (None, "" and NaN missing)."""
    if value is None or isinstance(value, str):
        return value or None
    if isinstance(value, bytes):
        return value.decode() or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return float_text(value, width)


def test_the_oracle_writes_the_examples_of_the_contract():
    assert [text_of(v) for v in [1.0, 0.5, -0.0, math.nan, True, 7, "", "NA", 1e20, 1.5e-7, 1e10]] == [
        "1", "0.5", "0", None, "true", "7", None, "NA", "1e+20", "1.5e-7", "10000000000"
    ]
    assert text_of(0.1, 32) == "0.1" and text_of(float(np.float32(0.1))) == "0.10000000149011612"


# --- reading a file with the readers' own DoFns ----------------------------------------------


def read(path, spec=SPEC, mode="fail", block_size=1 << 12, split_size=0):
    """(rows {column: value}, BadRecords) the reader's DoFns give for a file, in order;
    CSV and JSON Lines in byte ranges of `split_size` (0: whole)."""
    metadata = FileSystems.match([path])[0].metadata_list[0]
    if ".csv" in path or ".jsonl" in path:
        dofn = (_ReadCsvRange if ".csv" in path else _ReadJsonRange)(spec, block_size, mode)
        elements = [e for unit in byte_ranges(metadata, split_size) for e in dofn.process(unit)]
    elif path.endswith(".parquet"):
        elements = [e for unit in _ListRowGroups(spec).process(metadata) for e in _ReadRowGroup(spec, 7, mode).process(unit)]
    else:
        decode = _DecodeExamples(spec, mode)
        decode.setup()
        elements = [e for records in _ReadRecords(5).process(metadata) for e in decode.process(records)]
    batches, bad = split_outputs(elements)
    for batch in batches:  # the features' columns and the label's, as their kinds
        assert batch.schema == pa.schema([(n, ARROW_TYPES[k]) for n, k in read_kinds(spec).items()])
    return [row for batch in batches for row in batch.to_pylist()], bad


def column(rows, name="y"):
    return [row[name] for row in rows]


# --- the values: what each format can hold ---------------------------------------------------

TEXT = st.text(st.sampled_from(["a", "B", "é", "日", " ", ",", '"', "0", "1", ".", "-", "\t", "\n", "\r"]), max_size=5)
SCALARS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.integers(-3, 3),
    st.floats(),
    st.floats(width=32),
    st.booleans(),
    TEXT,
    st.none(),
    st.sampled_from([1.0, 0.5, -0.0, 2.0**53 + 2, math.nan, "", "NA", "nan", "NaN", "1.0", "true", "null"]),
)


def csv_field(value):
    """How a CSV writer writes a Python value (Python's own str/repr)."""
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


# --- CSV --------------------------------------------------------------------------------------


def write_csv(path, labels, keys, bad_first=False, newline_free=False):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["k", "x", "y"])
    if bad_first:
        out.write("only,two\n")  # a wrong field count
    for i, (label, key) in enumerate(zip(labels, keys)):
        fields = [csv_field(key), str(i), csv_field(label)]
        if newline_free:
            fields = [f.replace("\n", " ").replace("\r", " ") for f in fields]
        writer.writerow(fields)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", newline="") as f:
        f.write(out.getvalue())


def csv_oracle(path):
    """(labels, keys) by Python's csv module: a field's text, an empty one missing."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        records = [r for r in csv.DictReader(f) if r["k"] is not None and None not in r.values() and len(r) == 3]
    return [r["y"] or None for r in records], [r["k"] or None for r in records]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(SCALARS, SCALARS), min_size=1, max_size=40))
def test_csv_labels_are_their_fields_text_plain_gzip_split_and_record_by_record(tmp_path_factory, rows):
    directory = tmp_path_factory.mktemp("csv")
    labels, keys = [r[0] for r in rows], [r[1] for r in rows]
    for name, options in [
        ("plain.csv", {}),
        ("packed.csv.gz", {}),
        ("bad.csv", {"bad_first": True}),  # skip mode: read again record by record
        ("split.csv", {"newline_free": True}),
    ]:
        path = str(directory / name)
        write_csv(path, labels, keys, **options)
        want_labels, want_keys = csv_oracle(path)
        assert len(want_labels) == len(rows)
        split = 23 if name == "split.csv" else 0
        got, bad = read(path, mode="skip", block_size=64, split_size=split)
        assert column(got) == want_labels and column(got, "k") == want_keys, name
        assert len(bad) == (name == "bad.csv")


# --- JSON Lines -------------------------------------------------------------------------------

ABSENT = object()  # a key left out of the object


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.one_of(SCALARS, st.just(ABSENT)), SCALARS), min_size=1, max_size=40), st.booleans())
def test_json_labels_of_every_type_read_as_their_text_fast_and_line_by_line(tmp_path_factory, rows, bad_line):
    path = str(tmp_path_factory.mktemp("jsonl") / "d.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        if bad_line:
            f.write("[1, 2]\n")  # not an object: that block is read line by line (skip mode)
        for i, (label, key) in enumerate(rows):
            record = {"x": i, "k": key, **({} if label is ABSENT else {"y": label})}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    with open(path, encoding="utf-8") as f:  # the oracle: Python's json module
        objects = [o for o in map(json.loads, f) if isinstance(o, dict)]
    got, bad = read(path, mode="skip", block_size=128)  # blocks of a few lines: types vary by block
    assert column(got) == [text_of(o.get("y")) for o in objects]
    assert column(got, "k") == [text_of(o["k"]) for o in objects]
    assert len(bad) == bad_line


def test_json_numbers_of_a_label_read_fast_as_the_line_by_line_reading_gives_them(tmp_path, monkeypatch):
    """Whole numbers (int64), fractions (float64) and booleans are read by pyarrow; a block
    with a number from 2^53 on that is not an int64 line by line (float64 may not hold
    such an integer exactly); the same text either way."""
    line_by_line = []
    read_lines = jsonl._lines_skipping_bad
    monkeypatch.setattr(jsonl, "_lines_skipping_bad", lambda *a: line_by_line.append(a[1].row) or read_lines(*a))
    blocks = {
        "int64": [0, 1, 1, 0, -7],
        "float64": [0.5, 1.0, 2, -0.0, 1e15, math.nan],
        "bool": [True, False, None],
        "beyond 2^53": [2**53 + 1, 3, 2**64, -(2**63), 1e300],
    }
    for name, values in blocks.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"x": 1.0, "y": v, "k": "a"}) + "\n" for v in values))
        del line_by_line[:]
        got, _ = read(str(path), block_size=1 << 20)
        assert column(got) == [text_of(v) for v in values], name
        assert bool(line_by_line) == (name == "beyond 2^53"), name
    assert column(got) == ["9007199254740993", "3", "18446744073709551616", "-9223372036854775808", "1e+300"]


def test_tf_example_labels_of_one_kind_decode_batch_by_batch(tmp_path, monkeypatch):
    """The label's kind found in the first batch is kept for the next: no record-by-record
    decoding for a file whose labels are all int64 (or all float)."""
    monkeypatch.setattr(_DecodeExamples, "_decode_one_by_one", None)  # would fail if called
    for labels in ([1, 0, 1, 1, 0, 0, 1], [0.5, 1.0, 0.25, 2.0, 0.5, 3.0, 1.5]):
        path = str(tmp_path / "d.tfrecord")
        write_examples(path, [(v, i) for i, v in enumerate(labels)])
        got, _ = read(path)
        assert column(got) == [text_of(v, 32) for v in labels]


# --- Parquet ----------------------------------------------------------------------------------

PARQUET_TYPES = {  # column: (Arrow type, float width of the oracle's text)
    "y_int8": (pa.int8(), None),
    "y_int64": (pa.int64(), None),
    "y_uint64": (pa.uint64(), None),
    "y_float32": (pa.float32(), 32),
    "y_float64": (pa.float64(), 64),
    "y_bool": (pa.bool_(), None),
    "y_string": (pa.string(), None),
    "y_large": (pa.large_string(), None),
    "y_binary": (pa.binary(), None),
    "y_dictionary": (pa.dictionary(pa.int32(), pa.string()), None),
}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(-128, 127)),
            st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
            st.one_of(st.none(), st.integers(0, 2**64 - 1)),
            st.one_of(st.none(), st.floats(width=32), st.sampled_from([0.1, 1.0, 0.5, -0.0])),
            st.one_of(st.none(), st.floats(), st.sampled_from([1.0, 0.5, -0.0, math.nan])),
            st.one_of(st.none(), st.booleans()),
            st.one_of(st.none(), TEXT),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_parquet_labels_of_every_readable_type_read_as_their_text(tmp_path_factory, rows):
    path = str(tmp_path_factory.mktemp("parquet") / "d.parquet")
    i8, i64, u64, f32, f64, flags, text = (list(c) for c in zip(*rows))
    sources = [i8, i64, u64, f32, f64, flags, text, text, [None if t is None else t.encode() for t in text], text]
    table = {"x": pa.array(np.arange(len(rows), dtype=float))}
    for (name, (arrow_type, _)), values in zip(PARQUET_TYPES.items(), sources):
        array = pa.array(values, arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type)
        table[name] = array.dictionary_encode() if pa.types.is_dictionary(arrow_type) else array
    pq.write_table(pa.table(table), path, row_group_size=11)
    stored = pq.read_table(path)  # the oracle: pyarrow.parquet's values, as Python's
    for name, (_, width) in PARQUET_TYPES.items():
        key = "y_int8" if name == "y_int64" else "y_int64"
        got, _ = read(path, FeatureSpec({"x": "float_normalized"}, label=name, fold_key=key))
        assert column(got, name) == [text_of(v, width or 64) for v in stored.column(name).to_pylist()], name
        assert column(got, key) == [text_of(v) for v in stored.column(key).to_pylist()]


def test_a_parquet_label_of_lists_structs_or_timestamps_is_refused_saying_what_to_do(tmp_path):
    for values, says in [
        (pa.array([[1], [0]]), "a label holds one value per row (a class or a number): write one value per row"),
        (pa.array([{"a": 1}, {"a": 0}]), "a label holds one value per row"),
        (pa.array([1, 2], pa.timestamp("s")), "timestamps and dates are not read as a label: write the column as text"),
    ]:
        path = str(tmp_path / "d.parquet")
        pq.write_table(pa.table({"x": [1.0, 2.0], "y": values, "k": ["a", "b"]}), path)
        with pytest.raises(InputDataError, match=r"d\.parquet: column 'y' is .*, which cannot be read as the label: " + re.escape(says)):
            read(path)
        with pytest.raises(InputDataError, match="cannot be read as the label"):
            check_schemas(path, SPEC, "parquet")  # on the launcher too
    pq.write_table(pa.table({"x": [1.0], "y": [1], "k": pa.array([[1]])}), path)
    with pytest.raises(InputDataError, match="cannot be read as the fold key: the fold key holds one value per row"):
        read(path)


# --- TFRecord ---------------------------------------------------------------------------------


def feature_of(value):
    """A tf.train.Feature of one Python value, or of a list (several values, or none)."""
    values = value if isinstance(value, list) else [value]
    if values and isinstance(values[0], bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    if values and isinstance(values[0], float):
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def write_examples(path, rows):
    """Records of x and the label and fold key, as given (ABSENT: no such feature)."""
    with tf.io.TFRecordWriter(path, "GZIP" if path.endswith(".gz") else None) as writer:
        for i, (label, key) in enumerate(rows):
            features = {"x": feature_of(float(i))}
            for name, value in (("y", label), ("k", key)):
                if value is not ABSENT:
                    features[name] = feature_of(value)
            writer.write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())


def example_oracle(path, name):
    """The feature's text per record by tf.train.Example's parsing (float_list: float32)."""
    out = []
    for record in tf.data.TFRecordDataset(path, "GZIP" if path.endswith(".gz") else None).as_numpy_iterator():
        features = tf.train.Example.FromString(record).features.feature
        kind = features[name].WhichOneof("kind") if name in features else None
        values = list(getattr(features[name], kind).value) if kind else []
        out.append(text_of(values[0], 32) if values else None)
    return out


EXAMPLE_VALUES = st.one_of(
    st.just(ABSENT),
    st.just([]),  # an empty list: missing
    st.integers(-(2**63), 2**63 - 1),
    st.floats(width=32),
    TEXT.map(str.encode),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(EXAMPLE_VALUES, EXAMPLE_VALUES), min_size=1, max_size=25))
def test_tf_example_labels_of_any_kind_read_as_their_text_even_mixed_in_a_file(tmp_path_factory, rows):
    """bytes_list, int64_list and float_list labels, records of a batch (of 5) mixing them."""
    directory = tmp_path_factory.mktemp("tfrecord")
    for name in ("d.tfrecord", "d.tfrecord.gz"):
        path = str(directory / name)
        write_examples(path, rows)
        got, bad = read(path)
        assert not bad
        assert column(got) == example_oracle(path, "y") and column(got, "k") == example_oracle(path, "k"), name


def test_a_tf_example_label_with_two_values_or_bad_bytes_is_a_bad_record_naming_the_label(tmp_path):
    path = str(tmp_path / "d.tfrecord")
    write_examples(path, [(b"a", b"1"), ([1, 0], b"2"), (0.5, b"3")])
    with pytest.raises(InputDataError, match=r"record 2: a record has 2 values for the label 'y'; the label holds one value per record"):
        read(path)
    got, bad = read(path, mode="skip")
    assert column(got) == ["a", "0.5"] and column(got, "k") == ["1", "3"]
    assert [(b.reason, b.row, b.column) for b in bad] == [(bad_records.MULTIPLE_VALUES, 2, "y")]
    write_examples(path, [(b"a", b"1"), (b"\xff", b"2"), (1, b"\xfe")])
    with pytest.raises(InputDataError, match=r"record 2: a record's bytes for the label 'y' are not UTF-8; its text is read as UTF-8"):
        read(path)
    got, bad = read(path, mode="skip")
    assert column(got) == ["a"] and [(b.reason, b.row, b.column) for b in bad] == [
        (bad_records.BAD_UTF8, 2, "y"), (bad_records.BAD_UTF8, 3, "k")
    ]


# --- in memory (FeatureSpace.adapt's path) ----------------------------------------------------


def memory_rows(data, spec=SPEC):
    batches = list(record_batches(data, spec))
    for batch in batches:
        assert batch.schema == pa.schema([(n, ARROW_TYPES[k]) for n, k in read_kinds(spec).items()])
    return [row for batch in batches for row in batch.to_pylist()]


LABEL_LISTS = [
    [1, 0, 1],
    [1.0, 0.5, math.nan],
    [True, False, None],
    ["cat", "", None],
    [b"a", b"", b"b"],
    [2**63 - 1, -(2**63), 0],
]


@pytest.mark.parametrize("labels", LABEL_LISTS, ids=lambda v: type(v[0]).__name__)
def test_memory_labels_as_a_dict_key_a_dataframe_column_and_tf_data(labels):
    want = [text_of(v) for v in labels]
    keys = [f"r{i}" for i in range(len(labels))]
    x = [1.0, 2.0, 3.0]
    assert column(memory_rows({"x": x, "y": labels, "k": keys})) == want
    assert column(memory_rows({"x": np.array(x), "y": np.array(labels), "k": np.array(keys)})) == want
    assert column(memory_rows(pd.DataFrame({"x": x, "y": labels, "k": keys}))) == want
    if None in labels:
        return  # tf.data has no missing value
    tensors = tf.constant(labels) if not isinstance(labels[0], float) else tf.constant(labels, tf.float64)
    dicts = tf.data.Dataset.from_tensor_slices({"x": x, "y": tensors, "k": keys})
    tuples = tf.data.Dataset.from_tensor_slices(({"x": x, "k": keys}, tensors))
    for dataset in (dicts, dicts.batch(2), tuples, tuples.batch(2)):
        rows = memory_rows(dataset)
        assert column(rows) == want and column(rows, "k") == keys


def test_memory_float32_and_pandas_types_read_as_their_own_text():
    frame = pd.DataFrame({
        "x": [1.0, 2.0, 3.0],
        "y": pd.array([1, None, 0], dtype="Int64"),  # nullable integers stay integers
        "k": pd.Categorical(["a", "b", "a"]),
    })
    assert column(memory_rows(frame)) == ["1", None, "0"] and column(memory_rows(frame), "k") == ["a", "b", "a"]
    labels = np.array([0.1, 1.0, 0.3], np.float32)
    assert column(memory_rows({"x": [1.0, 2.0, 3.0], "y": labels, "k": ["a", "b", "c"]})) == ["0.1", "1", "0.3"]
    tuples = tf.data.Dataset.from_tensor_slices(({"x": [1.0, 2.0, 3.0], "k": ["a", "b", "c"]}, labels)).batch(2)
    assert column(memory_rows(tuples)) == ["0.1", "1", "0.3"]


def test_memory_labels_that_cannot_be_read_say_what_to_do():
    x, keys = [1.0, 2.0], ["a", "b"]
    with pytest.raises(InputDataError, match=r"the label 'y' of the spec is missing; it has \['k', 'x'\]\. Pass it"):
        memory_rows({"x": x, "k": keys})
    with pytest.raises(InputDataError, match=r"the label 'y' of the spec is missing"):
        memory_rows(pd.DataFrame({"x": x, "k": keys}))
    with pytest.raises(InputDataError, match=r"the fold key 'k' of the spec is missing"):
        memory_rows({"x": x, "y": [0, 1]})
    with pytest.raises(InputDataError, match=r"the label 'y' has shape \(2, 3\); it holds one value per row.*one-hot"):
        memory_rows({"x": x, "y": np.eye(3)[:2], "k": keys})
    dicts = tf.data.Dataset.from_tensor_slices({"x": x, "k": keys})
    with pytest.raises(InputDataError, match=r"the label 'y' of the spec is missing"):
        memory_rows(dicts)
    both = tf.data.Dataset.from_tensor_slices(({"x": x, "k": keys, "y": [1, 0]}, [1, 0]))
    with pytest.raises(InputDataError, match="also hold the label 'y' among the features"):
        memory_rows(both)
    outputs = tf.data.Dataset.from_tensor_slices(({"x": x, "k": keys}, {"y": [1, 0], "z": [0, 1]}))
    with pytest.raises(InputDataError, match=r"the label of its \(features, label\) elements is a dict"):
        memory_rows(outputs)
    weighted = tf.data.Dataset.from_tensor_slices(({"x": x, "k": keys}, [1, 0], [0.5, 2.0]))
    with pytest.raises(InputDataError, match=r"\(features, label\) tuples are read, not tuples of 3"):
        memory_rows(weighted)
    unlabelled = tf.data.Dataset.from_tensor_slices(({"x": x}, [1, 0]))
    with pytest.raises(InputDataError, match=r"got a tuple: a \(features, label\) tuple is read with a label"):
        memory_rows(unlabelled, FeatureSpec({"x": "float_normalized"}))
    with pytest.raises(InputDataError, match="holds values of kinds"):
        memory_rows({"x": x, "y": [1, "a"], "k": keys})  # one kind per column, as for features


# --- a regression label: a float, its bad values bad records ----------------------------------


def test_a_regression_label_reads_as_a_float_and_a_value_that_is_not_one_is_a_bad_record(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("x,y\n1,1.5\n2,\n3,abc\n4,-2\n5,NA\n")
    with pytest.raises(InputDataError) as error:
        read(str(path), REGRESSION)
    assert str(error.value) == (
        f"{path}: row 3 (line 4), column 'y': cannot read 'abc' as a float. Fix the value, or declare "
        'label_type "binary" or "multiclass" (or leave it out, to infer it) to read the label as classes.'
    )
    got, bad = read(str(path), REGRESSION, mode="skip")
    assert column(got) == [1.5, None, -2.0, None]
    assert [(b.reason, b.row, b.column) for b in bad] == [(bad_records.UNPARSEABLE_NUMBER, 3, "y")]
    # The whole job: counted in the bundle, written to its dead letters.
    bundle = tmp_path / "bundle"
    run_analysis(REGRESSION, str(path), str(bundle), on_bad_record="skip")
    letters = [json.loads(line) for name in os.listdir(bundle / "bad_records") for line in (bundle / "bad_records" / name).read_text().splitlines()]
    assert [(letter["row"], letter["column"]) for letter in letters] == [(3, "y")]
    statistics = json.loads((bundle / "statistics.json").read_text())
    assert statistics["row_count"] == 4 and statistics["bad_records"]["by_reason"] == {"unparseable_number": 1}
    assert letters[0]["record"] == ["3", "abc"]


def test_a_regression_label_in_json_parquet_and_tf_example(tmp_path):
    lines = tmp_path / "d.jsonl"
    lines.write_text('{"x": 1, "y": 2}\n{"x": 2, "y": "3.5"}\n{"x": 3, "y": 0.25}\n')
    with pytest.raises(InputDataError, match=r"line 2, key 'y': '3\.5' is not a number: a regression label .* reads numbers"):
        read(str(lines), REGRESSION)
    got, bad = read(str(lines), REGRESSION, mode="skip")
    assert column(got) == [2.0, 0.25] and [(b.reason, b.line) for b in bad] == [(bad_records.WRONG_TYPE, 2)]
    table = tmp_path / "d.parquet"
    pq.write_table(pa.table({"x": [1.0], "y": ["3.5"]}), table)
    with pytest.raises(InputDataError, match="cannot be read as the regression label: a regression label"):
        read(str(table), REGRESSION)
    examples = str(tmp_path / "d.tfrecord")
    write_examples(examples, [(3, ABSENT), (0.5, ABSENT), (2**53 + 1, ABSENT), (b"4", ABSENT)])
    got, bad = read(examples, REGRESSION, mode="skip")
    assert column(got) == [3.0, 0.5, float(2**53)]  # int64_list and float_list; bytes are not numbers
    assert [(b.reason, b.row, b.column) for b in bad] == [(bad_records.WRONG_TYPE, 4, "y")]


# --- a missing label column -------------------------------------------------------------------


def test_a_label_column_missing_from_a_file_is_the_error_of_a_missing_feature_column(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("x,k\n1,a\n")
    for check in (lambda: read(str(path)), lambda: check_schemas(str(path), SPEC, "csv")):
        with pytest.raises(InputDataError, match=r"declared column\(s\) \['y'\] are not in the CSV header \['x', 'k'\]"):
            check()
    table = tmp_path / "d.parquet"
    pq.write_table(pa.table({"x": [1.0], "y": [1]}), table)
    for check in (lambda: read(str(table)), lambda: check_schemas(str(table), SPEC, "parquet")):
        with pytest.raises(InputDataError, match=r"declared column\(s\) \['k'\] are not in the Parquet schema"):
            check()


# --- the readers in a Beam pipeline; specs without a label --------------------------------------


def test_every_reader_in_a_beam_pipeline_delivers_the_label_beside_the_features(tmp_path):
    labels = [1, "cat", 0.5, True, None, "", 1.0, "NA"] * 30
    keys = [i % 7 for i in range(len(labels))]
    write_csv(str(tmp_path / "d.csv"), labels, keys)
    with open(tmp_path / "d.jsonl", "w") as f:
        f.writelines(json.dumps({"x": i, "y": v, "k": k}) + "\n" for i, (v, k) in enumerate(zip(labels, keys)))
    pq.write_table(pa.table({"x": np.arange(len(labels), dtype=float), "y": [text_of(v) for v in labels], "k": keys}), tmp_path / "d.parquet", row_group_size=50)
    write_examples(str(tmp_path / "d.tfrecord"), [(str(v).encode() if v is not None else ABSENT, k) for v, k in zip(labels, keys)])
    expected = {
        "d.csv": csv_oracle(str(tmp_path / "d.csv"))[0],
        "d.jsonl": [text_of(v) for v in labels],
        "d.parquet": [text_of(v) for v in labels],
        "d.tfrecord": example_oracle(str(tmp_path / "d.tfrecord"), "y"),
    }
    with beam.Pipeline("FnApiRunner") as p:
        for name, want in expected.items():
            options = {"split_size": 700} if name in ("d.csv", "d.jsonl") else {}
            pairs = (p | f"Read {name}" >> ReadInput(str(tmp_path / name), SPEC, **options))["batches"] | f"Rows {name}" >> beam.FlatMap(
                lambda batch: [(row["x"], row["y"], row["k"]) for row in batch.to_pylist()]
            )
            want_pairs = sorted((float(i), label, str(k)) for i, (label, k) in enumerate(zip(want, keys)))
            assert_that(pairs, lambda got, want=want_pairs: _equal_sorted(got, want), label=f"Check {name}")


def _equal_sorted(got, want):
    assert sorted(got, key=repr) == sorted(want, key=repr)


def test_a_spec_without_a_label_reads_the_features_only():
    spec = FeatureSpec({"x": "float_normalized", "t": {"type": "string_categorical", "multivalent": True}})
    assert read_kinds(spec) == column_kinds(spec) and list(read_kinds(spec)) == ["x", "t"]
    kinds = read_kinds(SPEC)
    assert list(kinds) == ["x", "y", "k"] and kinds["y"] == "label" and kinds["k"] == "label"
    assert read_kinds(REGRESSION)["y"] == "float" and list(column_kinds(SPEC)) == ["x"]


def test_the_label_cast_is_idempotent_and_reads_what_it_gave():
    kind = read_kinds(SPEC)["y"]
    text = cast_column(pa.array([1.5, None, math.nan, -0.0]), kind, "y", "test")
    assert text.to_pylist() == ["1.5", None, None, "0"]
    assert cast_column(text, kind, "y", "test").to_pylist() == text.to_pylist()
    with pytest.raises(InputDataError, match="column 'y' holds bytes that are not UTF-8"):
        cast_column(pa.array([b"\xff"]), kind, "y", "test")
