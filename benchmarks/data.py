"""Mock data as in KDP's motivation: half float features, half string categorical ones."""

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

SHARDS = 4
CATEGORIES = 100  # distinct values of each string feature


def feature_names(num_features):
    floats = [f"num_{i}" for i in range((num_features + 1) // 2)]
    strings = [f"cat_{i}" for i in range(num_features // 2)]
    return floats, strings


def seed_columns(rng, n, floats, strings):
    """`n` rows of the seed's columns: normal floats of growing mean and spread, and
    strings of CATEGORIES Zipf-distributed values."""
    vocab = np.array([f"v{j:03d}" for j in range(CATEGORIES)])
    columns = {name: rng.normal(i * 10.0, 1.0 + i, n) for i, name in enumerate(floats)}
    return columns | {name: vocab[rng.zipf(1.3, n) % CATEGORIES] for name in strings}


def write_dataset(directory, rows, num_features, seed=0, shards=SHARDS, file_format="csv"):
    """Writes `rows` x `num_features` as `shards` files (once; reused if present) and the
    kdp_beam features file. `file_format` "csv", or "parquet" (pyarrow's default row
    groups); the same seed and shards give the same values in either. Returns (file pattern,
    features.json path)."""
    pattern = os.path.join(directory, f"part-*.{file_format}")
    features_path = os.path.join(directory, "features.json")
    floats, strings = feature_names(num_features)
    if not os.path.exists(os.path.join(directory, "_SUCCESS")):
        os.makedirs(directory, exist_ok=True)
        rng = np.random.default_rng(seed)
        bounds = np.linspace(0, rows, shards + 1).astype(int)
        for shard, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
            n = stop - start
            columns = seed_columns(rng, n, floats, strings)
            path = os.path.join(directory, f"part-{shard:05d}.{file_format}")
            if file_format == "parquet":
                pq.write_table(pa.table(columns), path)
            else:
                pa_csv.write_csv(pa.table(columns), path)
        spec = {name: "float_normalized" for name in floats}
        spec |= {name: "string_categorical" for name in strings}
        with open(features_path, "w") as f:
            json.dump({"features": spec}, f, indent=1)
        open(os.path.join(directory, "_SUCCESS"), "w").close()
    return pattern, features_path
