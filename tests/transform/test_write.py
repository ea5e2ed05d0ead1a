"""The shard writers and the manifest, on encoded batches built here, through real Beam
pipelines; the oracles are tf.train.Example.FromString, pyarrow.parquet, hashlib and a bitwise CRC-32C."""

import hashlib
import json
import os
import pathlib

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kdp_beam.bad_records import BadRecord
from kdp_beam.bundle.staging import DATASET, staged_output
from kdp_beam.errors import BundleError
from kdp_beam.transform.manifest import FORMAT_NAME
from kdp_beam.transform.write import WriteDataset

BUNDLE = {"path": "b/", "manifest_sha256": "0" * 64, "format_version": 2}
INPUT = {"pattern": "in/*.csv", "format": "csv", "on_bad_record": "skip"}


def _field(name, kind, role, source=None):
    return pa.field(name, kind, metadata={"kdp_beam.role": role, "kdp_beam.source": source or name})


SCHEMA = pa.schema(
    [
        _field("x", pa.list_(pa.float32(), 3), "feature"),
        _field("c", pa.list_(pa.int64(), 1), "feature"),
        _field("x_missing", pa.list_(pa.float32(), 1), "indicator", "x"),
        _field("s", pa.list_(pa.string(), 1), "feature"),
        _field("label", pa.int64(), "keep"),
        _field("weight", pa.float64(), "keep"),
        _field("key", pa.string(), "keep"),
    ]
)


def encoded_batch(start, rows):
    """Rows start..start+rows-1 of a known table: every value derived from the row."""
    n = np.arange(start, start + rows)
    fixed = lambda values, width: pa.FixedSizeListArray.from_arrays(pa.array(values), width)  # noqa: E731
    weight = pa.array([None if i % 4 == 0 else i / 3 for i in n], pa.float64())
    return pa.RecordBatch.from_arrays(
        [
            fixed(np.stack([n, n + 0.5, -n], axis=1).astype(np.float32).ravel(), 3),
            fixed(n % 5, 1),
            fixed((n % 2).astype(np.float32), 1),
            fixed(pa.array([f"v{i}" for i in n]), 1),
            pa.array(n * 10),
            weight,
            pa.array([f"k{i}" for i in n]),
        ],
        schema=SCHEMA,
    )


BATCHES = [encoded_batch(0, 7), encoded_batch(7, 5), encoded_batch(12, 9)]


def write(output_dir, file_format, batches=BATCHES, bad=(), max_rows=None):
    with beam.Pipeline("FnApiRunner") as p:
        bad_records = p | "Bad" >> beam.Create(list(bad), reshuffle=False) if bad else None
        (
            p
            | beam.Create(batches, reshuffle=False)
            | WriteDataset(str(output_dir), file_format, SCHEMA, BUNDLE, INPUT, bad_records, max_rows=max_rows)
        )
    return json.loads((output_dir / "manifest.json").read_text())


def crc32c(data):
    """CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit: the oracle of the
    writer's (google_crc32c's) checksum; check value crc32c(b"123456789") = 0xE3069283."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return f"{crc ^ 0xFFFFFFFF:08x}"


def check_files(output_dir, manifest):
    """Every listed file is there with its size and CRC-32C, and nothing else is under data/."""
    assert crc32c(b"123456789") == "e3069283"
    listed = {f["path"] for f in manifest["files"]}
    assert {f"data/{n}" for n in os.listdir(output_dir / "data")} == listed
    for f in manifest["files"]:
        data = (output_dir / f["path"]).read_bytes()
        assert len(data) == f["bytes"] and crc32c(data) == f["crc32c"]


def test_tfrecord_rows_equal_the_batches(tmp_path):
    import tensorflow as tf

    manifest = write(tmp_path, "tfrecord", max_rows=8)
    check_files(tmp_path, manifest)
    assert manifest["format"] == FORMAT_NAME and manifest["file_format"] == "tfrecord"
    assert manifest["row_count"] == 21 and manifest["bundle"] == BUNDLE and manifest["input"] == INPUT
    # 7 + 5 rows reach 8 in the first file, the 9 of the third batch fill the second
    assert sorted(f["rows"] for f in manifest["files"]) == [9, 12]
    assert [(e["name"], e["dtype"], e["width"], e["role"], e["source"]) for e in manifest["schema"]] == [
        ("x", "float32", 3, "feature", "x"),
        ("c", "int64", 1, "feature", "c"),
        ("x_missing", "float32", 1, "indicator", "x"),
        ("s", "string", 1, "feature", "s"),
        ("label", "int64", None, "keep", "label"),
        ("weight", "float32", None, "keep", "weight"),  # tf.Example has no doubles
        ("key", "string", None, "keep", "key"),
    ]
    assert [e.get("null_count") for e in manifest["schema"][4:]] == [0, 6, 0]
    expected = pa.Table.from_batches(BATCHES).to_pylist()
    rows = []
    for f in sorted(manifest["files"], key=lambda f: f["rows"], reverse=True):  # the 12 first
        for record in tf.data.TFRecordDataset(str(tmp_path / f["path"])):
            features = tf.train.Example.FromString(record.numpy()).features.feature
            rows.append(
                {
                    "x": list(features["x"].float_list.value),
                    "c": list(features["c"].int64_list.value),
                    "x_missing": list(features["x_missing"].float_list.value),
                    "s": [v.decode() for v in features["s"].bytes_list.value],
                    "label": features["label"].int64_list.value[0],
                    "weight": _none_for_nan(features["weight"].float_list.value[0]),  # missing: NaN
                    "key": features["key"].bytes_list.value[0].decode(),
                }
            )
    for row in expected:
        if row["weight"] is not None:
            row["weight"] = float(np.float32(row["weight"]))
    assert rows == expected


def _none_for_nan(value):
    return None if value != value else value


def test_parquet_keeps_the_fixed_size_lists(tmp_path):
    manifest = write(tmp_path, "parquet")
    check_files(tmp_path, manifest)
    assert manifest["row_count"] == 21 and len(manifest["files"]) == 1  # one bundle, one file
    table = pq.read_table(tmp_path / manifest["files"][0]["path"])
    assert table.schema.remove_metadata().equals(SCHEMA.remove_metadata(), check_metadata=False)
    assert table.to_pylist() == pa.Table.from_batches(BATCHES).to_pylist()  # float64 kept whole
    assert manifest["schema"][5]["dtype"] == "float64"


def test_bad_records_counted_and_kept(tmp_path):
    bad = [
        BadRecord("in/a.csv", "wrong_field_count", "3 fields, 4 expected", ["1", "2", "3"], 10, 2, 3),
        BadRecord("in/a.csv", "unparseable_number", "x: 'abc'", ["a"], 20, 3, 4, "x"),
        BadRecord("in/b.csv", "unparseable_number", "x: 'z'", ["z"], 5, 1, 2, "x"),
    ]
    manifest = write(tmp_path, "tfrecord", bad=bad)
    assert manifest["bad_record_count"] == 3
    assert manifest["bad_records"]["by_reason"] == {"unparseable_number": 2, "wrong_field_count": 1}
    lines = []
    for entry in manifest["bad_records"]["files"]:
        data = (tmp_path / entry["path"]).read_bytes()
        assert entry["path"].startswith("bad_records/") and hashlib.sha256(data).hexdigest() == entry["sha256"]
        lines += [json.loads(line) for line in data.decode().splitlines()]
    assert sorted(line["record"] for line in lines) == sorted(r.record for r in bad)


def test_no_rows_makes_an_empty_dataset(tmp_path):
    manifest = write(tmp_path, "parquet", batches=[encoded_batch(0, 0)])
    assert manifest["row_count"] == 0 and manifest["files"] == []


def test_orphans_of_a_retried_bundle_are_deleted(tmp_path):
    """A file under data/ that no record names (what a failed attempt of a bundle leaves)
    is gone before the manifest is written: the directory holds exactly the dataset."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "part-0123456789abcdef-00000.parquet").write_bytes(b"half a file")
    manifest = write(tmp_path, "parquet")
    check_files(tmp_path, manifest)
    assert len(os.listdir(tmp_path / "data")) == 1


def test_staging_replaces_a_dataset_with_a_dataset_only(tmp_path):
    dataset, bundle = tmp_path / "encoded", tmp_path / "bundle"
    with staged_output(str(dataset), DATASET) as staging:
        write(pathlib.Path(staging), "parquet")
    with staged_output(str(dataset), DATASET) as staging:  # a previous dataset: replaced
        write(pathlib.Path(staging), "tfrecord")
    assert json.loads((dataset / "manifest.json").read_text())["file_format"] == "tfrecord"
    assert len(os.listdir(dataset / "data")) == 1  # nothing of the previous one left
    with pytest.raises(BundleError, match="holds a kdp_beam transformed dataset, which kdp-beam analyze"):
        with staged_output(str(dataset)):  # an analysis into a dataset: refused
            pass
    bundle.mkdir()
    (bundle / "manifest.json").write_text(json.dumps({"format": "kdp_beam artifact bundle"}))
    with pytest.raises(BundleError, match="holds a kdp_beam bundle, which kdp-beam transform"):
        with staged_output(str(bundle), DATASET):
            pass
    (dataset / "notes.txt").write_text("mine")
    with pytest.raises(BundleError, match=r"not part of a kdp_beam transformed dataset \(notes.txt\)"):
        with staged_output(str(dataset), DATASET):
            pass
