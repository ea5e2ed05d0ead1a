"""Shared fixtures: small real datasets written as real files."""

import math
import os
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from hypothesis import settings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The suite runs the same hypothesis cases every time (a CI failure is then ours, not the
# seed's); a fuzzing campaign draws new random cases:
#   .venv/bin/python -m pytest tests/test_fuzz.py --hypothesis-profile=fuzz
settings.register_profile("ci", max_examples=150, derandomize=True, print_blob=True)
settings.register_profile("fuzz", max_examples=5000, derandomize=False, print_blob=True)
settings.load_profile("ci")


def write_shards(table, directory, shards, fmt="csv", row_group_size=None):
    """Writes `table` as `shards` files of format csv/parquet; returns the glob pattern."""
    os.makedirs(directory, exist_ok=True)
    bounds = np.linspace(0, table.num_rows, shards + 1).astype(int)
    for i, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
        part = table.slice(start, stop - start)
        path = os.path.join(directory, f"part-{i:05d}.{fmt}")
        if fmt == "csv":
            pa_csv.write_csv(part, path)
        else:
            pq.write_table(part, path, row_group_size=row_group_size or max(part.num_rows, 1))
    return os.path.join(directory, f"*.{fmt}")


def exact_moments(values):
    """Independent reference: mean and population variance in exact rational arithmetic
    over the finite values, rounded once to float."""
    values = [Fraction(v) for v in values if v is not None and math.isfinite(v)]
    n = len(values)
    mean = sum(values) / n
    return float(mean), float(sum((v - mean) ** 2 for v in values) / n)


def mixed_table(rows=3000, seed=0):
    """A table with every column kind and awkward values."""
    rng = np.random.default_rng(seed)
    big = rng.normal(1e8, 1e3, rows)
    ts = rng.normal(1.6e9, 50.0, rows).round()
    score = rng.normal(0, 1, rows)
    score[rng.random(rows) < 0.05] = np.nan
    cities = np.array(["Paris", "", "Zürich", "a,b", 'q"uote', "new\nline", "[UNK]", "x" * 300])
    return pa.table(
        {
            "big": big,
            "ts": ts,
            "score": pa.array(score, from_pandas=True),  # NaN -> null in CSV (empty field)
            "city": rng.choice(cities, rows, p=[0.3, 0.1, 0.15, 0.1, 0.1, 0.1, 0.05, 0.1]),
            "store": rng.integers(-1, 40, rows),
            "tag": rng.choice(["a", "b", "c", "d"], rows),
        }
    )


MIXED_FEATURES = {
    "big": "float_normalized",
    "ts": {"type": "float_discretized", "num_bins": 5},
    "score": "float_normalized",
    "city": {"type": "string_categorical", "max_tokens": 6},
    "store": "integer_categorical",
    "tag": {"type": "string_hashed", "num_bins": 8},
}


@pytest.fixture
def mixed():
    return mixed_table()
