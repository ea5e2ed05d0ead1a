"""Multivalent features end to end: the same lists as Parquet list columns, JSON Lines
arrays, CSV fields with a separator and multi-valued tf.Example features give one bundle,
equal to statistics computed here in plain Python, and the model built from it encodes as
numpy says (issue 15's "done means")."""

import csv
import json
import math
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kdp_beam.analyzers import analyze_batches
from kdp_beam.builder.declarations import spec_of
from kdp_beam.bundle.loader import load_bundle
from kdp_beam.io.memory import record_batches
from kdp_beam.job import run_analysis

ROWS = 400
TOKENS = ["red", "green", "blue", "x y", "é", "a,b"]  # a space, a non-ASCII token, a comma
SPEC = {
    "features": {
        "tags": {"type": "string_categorical", "multivalent": True},
        "ids": {"type": "integer_categorical", "multivalent": True, "max_tokens": 5},
        "readings": {"type": "float_normalized", "multivalent": True},
        "hashed": {"type": "string_hashed", "num_bins": 8, "multivalent": True},
        "size": "float_normalized",
    }
}


def _rows(seed=15):
    """Lists of 0-6 values (some rows empty), and a scalar column beside them."""
    rng = random.Random(seed)
    rows = []
    for i in range(ROWS):
        rows.append({
            "tags": [rng.choice(TOKENS) for _ in range(rng.randint(0, 6))],
            "ids": [rng.choice([3, 7, 7, 11, 2**40, -5]) for _ in range(rng.randint(0, 4))],
            "readings": [round(rng.gauss(100.0, 15.0), 3) for _ in range(rng.randint(0, 5))],
            "hashed": [rng.choice(TOKENS) for _ in range(rng.randint(0, 3))],
            "size": round(rng.uniform(0, 10), 2),
        })
    return rows


def _write_parquet(rows, path):
    table = pa.table({
        "tags": pa.array([r["tags"] for r in rows], pa.list_(pa.string())),
        "ids": pa.array([r["ids"] for r in rows], pa.list_(pa.int64())),
        "readings": pa.array([r["readings"] for r in rows], pa.list_(pa.float64())),
        "hashed": pa.array([r["hashed"] for r in rows], pa.list_(pa.string())),
        "size": pa.array([r["size"] for r in rows], pa.float64()),
    })
    pq.write_table(table, path, row_group_size=97)


def _write_jsonl(rows, path):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def _write_csv(rows, path):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(list(rows[0]))
        for r in rows:
            writer.writerow(["|".join(map(repr if k == "readings" else str, r[k])) if isinstance(r[k], list) else r[k]
                             for k in r])


def _write_tfrecord(rows, path):
    import tensorflow as tf

    def feature(values):
        if values and isinstance(values[0], str):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))
        if values and isinstance(values[0], int):
            return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))

    with tf.io.TFRecordWriter(str(path)) as writer:
        for r in rows:
            features = {k: feature(v if isinstance(v, list) else [v]) for k, v in r.items() if v != []}
            writer.write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())


WRITERS = {"parquet": _write_parquet, "jsonl": _write_jsonl, "csv": _write_csv, "tfrecord": _write_tfrecord}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    rows = _rows()
    found = {}
    for fmt, write in WRITERS.items():
        root = tmp_path_factory.mktemp(fmt)
        write(rows, root / f"data.{fmt}")
        spec = SPEC
        if fmt == "tfrecord":  # tf.Example holds float32: the oracle reads the same
            spec = json.loads(json.dumps(SPEC))
        run_analysis(spec, str(root / f"data.{fmt}"), str(root / "bundle"))
        found[fmt] = load_bundle(str(root / "bundle"))
    return rows, found


def _float32(x):
    return float(np.float32(x))


def _oracle(rows, name, as_float32=False):
    """The statistics of one multivalent feature, in plain Python."""
    lists = [r[name] for r in rows]
    values = [v for values in lists for v in values]
    lengths = [len(values) for values in lists]
    stats = {
        "count": len(values),
        "empty_count": sum(1 for n in lengths if n == 0),
        "min_values_per_row": min(lengths),
        "max_values_per_row": max(lengths),
        "mean_values_per_row": len(values) / len(rows),
    }
    if values and isinstance(values[0], float):
        xs = [_float32(v) if as_float32 else v for v in values]
        mean = math.fsum(xs) / len(xs)
        stats |= {"mean": mean, "variance": math.fsum((x - mean) ** 2 for x in xs) / len(xs),
                  "min": min(xs), "max": max(xs)}
    else:
        counts, documents = {}, {}
        for values in lists:
            for v in values:
                counts[v] = counts.get(v, 0) + 1
            for v in set(values):
                documents[v] = documents.get(v, 0) + 1
        stats |= {"counts": counts, "documents": documents}
    return stats


@pytest.mark.parametrize("name", ["tags", "ids", "readings", "hashed"])
def test_every_format_gives_the_statistics_python_computes(bundles, name):
    rows, found = bundles
    for fmt, bundle in found.items():
        stats = bundle.features[name]
        oracle = _oracle(rows, name, as_float32=fmt == "tfrecord")
        for key in ("count", "empty_count", "min_values_per_row", "max_values_per_row"):
            assert stats[key] == oracle[key], (fmt, key)
        assert stats["mean_values_per_row"] == pytest.approx(oracle["mean_values_per_row"], rel=1e-12)
        assert stats["null_count"] == 0
        if "mean" in oracle:
            for key in ("mean", "variance", "min", "max"):
                assert stats[key] == pytest.approx(oracle[key], rel=1e-9), (fmt, key)
        elif "vocabulary" in stats:
            ranked = sorted(oracle["counts"].items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
            keep = len(ranked) if name != "ids" else 5 - 1
            assert stats["vocabulary"] == [t for t, _ in ranked][:keep], fmt
            assert stats["vocabulary_counts"] == [c for _, c in ranked][:keep], fmt
            assert stats["vocabulary_document_counts"] == [oracle["documents"][t] for t, _ in ranked][:keep], fmt
            assert stats["distinct_count"] == len(ranked)


def test_the_formats_give_one_bundle(bundles):
    """Equal statistics (floating ones to the rounding of another batching: the files are
    read in batches of different sizes) from Parquet, JSON Lines and CSV."""
    _, found = bundles
    exact = {fmt: b.features for fmt, b in found.items() if fmt != "tfrecord"}
    first = exact.pop("parquet")
    for fmt, features in exact.items():
        for name in ("tags", "ids", "readings", "hashed"):
            for key, value in first[name].items():
                other = features[name][key]
                if key == "profile_quantiles":  # a sketch of values batched otherwise: within its error
                    np.testing.assert_allclose(other, value, rtol=0.05)
                elif isinstance(value, float):
                    assert other == pytest.approx(value, rel=1e-12), (fmt, name, key)
                else:
                    assert other == value, (fmt, name, key)


def test_the_model_encodes_each_row_as_numpy_does(bundles, tmp_path):
    import keras

    from kdp_beam import FeatureSpace

    rows, found = bundles
    bundle = found["parquet"]
    space = FeatureSpace.from_artifacts(bundle, output_mode="dict")
    batch = rows[:50]
    data = {name: [r[name] for r in batch] for name in ("tags", "ids", "readings", "hashed")}
    data["size"] = [r["size"] for r in batch]
    encoded = {k: np.asarray(v) for k, v in space(data).items()}

    vocabulary = bundle.features["tags"]["vocabulary"]
    expected = np.zeros((len(batch), len(vocabulary) + 1), np.float32)  # OOV first, as keras' one_hot
    for i, r in enumerate(batch):
        for t in r["tags"]:
            expected[i, 1 + vocabulary.index(t)] = 1.0
    np.testing.assert_array_equal(encoded["tags"], expected)

    ids = bundle.features["ids"]["vocabulary"]
    expected = np.zeros((len(batch), len(ids) + 1), np.float32)
    for i, r in enumerate(batch):
        for t in r["ids"]:
            expected[i, 1 + ids.index(t) if t in ids else 0] = 1.0
    np.testing.assert_array_equal(encoded["ids"], expected)

    stats = bundle.features["readings"]
    std = math.sqrt(stats["variance"])
    expected = np.array([np.mean([(x - stats["mean"]) / std for x in r["readings"]]) if r["readings"] else 0.0
                         for r in batch], np.float32)
    np.testing.assert_allclose(encoded["readings"].reshape(-1), expected, atol=1e-5)

    # The saved model encodes the same.
    path = tmp_path / "space.keras"
    space.save(str(path))
    again = keras.models.load_model(str(path))
    for name, value in again(data).items():
        np.testing.assert_allclose(np.asarray(value), encoded[name], atol=1e-6)


def _statistics_without_sketches(stats):
    """Statistics to compare across paths: the sketches' approximate points and the
    bundle's file names left out."""
    return {k: v for k, v in stats.items() if not k.endswith(("_quantiles", "_file")) and k != "bin_boundaries"}


@pytest.mark.parametrize("form", ["dict of lists", "DataFrame of lists", "tf.data ragged", "tf.data padded"])
def test_adapt_in_memory_gives_the_bundle_the_files_give(bundles, form):
    import pandas as pd
    import tensorflow as tf

    from kdp_beam import FeatureSpace

    rows, found = bundles
    names = ("tags", "ids", "readings", "hashed", "size")
    data = {name: [r[name] for r in rows] for name in names}
    if form == "DataFrame of lists":
        data = pd.DataFrame(data)
    elif form == "tf.data ragged":  # (numbers as float64: tf makes Python floats float32)
        data = tf.data.Dataset.from_tensor_slices({
            name: tf.ragged.constant(values, tf.float64 if name == "readings" else None) if name != "size" else values
            for name, values in data.items()
        }).batch(64)
    elif form == "tf.data padded":  # padding "", NaN and the integer pad_value -1, dropped
        width = 7
        def padded(values, pad):
            return [v + [pad] * (width - len(v)) for v in values]
        data = tf.data.Dataset.from_tensor_slices({
            "tags": padded(data["tags"], ""), "hashed": padded(data["hashed"], ""),
            "ids": tf.constant(padded(data["ids"], -1), tf.int64),
            "readings": tf.constant(padded(data["readings"], float("nan")), tf.float64), "size": data["size"],
        }).batch(50)
    space = FeatureSpace(SPEC["features"], output_mode="dict")
    space.adapt(data)
    expected = found["parquet"].features
    for name in ("tags", "ids", "readings", "hashed"):  # what adapt computed, from what adapt reads
        got = analyze_batches(spec_of(space), record_batches(data, spec_of(space)))["features"][name]
        for key, value in _statistics_without_sketches(expected[name]).items():
            if isinstance(value, float):
                assert got[key] == pytest.approx(value, rel=1e-9), (form, name, key)
            else:
                assert got[key] == value, (form, name, key)
    # ... and the adapted space encodes as the one built from the bundle.
    sample = {name: [r[name] for r in rows[:20]] for name in names}
    from_bundle = FeatureSpace.from_artifacts(found["parquet"], output_mode="dict")
    for name, value in space(sample).items():
        np.testing.assert_allclose(np.asarray(value), np.asarray(from_bundle(sample)[name]), atol=1e-6)
