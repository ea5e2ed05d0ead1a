"""The same rows as CSV, Parquet, TFRecord and JSON Lines give the same bundle."""

import gzip
import json
import os

import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf

from kdp_beam.bundle.loader import load_bundle
from kdp_beam.errors import InputDataError
from kdp_beam.job import run_analysis
from kdp_beam.spec import FeatureSpec
from tests.conftest import write_shards

FEATURES = {
    "price": "float_normalized",
    "age": {"type": "float_discretized", "num_bins": 4},
    "user": {"type": "integer_categorical", "max_tokens": 50},
    "city": {"type": "string_categorical", "missing_token": "(none)"},
    "shop": {"type": "string_hashed", "num_bins": 8},
    "review": {"type": "text", "max_tokens": 30, "ngrams": 2, "output_mode": "tf_idf"},
    "day": {"type": "date", "components": ["year", "month", "day_of_week", "hour"]},
}


def table(rows=1500, seed=3):
    """Rows with nulls in every column; floats exact in float32 (tf.Example's type)."""
    rng = np.random.default_rng(seed)

    def holes(values, rate=0.07):
        return [None if rng.random() < rate else v for v in values]

    words = ["good", "bad", "Fast!", "slow", "price,", "OK", "é", "the"]
    reviews = [" ".join(rng.choice(words, rng.integers(0, 6))) for _ in range(rows)]
    days = [
        f"20{rng.integers(10, 25)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}"
        + (f"T{rng.integers(0, 24):02d}:15:00" if rng.random() < 0.5 else "")
        for _ in range(rows)
    ]
    days[::97] = ["not a date"] * len(days[::97])
    return pa.table(
        {
            "price": pa.array(holes(np.float32(rng.lognormal(3, 1, rows)).astype(float).tolist()), pa.float64()),
            "age": pa.array(holes(rng.integers(18, 90, rows).astype(float).tolist()), pa.float64()),
            "user": pa.array(holes((2**40 + rng.integers(0, 80, rows)).tolist()), pa.int64()),
            "city": pa.array(holes(rng.choice(["Paris", "Oslo", "Zürich", "a,b"], rows).tolist())),
            "shop": pa.array(holes([f"s{i}" for i in rng.integers(0, 30, rows)])),
            "review": pa.array(holes(reviews)),
            "day": pa.array(holes(days)),
        }
    )


def write_tfrecords(data, directory, shards, compress=False):
    os.makedirs(directory, exist_ok=True)
    rows = data.to_pylist()
    suffix, options = (".tfrecord.gz", "GZIP") if compress else (".tfrecord", None)
    for shard, part in enumerate(np.array_split(np.arange(len(rows)), shards)):
        with tf.io.TFRecordWriter(os.path.join(directory, f"part-{shard}{suffix}"), options) as writer:
            for i in part:
                features = {}
                for name, value in rows[i].items():
                    if value is None:
                        continue  # a missing value is an absent feature
                    if isinstance(value, float):
                        features[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
                    elif isinstance(value, int):
                        features[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
                    else:
                        features[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
                example = tf.train.Example(features=tf.train.Features(feature=features))
                writer.write(example.SerializeToString())
    return os.path.join(directory, f"*{suffix}")


def write_jsonl(data, directory, shards, compress=False):
    os.makedirs(directory, exist_ok=True)
    rows = data.to_pylist()
    suffix, opener = (".jsonl.gz", gzip.open) if compress else (".jsonl", open)
    for shard, part in enumerate(np.array_split(np.arange(len(rows)), shards)):
        with opener(os.path.join(directory, f"part-{shard}{suffix}"), "wt", encoding="utf-8") as f:
            for i in part:
                f.write(json.dumps(rows[i], ensure_ascii=False) + "\n")
    return os.path.join(directory, f"*{suffix}")


def comparable(bundle):
    """Statistics with floats rounded to 12 significant digits (merge order differs)."""

    def round_floats(value):
        if isinstance(value, float):
            return float(f"{value:.12g}")
        if isinstance(value, dict):
            return {k: round_floats(v) for k, v in value.items() if k not in ("bin_boundaries", "profile_quantiles")}
        if isinstance(value, list):
            return [round_floats(v) for v in value]
        return value

    return round_floats(bundle.features)


def test_csv_parquet_tfrecord_and_jsonl_give_identical_statistics(tmp_path):
    data = table()
    spec = FeatureSpec(FEATURES)
    patterns = {
        "csv": write_shards(data, tmp_path / "csv", 3),
        "parquet": write_shards(data, tmp_path / "parquet", 2, fmt="parquet", row_group_size=200),
        "tfrecord": write_tfrecords(data, tmp_path / "tfrecord", 3),
        "jsonl": write_jsonl(data, tmp_path / "jsonl", 2),
        "tfrecord.gz": write_tfrecords(data, tmp_path / "tfrecord-gz", 2, compress=True),
        "jsonl.gz": write_jsonl(data, tmp_path / "jsonl-gz", 2, compress=True),
    }
    bundles = {}
    for fmt, pattern in patterns.items():
        summary = run_analysis(spec, pattern, str(tmp_path / f"bundle-{fmt}"))
        assert summary["rows_read"] == data.num_rows, fmt
        bundles[fmt] = load_bundle(str(tmp_path / f"bundle-{fmt}"))
    reference = comparable(bundles["csv"])
    for fmt in patterns:
        assert comparable(bundles[fmt]) == reference, fmt
    # Quantile sketches see the same values in a different order: within their error.
    for fmt in patterns:
        for name, stats in bundles["csv"].features.items():
            for key in ("bin_boundaries", "profile_quantiles"):
                if key in stats:
                    np.testing.assert_allclose(bundles[fmt].features[name][key], stats[key], atol=1.0)
    stats = bundles["csv"].features
    assert stats["user"]["vocabulary"][0] >= 2**40  # int64 IDs survive every format
    assert stats["city"]["null_count"] == sum(v is None for v in data["city"].to_pylist())
    assert stats["day"]["unparseable_count"] == sum(
        v == "not a date" for v in data["day"].to_pylist()
    )


def test_tfrecord_with_a_list_feature_names_the_file_and_feature(tmp_path):
    os.makedirs(tmp_path / "t")
    path = tmp_path / "t" / "x.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        example = tf.train.Example(
            features=tf.train.Features(
                feature={"x": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0, 2.0]))}
            )
        )
        writer.write(example.SerializeToString())
    with pytest.raises(InputDataError, match=r"x\.tfrecord: record 1: a record has 2 values for feature 'x'"):
        run_analysis(FeatureSpec({"x": "float_normalized"}), str(path), str(tmp_path / "b"))


def test_jsonl_with_a_wrong_type_names_the_file_line_and_key(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"x": 1.5}\n{"x": 2}\n\n{"x": "three"}\n')
    with pytest.raises(InputDataError, match=r"x\.jsonl: line 4, key 'x': 'three' is not a number"):
        run_analysis(FeatureSpec({"x": "float_normalized"}), str(path), str(tmp_path / "b"))
