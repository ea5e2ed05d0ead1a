"""Multivalent features: every reader delivers the one list column of the contract
(kdp_beam.columns.cast_list), equal to an oracle computed from the files with Python's
csv, json and gzip modules and tf.train.Example's own parsing."""

import csv
import gzip
import io
import json
import math
import os

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import tensorflow as tf
from apache_beam.io.filesystems import FileSystems
from apache_beam.testing.util import assert_that

from kdp_beam import bad_records
from kdp_beam.analyzers.dataset import declared_columns
from kdp_beam.columns import ARROW_TYPES, NULL_VALUES, ListKind, cast_column, column_kinds
from kdp_beam.errors import InputDataError
from kdp_beam.io import ReadInput
from kdp_beam.io.csv import _ReadCsvRange
from kdp_beam.io.jsonl import _ReadJsonRange
from kdp_beam.io.memory import record_batches
from kdp_beam.io.parquet import _ListRowGroups, _ReadRowGroup
from kdp_beam.io.preflight import check_schemas
from kdp_beam.io.tfrecord import _DecodeExamples, _ReadRecords
from kdp_beam.spec import FeatureSpec
from tests.conftest import exact_moments
from tests.io.helpers import split_outputs

FEATURES = {
    "id": {"type": "integer_hashed", "num_bins": 8},  # a scalar beside the lists
    "tags": {"type": "string_categorical", "multivalent": True},
    "scores": {"type": "float_normalized", "multivalent": True},
    "codes": {"type": "integer_categorical", "multivalent": True},
}
SPEC = FeatureSpec(FEATURES)
WORDS = ["a", "b", "Zürich", "日本", "x y", "q\"uote", "new\nline", "comma,", "[UNK]", "🙂"]


def rows(n=300, seed=0):
    """Rows of list values as Python data, with what every format can hold: null and empty
    lists, missing string values (None and ""), NaN (tf.Example has no null number), one
    value, a huge list, numbers exact in float32 (tf.Example's float)."""
    rng = np.random.default_rng(seed)
    data = []
    for i in range(n):
        length = [0, 1, 2, 3, 7][i % 5]
        tags = [None if rng.random() < 0.1 else ("" if rng.random() < 0.05 else str(rng.choice(WORDS))) for _ in range(length)]
        if len(tags) == 1 and not tags[0]:
            tags = ["a"]  # one missing value: CSV writes it as an empty field, no values (see below)
        scores = [float(np.float32(rng.normal(0, 100))) for _ in range(rng.integers(0, 5))]
        if scores and rng.random() < 0.2:
            scores[0] = math.nan
        codes = [int(v) for v in rng.integers(-(2**40), 2**40, rng.integers(0, 4))]
        data.append({"id": i, "tags": tags, "scores": scores, "codes": codes})
    data[3]["tags"] = [f"t{j % 500}" for j in range(5000)]  # a huge list
    data[7]["tags"], data[7]["scores"], data[7]["codes"] = None, None, None  # null lists
    data[8]["tags"] = [None, ""]  # only missing values, more than one
    return data


def expected(data):
    """The contract's normal form of the Python rows: no values -> [], "" -> None."""
    out = []
    for row in data:
        out.append({
            "id": row["id"],
            "tags": [v or None for v in row["tags"] or []],
            "scores": list(row["scores"] or []),
            "codes": list(row["codes"] or []),
        })
    return out


def same(got, want):
    """Rows equal, NaN equal to NaN."""
    def norm(value):
        if isinstance(value, float) and math.isnan(value):
            return "NaN"
        if isinstance(value, list):
            return [norm(v) for v in value]
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items()}
        return value
    return norm(got) == norm(want)


# --- writing the same rows in every format -------------------------------------------------


def write_parquet(data, path):
    table = pa.table({
        "id": pa.array([r["id"] for r in data], pa.int32()),
        "tags": pa.array([r["tags"] for r in data], pa.large_list(pa.string())),
        "scores": pa.array([r["scores"] for r in data], pa.list_(pa.float32())),
        "codes": pa.array([r["codes"] for r in data], pa.list_(pa.int64())),
    })
    pq.write_table(table, path, row_group_size=64)


def json_lines(data):
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in data)


def csv_rows(data, separator="|"):
    """CSV text: each list joined with the separator (a missing value as an empty one,
    numbers as repr, exact), quoted by Python's csv module."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # which quotes a value holding \r or \n
    writer.writerow(["id", "tags", "scores", "codes"])
    for row in data:
        def field(values):
            return separator.join("" if v is None else repr(v) if isinstance(v, float) else str(v) for v in values or [])
        writer.writerow([row["id"], field(row["tags"]), field(row["scores"]), field(row["codes"])])
    return out.getvalue()


def example(row):
    feature = {"id": tf.train.Feature(int64_list=tf.train.Int64List(value=[row["id"]]))}
    if row["tags"] is not None:  # a null list: the feature absent
        feature["tags"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[(v or "").encode() for v in row["tags"]]))
        feature["scores"] = tf.train.Feature(float_list=tf.train.FloatList(value=row["scores"]))
        feature["codes"] = tf.train.Feature(int64_list=tf.train.Int64List(value=row["codes"]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_all(data, directory):
    """{format label: path} of the rows as Parquet lists, JSON Lines arrays (and gzip), CSV
    with "|" (and gzip) and multi-valued tf.Example (and gzip)."""
    os.makedirs(directory, exist_ok=True)
    paths = {name: os.path.join(directory, name) for name in
             ["d.parquet", "d.jsonl", "d.jsonl.gz", "d.csv", "d.csv.gz", "d.tfrecord", "d.tfrecord.gz"]}
    write_parquet(data, paths["d.parquet"])
    for name, text in [("d.jsonl", json_lines(data)), ("d.csv", csv_rows(data))]:
        with open(paths[name], "w", encoding="utf-8", newline="") as f:
            f.write(text)
        with gzip.open(paths[name + ".gz"], "wt", encoding="utf-8", newline="") as f:
            f.write(text)
    for name, options in [("d.tfrecord", None), ("d.tfrecord.gz", "GZIP")]:
        with tf.io.TFRecordWriter(paths[name], options) as writer:
            for row in data:
                writer.write(example(row))
    return paths


def read(path, spec=SPEC, mode="fail", block_size=1 << 12):
    """(rows, BadRecords) the reader's DoFns give for a whole file."""
    if ".csv" in path or ".jsonl" in path:
        dofn = (_ReadCsvRange if ".csv" in path else _ReadJsonRange)(spec, block_size, mode)
        elements = list(dofn.process((path, 0, None)))
    elif path.endswith(".parquet"):
        metadata = FileSystems.match([path])[0].metadata_list[0]
        elements = [e for unit in _ListRowGroups(spec).process(metadata) for e in _ReadRowGroup(spec, 50, mode).process(unit)]
    else:
        metadata = FileSystems.match([path])[0].metadata_list[0]
        decode = _DecodeExamples(spec, mode)
        decode.setup()
        elements = [e for records in _ReadRecords(70).process(metadata) for e in decode.process(records)]
    batches, bad = split_outputs(elements)
    kinds = column_kinds(spec)
    for batch in batches:
        assert batch.schema == pa.schema([(n, ARROW_TYPES[k]) for n, k in kinds.items()])
        for name, kind in kinds.items():
            if kind.startswith("list<"):
                assert batch.column(name).null_count == 0  # no values: [], never null
    return [row for batch in batches for row in batch.to_pylist()], bad


# --- the oracles: the files read back by Python's own modules -------------------------------


def csv_oracle(path, separator="|"):
    """The rows of a CSV file by Python's csv module, each field split on the separator by
    str.split: an empty field no values, an empty value missing, numbers trimmed."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        records = list(csv.DictReader(f))

    def number(text, kind):
        return None if text in NULL_VALUES else kind(text.strip(" \t"))

    return [{
        "id": int(r["id"]),
        "tags": [v or None for v in r["tags"].split(separator)] if r["tags"] else [],
        "scores": [number(v, float) for v in r["scores"].split(separator)] if r["scores"] else [],
        "codes": [number(v, int) for v in r["codes"].split(separator)] if r["codes"] else [],
    } for r in records]


def json_oracle(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        objects = [json.loads(line) for line in f if line.strip()]
    return [{"id": o["id"], **{k: [v if v != "" else None for v in o.get(k) or []] for k in ("tags", "scores", "codes")}} for o in objects]


def tfrecord_oracle(path):
    out = []
    for record in tf.data.TFRecordDataset(path, "GZIP" if path.endswith(".gz") else None).as_numpy_iterator():
        features = tf.train.Example.FromString(record).features.feature
        out.append({
            "id": features["id"].int64_list.value[0],
            "tags": [v.decode() or None for v in features["tags"].bytes_list.value] if "tags" in features else [],
            "scores": list(features["scores"].float_list.value) if "scores" in features else [],
            "codes": list(features["codes"].int64_list.value) if "codes" in features else [],
        })
    return out


ORACLES = {".csv": csv_oracle, ".jsonl": json_oracle, ".tfrecord": tfrecord_oracle,
           ".parquet": lambda path: expected([{**r, "id": r["id"]} for r in pq.read_table(path).to_pylist()])}


def oracle(path):
    return next(f for suffix, f in ORACLES.items() if suffix in path)(path)


def test_the_same_lists_read_identically_from_every_format_and_equal_the_oracles(tmp_path):
    data = rows()
    want = expected(data)
    for label, path in write_all(data, tmp_path).items():
        assert same(oracle(path), want), label  # the oracles agree with the data written
        got, bad = read(path)
        assert not bad and same(got, want), label
        # The record-by-record paths (skip mode's, after a bad record) read the same rows.
        got, bad = read(path, mode="skip", block_size=1 << 30)
        assert not bad and same(got, want), label


def test_a_beam_pipeline_of_every_reader_delivers_the_lists(tmp_path):
    """ReadInput in a real pipeline (JSON Lines split into byte ranges, Parquet row groups
    spread over workers; the CSV has newlines in quoted values, so it is read whole)."""
    data = rows(120, seed=4)
    want = sorted((json.dumps(r, sort_keys=True) for r in _nan_free(expected(data))))
    paths = write_all(data, tmp_path)
    with beam.Pipeline("FnApiRunner") as p:
        for label in ["d.parquet", "d.jsonl", "d.csv", "d.tfrecord.gz"]:
            options = {"split_size": 1500} if label == "d.jsonl" else {}
            read_rows = (
                p
                | f"Read {label}" >> ReadInput(paths[label], SPEC, **options)
            )["batches"] | f"Rows {label}" >> beam.FlatMap(lambda b: [json.dumps(r, sort_keys=True) for r in _nan_free(b.to_pylist())])
            assert_that(read_rows, lambda got, want=want: _equal_sorted(got, want), label=f"Check {label}")


def _nan_free(rows_):
    return [{**r, "scores": ["NaN" if isinstance(v, float) and math.isnan(v) else v for v in r["scores"]]} for r in rows_]


def _equal_sorted(got, want):
    assert sorted(got) == want


def test_declared_columns_of_raw_list_and_text_columns_give_the_readers_column():
    """A user's pipeline may hand the analysis raw columns: declared_columns casts them by
    the same function (idempotent on the readers' output)."""
    kinds = column_kinds(SPEC)
    raw = pa.record_batch({
        "id": pa.array([1, 2, 3, 4], pa.int16()),
        "tags": pa.array(["a|b", "", None, "|é||"]),
        "scores": pa.array([[1.5, None], None, [], [float("nan")]], pa.list_(pa.float32())),
        "codes": pa.array([[1], [2, 3], None, []], pa.large_list(pa.int8())),
    })
    columns = dict(declared_columns(raw, kinds))
    assert columns["tags"].to_pylist() == [["a", "b"], [], [], [None, "é", None, None]]
    assert same(columns["scores"].to_pylist(), [[1.5, None], [], [], [math.nan]])
    assert columns["codes"].to_pylist() == [[1], [2, 3], [], []]
    for name, column in columns.items():
        assert column.type == ARROW_TYPES[kinds[name]]
        assert cast_column(column, kinds[name], name, "again") is column  # idempotent


def test_odd_list_sources_read_by_the_scalar_rules():
    cases = [
        (pa.array([[1, 2], [3, 4]], pa.list_(pa.int32(), 2)), "list<float>", [[1.0, 2.0], [3.0, 4.0]]),
        (pa.array([[True, None], None]), "list<string>", [["true", None], []]),
        (pa.array([[b"\xc3\xa9", b""]], pa.list_(pa.binary())), "list<string>", [["é", None]]),
        (pa.array([["x", "", "x"]], pa.list_(pa.dictionary(pa.int8(), pa.string()))), "list<string>", [["x", None, "x"]]),
        (pa.array(["p|q", None, "p"]).dictionary_encode(), "list<string>", [["p", "q"], [], ["p"]]),
        (pa.nulls(2), "list<integer>", [[], []]),
        (pa.array([[None, None]], pa.list_(pa.null())), "list<float>", [[None, None]]),
        (pa.array([[2**63 - 1]], pa.list_(pa.uint64())), "list<integer>", [[2**63 - 1]]),
        (pa.array([[2**53 + 1]]), "list<float>", [[float(2**53)]]),
        (pa.array(["1e999| -0 |+.5|nan|NA"]), "list<float>", [[math.inf, -0.0, 0.5, math.nan, None]]),
    ]
    for source, kind, want in cases:
        assert same(cast_column(source, kind, "x", "test").to_pylist(), want), (source.type, kind)
    refused = [
        (pa.array([[1.5]]), "list<integer>", "its values are double: floating-point values are not read as integers"),
        (pa.array([[b"\xff"]]), "list<string>", "bytes that are not UTF-8"),
        (pa.array([[2**64 - 1]], pa.list_(pa.uint64())), "list<integer>", "a value that does not fit"),
        (pa.array([[[1]]]), "list<integer>", "a list of lists"),
        (pa.array([{"a": 1}]), "list<integer>", "reads a list column (list, large_list, fixed_size_list) or text"),
        (pa.array([1.5]), "list<float>", "declare the feature without multivalent, or write the column as lists"),
        (pa.array(["1|0x10"]), "list<integer>", "cannot read '0x10'"),
        (pa.array([["1"]]), "list<float>", "its values are string: a float feature reads integers"),
    ]
    for source, kind, message in refused:
        with pytest.raises(InputDataError, match="column 'x'") as error:
            cast_column(source, kind, "x", "test")
        assert message in str(error.value), (source.type, str(error.value))


@pytest.mark.parametrize("separator", ["|", ";", "::", "§"])
def test_separators_at_the_ends_and_doubled_split_as_python_splits(tmp_path, separator):
    fields = ["a", f"a{separator}", f"{separator}a", f"a{separator}{separator}b", separator, "", " a ", "é" * 3 + separator + "日本"]
    spec = FeatureSpec({"t": {"type": "string_categorical", "multivalent": True, "separator": separator},
                        "n": {"type": "float_normalized", "multivalent": True, "separator": separator}})
    numbers = [f.replace("a", "1").replace("b", "2").replace("é", "3").replace("日本", "4") for f in fields]
    want = [{"t": [v or None for v in t.split(separator)] if t else [],
             "n": [float(v) if v.strip() else None for v in n.split(separator)] if n else []} for t, n in zip(fields, numbers)]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([["t", "n"], *zip(fields, numbers)])
    (tmp_path / "s.csv").write_text(out.getvalue(), encoding="utf-8")
    (tmp_path / "s.jsonl").write_text("".join(json.dumps({"t": t, "n": n}) + "\n" for t, n in zip(fields, numbers)), encoding="utf-8")
    pq.write_table(pa.table({"t": fields, "n": numbers}), tmp_path / "s.parquet")
    for name in ["s.csv", "s.jsonl", "s.parquet"]:
        for mode in ["fail", "skip"]:
            got, bad = read(str(tmp_path / name), spec, mode)
            assert not bad and got == want, (name, mode)


def test_csv_an_empty_field_is_no_values_and_a_lone_separator_two_missing_ones(tmp_path):
    (tmp_path / "e.csv").write_text('t,n\n,\n|,|\n"",NA\n" ", \n', encoding="utf-8")
    spec = FeatureSpec({"t": {"type": "string_categorical", "multivalent": True},
                        "n": {"type": "integer_categorical", "multivalent": True}})
    with pytest.raises(InputDataError, match=r"e\.csv: row 4 \(line 5\), column 'n': cannot read ' '"):
        read(str(tmp_path / "e.csv"), spec)  # a blank number value is not a number, as in a scalar column
    got, bad = read(str(tmp_path / "e.csv"), spec, "skip")
    assert got == [{"t": [], "n": []}, {"t": [None, None], "n": [None, None]}, {"t": [], "n": [None]}]
    assert [(b.row, b.reason, b.column) for b in bad] == [(4, "unparseable_number", "n")]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_a_value_that_is_not_a_number_names_the_row_or_is_a_counted_skip(tmp_path, fmt):
    spec = FeatureSpec({"id": {"type": "integer_hashed", "num_bins": 4},
                        "n": {"type": "float_normalized", "multivalent": True}})
    fields = [f"{i}|{i}.5" for i in range(200)]
    fields[150], fields[170] = "1|oops", "2|1_5"  # rows 151 and 171
    path = str(tmp_path / f"b.{fmt}")
    if fmt == "csv":
        with open(path, "w") as f:
            f.write("id,n\n" + "".join(f"{i},{v}\n" for i, v in enumerate(fields)))
    elif fmt == "jsonl":
        with open(path, "w") as f:
            f.write("".join(json.dumps({"id": i, "n": v}) + "\n" for i, v in enumerate(fields)))
    else:
        pq.write_table(pa.table({"id": range(200), "n": fields}), path, row_group_size=64)
    where = {"csv": r"row 151 \(line 152\), column 'n'", "jsonl": r"line 151, key 'n'",
             "parquet": r"\(row group 2\): row 151, column 'n'"}[fmt]
    with pytest.raises(InputDataError, match=rf"b\.{fmt}.*{where}: cannot read 'oops' \(a value of '1\|oops' split on '\|'\) as a float"):
        read(path, spec)
    got, bad = read(path, spec, "skip")
    assert [r["id"] for r in got] == [i for i in range(200) if i not in (150, 170)]
    assert got[0]["n"] == [0.0, 0.5] and got[-1]["n"] == [199.0, 199.5]
    assert [(b.reason, b.column) for b in bad] == [(bad_records.UNPARSEABLE_NUMBER, "n")] * 2
    assert [b.row for b in bad] == [151, 171]
    assert "'oops'" in bad[0].detail and "'1_5'" in bad[1].detail


def test_a_list_where_a_scalar_is_declared_is_refused_or_counted_and_read_once_declared(tmp_path):
    data = rows(60, seed=2)
    paths = write_all(data, tmp_path)
    scalar = FeatureSpec({"id": {"type": "integer_hashed", "num_bins": 8}, "codes": "integer_categorical"})
    fixed = FeatureSpec({"id": {"type": "integer_hashed", "num_bins": 8},
                         "codes": {"type": "integer_categorical", "multivalent": True}})
    many = [r["id"] for r in data if r["codes"] and len(r["codes"]) > 1]
    assert many
    # Typed lists: a schema error in both modes (Parquet: on the launcher too).
    with pytest.raises(InputDataError, match=r"column 'codes' is list<.*int64>.*declare the feature multivalent"):
        check_schemas(paths["d.parquet"], scalar, "parquet")
    for mode in ["fail", "skip"]:
        with pytest.raises(InputDataError, match='declare the feature multivalent \\("multivalent": true\\)'):
            read(paths["d.parquet"], scalar, mode)
    # Record by record: an error naming the record, or a counted bad record per row.
    for label, reason in [("d.jsonl", bad_records.WRONG_TYPE), ("d.tfrecord", bad_records.MULTIPLE_VALUES)]:
        with pytest.raises(InputDataError, match="multivalent"):
            read(paths[label], scalar)
        got, bad = read(paths[label], scalar, "skip")
        assert all(b.reason in (reason, bad_records.WRONG_TYPE) and b.column == "codes" for b in bad), label
        assert len(got) + len(bad) == len(data) and not set(many) & {r["id"] for r in got}, label
        got, bad = read(paths[label], fixed, "skip")
        assert not bad and [r["id"] for r in got] == [r["id"] for r in data], label  # no row lost


def test_in_memory_data_of_every_shape_reads_to_the_same_lists():
    """FeatureSpace.adapt's inputs: dicts of lists, numpy object arrays, DataFrames of
    lists or of separated text, tf.RaggedTensor (batched or not), dense padded tensors."""
    pd = pytest.importorskip("pandas")
    spec = FeatureSpec({"tags": {"type": "string_categorical", "multivalent": True},
                        "x": {"type": "float_normalized", "multivalent": True},
                        "n": {"type": "integer_categorical", "multivalent": True}})
    lists = {"tags": [["a", "b"], [], ["日本"], ["c", "d", "e"]], "x": [[1.5, 2.0], [], [0.25], [3.0, 4.0, 5.0]],
             "n": [[1, 2], [], [7], [-5, 0, 9]]}
    want = [dict(zip(lists, values)) for values in zip(*lists.values())]
    padded = {
        "tags": np.array([["a", "b", ""], ["", "", ""], ["日本", "", ""], ["c", "d", "e"]]),
        "x": np.array([[1.5, 2.0, np.nan], [np.nan] * 3, [0.25, np.nan, np.nan], [3.0, 4.0, 5.0]]),
        "n": np.array([[1, 2, -1], [-1, -1, -1], [7, -1, -1], [-5, 0, 9]]),
    }
    ragged = {"tags": tf.ragged.constant(lists["tags"]), "x": tf.ragged.constant(lists["x"], dtype=tf.float64),
              "n": tf.ragged.constant(lists["n"], dtype=tf.int64)}
    sources = {
        "dict of lists": lists,
        "numpy object arrays": {k: np.array([np.array(v) for v in vs] + [None], dtype=object)[:-1] for k, vs in lists.items()},
        "DataFrame of lists": pd.DataFrame(lists),
        "DataFrame of text": pd.DataFrame({k: ["|".join(map(str, v)) for v in vs] for k, vs in lists.items()}),
        "dict of padded arrays": padded,
        "ragged tensors": ragged,
        "tf.data of ragged rows": tf.data.Dataset.from_tensor_slices(ragged),
        "tf.data of ragged batches": tf.data.Dataset.from_tensor_slices(ragged).batch(3),
        "tf.data of padded rows": tf.data.Dataset.from_tensor_slices(padded),
        "tf.data of padded batches": tf.data.Dataset.from_tensor_slices(padded).batch(3),
        "tf.data of padded_batch": tf.data.Dataset.from_tensor_slices(ragged).map(
            lambda r: {k: v for k, v in r.items()}).padded_batch(
            2, padding_values={"tags": "", "x": tf.constant(np.nan, tf.float64), "n": tf.constant(-1, tf.int64)}),
    }
    for label, data in sources.items():
        got = [row for batch in record_batches(data, spec) for row in batch.to_pylist()]
        assert got == want, label


def test_in_memory_missing_values_and_a_declared_pad_value():
    spec = FeatureSpec({"tags": {"type": "string_categorical", "multivalent": True},
                        "x": {"type": "float_normalized", "multivalent": True}})
    data = {"tags": [None, ["", None, "a"], ["b"], []], "x": [None, [math.nan, None], [1.0], []]}
    got = [row for batch in record_batches(data, spec) for row in batch.to_pylist()]
    assert same(got, [{"tags": [], "x": []}, {"tags": [None, None, "a"], "x": [math.nan, None]},
                      {"tags": ["b"], "x": [1.0]}, {"tags": [], "x": []}])
    text = {"tags": [None, "|a", "b|c", ""], "x": [None, "nan|", "1|NA", ""]}
    got = [row for batch in record_batches(text, spec) for row in batch.to_pylist()]
    assert same(got, [{"tags": [], "x": []}, {"tags": [None, "a"], "x": [math.nan, None]},
                      {"tags": ["b", "c"], "x": [1.0, None]}, {"tags": [], "x": []}])
    # Dense integers: the declared pad_value (an encoding option) or -1 is padding.
    ints = FeatureSpec({"n": {"type": "integer_categorical", "multivalent": True}})
    got = [row for batch in record_batches({"n": np.array([[3, -1], [-1, -1]])}, ints) for row in batch.to_pylist()]
    assert got == [{"n": [3]}, {"n": []}]
    # A scalar declared, a list given: the message says to declare it multivalent.
    with pytest.raises(InputDataError, match="multivalent"):
        list(record_batches({"t": [["a"], ["b", "c"]]}, FeatureSpec({"t": "string_categorical"})))
    with pytest.raises(InputDataError, match="multivalent"):
        list(record_batches({"t": np.array([[1.0, 2.0]])}, FeatureSpec({"t": "float_normalized"})))


def test_list_kind_carries_its_separator_to_workers():
    import pickle

    kinds = column_kinds(FeatureSpec({"t": {"type": "string_hashed", "num_bins": 4, "multivalent": True, "separator": ";"}}))
    kind = pickle.loads(pickle.dumps(kinds["t"]))
    assert isinstance(kind, ListKind) and kind == "list<string>" and kind.separator == ";"
    assert cast_column(pa.array(["a;b|c"]), kind, "t", "test").to_pylist() == [["a", "b|c"]]


def test_a_job_in_skip_mode_counts_each_list_where_a_scalar_is_declared(tmp_path):
    """The Beam job (kdp_beam.job.run_analysis): a list where one value is declared is a
    counted bad record, the one-value rows analysed; the bundle's counts say how many."""
    from kdp_beam.bundle.loader import load_bundle
    from kdp_beam.job import run_analysis

    data = rows(80, seed=6)
    paths = write_all(data, tmp_path / "data")
    spec = FeatureSpec({"id": {"type": "integer_hashed", "num_bins": 8}, "codes": "integer_categorical"})
    for label, reason in [("d.jsonl.gz", bad_records.WRONG_TYPE), ("d.tfrecord", bad_records.MULTIPLE_VALUES)]:
        # A JSON array is a list whatever its length; a tf.Example feature holds a list of
        # values anyway, of at most one for a scalar.
        is_list = (lambda r: r["codes"] is not None) if "json" in label else (lambda r: len(r["codes"] or []) > 1)
        lists, kept = [r for r in data if is_list(r)], [r for r in data if not is_list(r)]
        run_analysis(spec, paths[label], str(tmp_path / label), on_bad_record="skip")
        bundle = load_bundle(str(tmp_path / label))
        assert bundle.row_count == len(kept), label
        assert bundle.bad_records["by_reason"] == {reason: len(lists)}, label
        one_value = [r["codes"][0] for r in kept if r["codes"]]
        assert bundle.features["codes"]["null_count"] == len(kept) - len(one_value), label


def test_the_values_every_reader_delivers_arrive_in_the_analysis(tmp_path):
    """analyze_batches over each format's batches: the same statistics (moments to the
    rounding of their merge order, which the batch sizes set), counts equal to the
    oracle's, moments to exact arithmetic's."""
    import collections

    from kdp_beam.analyzers import analyze_batches

    data = rows(200, seed=8)
    want = expected(data)
    found = {}
    for label, path in write_all(data, tmp_path).items():
        batches, bad = split_outputs(
            _ReadCsvRange(SPEC, 1 << 12).process((path, 0, None)) if ".csv" in path else _elements(path)
        )
        statistics = analyze_batches(SPEC, batches)
        found[label] = json.dumps(_rounded({k: v for k, v in statistics.items() if k != "state"}), sort_keys=True)
        tags = statistics["features"]["tags"]
        values = [v for r in want for v in r["tags"]]
        assert tags["count"] == len(values) and tags["null_count"] == values.count(None), label
        assert tags["empty_count"] == sum(not r["tags"] for r in want), label
        assert tags["max_values_per_row"] == max(len(r["tags"]) for r in want), label
        counts = collections.Counter(v for v in values if v is not None)
        assert dict(zip(tags["vocabulary"], tags["vocabulary_counts"])) == {t: counts[t] for t in tags["vocabulary"]}, label
        codes = statistics["features"]["codes"]
        assert codes["count"] == sum(len(r["codes"]) for r in want), label
        mean, variance = exact_moments([v for r in want for v in r["scores"]])
        scores = statistics["features"]["scores"]
        assert scores["mean"] == pytest.approx(mean, rel=1e-14) and scores["variance"] == pytest.approx(variance, rel=1e-14)
    assert len(set(found.values())) == 1, found.keys()


def _rounded(value, key=None):
    if isinstance(value, float):
        # Skewness and kurtosis are scale-free: a symmetric column's is ~1e-17 of rounding
        # noise whatever the batching, so they agree to 12 decimals, not 12 digits (+ 0.0: no -0.0).
        return round(value, 12) + 0.0 if key in ("skewness", "kurtosis") else float(f"{value:.12g}")
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v, k) for k, v in value.items()}
    return value


def _elements(path):
    if path.endswith(".parquet"):
        metadata = FileSystems.match([path])[0].metadata_list[0]
        return [e for unit in _ListRowGroups(SPEC).process(metadata) for e in _ReadRowGroup(SPEC, 50).process(unit)]
    if ".jsonl" in path:
        return list(_ReadJsonRange(SPEC, 1 << 12).process((path, 0, None)))
    metadata = FileSystems.match([path])[0].metadata_list[0]
    decode = _DecodeExamples(SPEC)
    decode.setup()
    return [e for records in _ReadRecords(70).process(metadata) for e in decode.process(records)]


# Values without the separator (a value holding it cannot be told from two in a text
# field), with CSV's and JSON's awkward characters.
VALUE = st.text(alphabet=list('ab é日,"\n\r\t\\;') + ["🙂"], max_size=4)
NUMBER = st.floats(width=32) | st.integers(-(2**24), 2**24).map(float)  # exact in float32 (Parquet's, here)


@settings(max_examples=80, deadline=None)
@given(
    tags=st.lists(st.none() | st.lists(st.none() | VALUE, max_size=5), min_size=1, max_size=12),
    numbers=st.lists(st.lists(st.none() | NUMBER, max_size=4), min_size=12, max_size=12),
)
def test_generated_lists_read_as_python_reads_the_files(tmp_path_factory, tags, numbers):
    directory = tmp_path_factory.mktemp("lists")
    data = [{"id": i, "tags": t, "scores": numbers[i], "codes": []} for i, t in enumerate(tags)]
    paths = {label: str(directory / label) for label in ["d.csv", "d.jsonl", "d.parquet"]}
    write_parquet(data, paths["d.parquet"])
    (directory / "d.csv").write_text(csv_rows(data), encoding="utf-8")
    (directory / "d.jsonl").write_text(json_lines(data), encoding="utf-8")
    for label in paths:
        want = oracle(paths[label])
        for mode, block_size in [("fail", 64), ("skip", 1 << 20)]:
            got, bad = read(paths[label], mode=mode, block_size=block_size)
            assert not bad and same(got, want), (label, mode)
    # Besides CSV's own: an empty field is no values, so a list of one missing value is
    # read as no values there; elsewhere as it is.
    assert same(read(paths["d.parquet"])[0], expected(data))


def test_csv_split_into_byte_ranges_reads_every_list_once(tmp_path):
    from kdp_beam.io.ranges import byte_ranges

    data = [{**r, "tags": [t for t in r["tags"] or [] if t is None or "\n" not in t] or None} for r in rows(400, seed=3)]
    path = str(tmp_path / "d.csv")
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(csv_rows(data))
    metadata = FileSystems.match([path])[0].metadata_list[0]
    ranges = byte_ranges(metadata, split_size=700)
    assert len(ranges) > 20
    got = [row for unit in ranges for b in split_outputs(_ReadCsvRange(SPEC, 256).process(unit))[0] for row in b.to_pylist()]
    assert same(got, csv_oracle(path))


@pytest.mark.parametrize(
    "column, declared, says",
    [
        (pa.array([{"a": 1}, {"b": 2}], pa.map_(pa.string(), pa.int64())), "integer_categorical",
         r"reads a list column \(list, large_list, fixed_size_list\) or text"),
        (pa.array([[1, 2], [3]], pa.list_(pa.timestamp("s"))), "string_categorical",
         "a list of timestamps or dates is not read"),
        (pa.array([[1, 2], [3]], pa.list_(pa.timestamp("s"))), "float_normalized",
         "a list of timestamps or dates is not read"),
    ],
)
def test_a_nested_column_no_list_reads_names_what_to_write(tmp_path, column, declared, says):
    """A Parquet map, or a list of timestamps, declared multivalent: refused before the job
    with what to write instead (not "declare it without multivalent", nor "a date feature",
    which holds one value per row)."""
    from kdp_beam.job import run_analysis

    pq.write_table(pa.table({"x": column}), tmp_path / "x.parquet")
    spec = {"features": {"x": {"type": declared, "multivalent": True}}}
    with pytest.raises(InputDataError, match=says):
        run_analysis(spec, str(tmp_path / "x.parquet"), str(tmp_path / "bundle"))
