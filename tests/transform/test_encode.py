"""BatchEncoder and TransformFeatures beyond equality (tests/transform/test_equality.py):
values the model's input cannot hold (refused naming file, row, column and value, or left
out as BadRecords), the output schema, keep columns and their kinds, rebatching."""

import csv
import json
import os

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.util import assert_that, equal_to

from kdp_beam.errors import InputDataError, SpecError
from kdp_beam.io import ReadInput
from kdp_beam.io.csv import _ReadCsvRange
from kdp_beam.io.parquet import _ListRowGroups, _ReadRowGroup
from kdp_beam.job import run_analysis
from kdp_beam.spec import FeatureSpec

FEATURES = {
    "x": {"type": "float_normalized", "missing_indicator": True},
    "p": {"type": "passthrough", "dtype": "int32"},
    "c": {"type": "string_categorical"},
    "m": {"type": "float", "multivalent": True, "sequence_length": 2},
}
SPEC = FeatureSpec.from_json(
    {"features": FEATURES, "crosses": [{"feature_names": ["c", "p"], "crossing_dim": 4}], "output_mode": "dict",
     "label": "y", "label_type": "binary"}
)
HEADER = ["x", "p", "c", "m", "y", "id"]


def write_rows(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows(rows)


def clean_rows(n=40):
    return [[f"{i / 3:.3f}", i % 5, "abc"[i % 3], f"{i}|{i + 1}", i % 2, f"id{i}"] for i in range(n)]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    directory = tmp_path_factory.mktemp("encode")
    write_rows(directory / "clean.csv", clean_rows())
    run_analysis(SPEC, str(directory / "clean.csv"), str(directory / "bundle"))
    return directory


@pytest.fixture(scope="module")
def encoder(bundle):
    from kdp_beam.transform.encode import BatchEncoder

    return BatchEncoder(str(bundle / "bundle"), {"id": "label"})


def csv_batches(path, columns, start=0, end=None):
    return [b for b in _ReadCsvRange(SPEC, 1 << 20, "fail", columns).process((str(path), start, end))
            if isinstance(b, pa.RecordBatch)]


def test_the_schema_says_what_each_output_is(encoder):
    meta = {f.name: (f.metadata[b"kdp_beam.role"].decode(), f.metadata[b"kdp_beam.source"].decode()) for f in encoder.schema}
    assert meta["x"] == ("feature", "x") and meta["x_missing"] == ("indicator", "x")
    assert meta["m_mask"] == ("mask", "m") and meta["id"] == ("keep", "id")
    [cross] = [name for name, (role, _) in meta.items() if role == "cross"]
    assert encoder.schema.field(cross).type == pa.list_(pa.float32(), 4)
    assert encoder.schema.field("m").type == pa.list_(pa.float32(), 2)
    assert encoder.schema.field("p").type == pa.list_(pa.int64(), 1)  # the model's int32, widened
    assert encoder.schema.field("id").type == pa.string()
    assert encoder.schema.names[-1] == "id" and "y" not in encoder.columns  # the label: read only when kept


def test_a_float_beyond_float32_is_refused_as_the_model_refuses_it(bundle, encoder, tmp_path):
    rows = clean_rows(6)
    rows[2][0] = "1e39"  # the file's data row 3
    write_rows(tmp_path / "bad.csv", rows)
    [batch] = csv_batches(tmp_path / "bad.csv", encoder.columns)
    with pytest.raises(InputDataError) as error:
        encoder.encode(batch)
    message = str(error.value)
    assert f"{tmp_path / 'bad.csv'}: row 3: column 'x' holds 1e+39, beyond float32's range" in message
    # The model refuses the value too (a call with the rows as Python values).
    with pytest.raises(InputDataError, match="1e\\+39"):
        encoder.feature_space({"x": [1.0, 1e39], "p": [1, 2], "c": ["a", "b"], "m": [[1.0], []]})


def test_an_integer_beyond_an_int32_passthrough_is_refused_not_wrapped(bundle, encoder, tmp_path):
    rows = clean_rows(4)
    rows[3][1] = str(2**40)
    write_rows(tmp_path / "wide.csv", rows)
    [batch] = csv_batches(tmp_path / "wide.csv", encoder.columns)
    with pytest.raises(InputDataError, match=r"row 4: column 'p' holds 1099511627776, beyond int32's range"):
        encoder.encode(batch)


def test_a_range_after_the_first_names_its_bytes_and_its_row_there(bundle, encoder, tmp_path):
    rows = clean_rows(30)
    rows[20][3] = "1|-5e38"  # a list's value
    path = tmp_path / "ranges.csv"
    write_rows(path, rows)
    data = path.read_bytes()
    start = data.index(b"\n", len(data) // 2)  # the range's first record: the line after it
    owned = data[start + 1 :].split(b"\r\n")
    row_in_range = next(i for i, line in enumerate(owned, 1) if b"-5e38" in line)
    [batch] = csv_batches(path, encoder.columns, start, len(data))
    with pytest.raises(InputDataError) as error:
        encoder.encode(batch)
    assert f"{path} (bytes {start}-{len(data)}): row {row_in_range} of that range: column 'm' holds -5e+38" in str(error.value)


def test_parquet_rows_are_numbered_across_row_groups(bundle, encoder, tmp_path):
    table = pa.table({
        "x": pa.array([float(i) for i in range(25)]), "p": pa.array(list(range(25))),
        "c": pa.array(["a"] * 25), "m": pa.array([[1.0]] * 25, pa.list_(pa.float64())),
        "id": pa.array([f"id{i}" for i in range(25)]),
    })
    table = table.set_column(0, "x", pa.array([float(i) if i != 17 else -1e300 for i in range(25)]))
    path = str(tmp_path / "groups.parquet")
    pq.write_table(table, path, row_group_size=10)
    from apache_beam.io.filesystems import FileSystems

    metadata = FileSystems.match([path])[0].metadata_list[0]
    reader = _ReadRowGroup(SPEC, 4, "fail", encoder.columns)
    messages = []
    for unit in _ListRowGroups(SPEC, encoder.columns).process(metadata):
        for batch in reader.process(unit):
            try:
                encoder.encode(batch)
            except InputDataError as e:
                messages.append(str(e))
    assert len(messages) == 1 and messages[0].startswith(f"{path}: row 18: column 'x' holds -1e+300")


def test_skip_leaves_the_row_out_as_a_bad_record_and_encodes_the_rest(bundle, tmp_path):
    from kdp_beam.transform.beam import TransformFeatures

    rows = clean_rows(12)
    rows[4][0] = "-3.5e38"
    rows[9][3] = "2e39|1"
    write_rows(tmp_path / "skip.csv", rows)
    out = tmp_path / "out"
    os.makedirs(out)
    keep = {"id": "label"}
    columns = _columns(bundle, keep)
    with beam.Pipeline() as p:
        read = p | ReadInput(str(tmp_path / "skip.csv"), SPEC, columns=columns, on_bad_record="skip")
        encoded = read | TransformFeatures(str(bundle / "bundle"), keep, on_bad_record="skip")
        encoded["batches"] | beam.FlatMap(lambda b: b.column("id").to_pylist()) | "Ids" >> beam.io.WriteToText(str(out / "ids"))
        encoded["bad_records"] | beam.Map(lambda r: r.to_json_line()) | "Bad" >> beam.io.WriteToText(str(out / "bad"))
    ids = sorted(line.strip() for name in os.listdir(out) if name.startswith("ids") for line in open(out / name))
    bad = [json.loads(line) for name in os.listdir(out) if name.startswith("bad") for line in open(out / name)]
    assert ids == sorted(f"id{i}" for i in range(12) if i not in (4, 9))
    assert sorted((b["row"], b["column"], b["reason"]) for b in bad) == [(5, "x", "out_of_range"), (10, "m", "out_of_range")]
    assert all(b["file"] == str(tmp_path / "skip.csv") for b in bad)
    assert sorted(b["record"]["id"] for b in bad) == ["id4", "id9"]


def _columns(bundle, keep):
    from kdp_beam.transform.encode import BatchEncoder

    return BatchEncoder(str(bundle / "bundle"), keep).columns


def test_big_batches_are_cut_and_encode_the_same(bundle, encoder, monkeypatch):
    from kdp_beam.transform import beam as transform_beam

    [batch] = csv_batches(bundle / "clean.csv", encoder.columns)
    monkeypatch.setattr(transform_beam, "MAX_BATCH_ROWS", 7)
    fn = transform_beam._EncodeBatches(str(bundle / "bundle"), {"id": "label"}, skip=False)
    fn.setup()
    parts = list(fn.process(batch))
    assert [p.num_rows for p in parts] == [7] * 5 + [5]
    assert pa.Table.from_batches(parts).equals(pa.Table.from_batches([encoder.encode(batch)]))


def test_keep_kinds(bundle, tmp_path):
    from kdp_beam.transform.encode import keep_kinds

    path = str(bundle / "bundle")
    # The label's classes are integers' text; a feature as read; a kind given; else text.
    kinds = keep_kinds(path, ["y", "c", "id:string", "other"], None, "jsonl")
    assert kinds == {"y": "integer", "c": "string", "id": "string", "other": "label"}
    pq.write_table(pa.table({"a": [1], "b": [1.5], "s": ["t"], "x": [1.0]}), tmp_path / "k.parquet")
    kinds = keep_kinds(path, ["a", "b", "s"], str(tmp_path / "*.parquet"), "parquet")
    assert kinds == {"a": "integer", "b": "float", "s": "label"}
    with pytest.raises(InputDataError, match=r"--keep column\(s\) \['nope'\] are not in the file"):
        keep_kinds(path, ["nope"], str(bundle / "clean.csv"), "csv")
    with pytest.raises(InputDataError, match=r"\['id:int'\] are not in the file \(--keep NAME:KIND takes a KIND of"):
        keep_kinds(path, ["id:int"], str(bundle / "clean.csv"), "csv")  # a KIND typo, not a column
    with pytest.raises(SpecError, match="multivalent"):
        keep_kinds(path, ["m"], None, "csv")
    with pytest.raises(SpecError, match="the kind must be one of"):
        keep_kinds(path, [("id", "date")], None, "csv")


def test_kept_text_and_float_columns_read_from_any_tf_example_kind(bundle, tmp_path):
    # A tf.Example id written as int64_list (or a float kept from int64_list), kept with no
    # kind (text) or as float: read as the label is, from whichever kind a record holds,
    # not refused as "expected bytes_list".
    import tensorflow as tf

    from kdp_beam.transform.encode import BatchEncoder, keep_kinds

    path, pattern = str(bundle / "bundle"), str(tmp_path / "k.tfrecord")
    with tf.io.TFRecordWriter(pattern) as writer:
        for i, row in enumerate(clean_rows(6)):
            feature = {
                "x": tf.train.Feature(float_list=tf.train.FloatList(value=[float(row[0])])),
                "p": tf.train.Feature(int64_list=tf.train.Int64List(value=[row[1]])),
                "c": tf.train.Feature(bytes_list=tf.train.BytesList(value=[row[2].encode()])),
                "id": tf.train.Feature(int64_list=tf.train.Int64List(value=[10 + i])),
                "w": tf.train.Feature(int64_list=tf.train.Int64List(value=[i])),
            }
            if i % 2:  # the id as text in some records
                feature["id"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"id%d" % i]))
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    kinds = keep_kinds(path, ["id", "w:float"], pattern, "tfrecord")
    columns = BatchEncoder(path, kinds).columns
    with beam.Pipeline() as p:
        batches = p | ReadInput(pattern, SPEC, columns=columns)
        rows = batches["batches"] | beam.FlatMap(lambda b: zip(b.column("id").to_pylist(), b.column("w").to_pylist()))
        want = [(str(10 + i) if i % 2 == 0 else f"id{i}", float(i)) for i in range(6)]
        assert_that(rows, equal_to(want))


def test_a_kept_feature_is_its_raw_column_beside_its_encoding(bundle, encoder):
    from kdp_beam.transform.encode import BatchEncoder

    kept = BatchEncoder(str(bundle / "bundle"), {"c": "string"})
    [batch] = csv_batches(bundle / "clean.csv", kept.columns)
    encoded = kept.encode(batch)
    assert encoded.column("c_raw").to_pylist() == [row[2] for row in clean_rows()]
    assert encoded.schema.field("c").type == pa.list_(pa.float32(), 4)  # a, b, c and the OOV
    with pytest.raises(SpecError, match="'x_missing', which is a model output's name"):
        BatchEncoder(str(bundle / "bundle"), {"x_missing": "float"})


def test_rows_with_missing_values_encode_as_the_model(bundle, encoder, tmp_path):
    write_rows(tmp_path / "missing.csv", [["", "", "", "", "", ""], ["1.5", "3", "b", "|2", "1", "id"]])
    [batch] = csv_batches(tmp_path / "missing.csv", encoder.columns)
    got = encoder.encode(batch)
    want = encoder.feature_space({"x": [None, 1.5], "p": [None, 3], "c": [None, "b"], "m": [[], [None, 2.0]]})
    for name, value in want.items():
        column = got.column(name)
        np.testing.assert_allclose(
            column.values.to_numpy(zero_copy_only=False).reshape(2, -1), np.asarray(value), atol=1e-6, err_msg=name
        )
    assert got.column("id").to_pylist() == [None, "id"]


def test_a_batch_without_a_column_is_refused_naming_it(encoder):
    batch = pa.RecordBatch.from_pydict({"x": [1.0], "p": [1], "c": ["a"]})
    with pytest.raises(InputDataError, match=r"a batch: no column\(s\) \['m', 'id'\]"):
        encoder.encode(batch)
