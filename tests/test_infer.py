"""kdp-beam infer proposes declarations with reasons, usable by analyze as written."""

import json

import numpy as np
import pyarrow as pa
import pytest

import kdp_beam
from kdp_beam.cli import main
from kdp_beam.job import run_analysis
from tests.conftest import write_shards


def table(rows=3000, seed=0):
    rng = np.random.default_rng(seed)
    words = ["alpha", "beta", "gamma", "delta", "eps"]
    return pa.table(
        {
            "price": rng.lognormal(3, 1, rows),
            "rating": rng.integers(1, 6, rows),
            "count": rng.integers(0, 300, rows),
            "user_id": rng.permutation(rows) + 10**12,
            "amount_cents": rng.integers(0, 10**9, rows),  # nearly all distinct, not an ID
            "row": np.arange(rows) + 7,  # all distinct and dense: row numbers
            "country": rng.choice(["FR", "DE", "NA", "BR"], rows),  # "NA" is Namibia here
            "session": [f"s-{v}" for v in rng.permutation(rows)],
            "comment": [" ".join(rng.choice(words, rng.integers(3, 9))) + f" #{i}" for i in range(rows)],
            "when": [f"2024-{m:02d}-{d:02d}T10:00:00" for m, d in zip(rng.integers(1, 13, rows), rng.integers(1, 29, rows))],
            "nothing": pa.array([None] * rows, pa.float64()),
        }
    )


EXPECTED = {
    "price": "float_normalized",
    "rating": "integer_categorical",
    "count": "float_normalized",
    "user_id": "integer_hashed",
    "amount_cents": "float_normalized",
    "row": "integer_hashed",
    "country": "string_categorical",
    "session": "string_hashed",
    "comment": "text",
    "when": "date",
}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_infer_chooses_by_type_cardinality_tokens_and_parsing(tmp_path, fmt):
    pattern = write_shards(table(), tmp_path / fmt, 2, fmt=fmt)
    out = tmp_path / "features.json"
    assert main(["infer", "--input", pattern, "--output", str(out), "--sample-rows", "2500"]) == 0
    proposed = json.loads(out.read_text())
    kinds = {n: d if isinstance(d, str) else d["type"] for n, d in proposed["features"].items()}
    assert kinds == EXPECTED
    assert "nothing" not in proposed["features"] and "no value" in proposed["notes"]["nothing"]
    assert "identifiers (named like one)" in proposed["notes"]["user_id"]
    assert "row numbers" in proposed["notes"]["row"] and "quantity" in proposed["notes"]["amount_cents"]
    assert "date" in proposed["notes"]["when"]
    assert set(proposed["notes"]) == set(table().column_names)
    # Ready to use as written: analyse with it and build the model.
    run_analysis(str(out), pattern, str(tmp_path / "bundle"))
    fs = kdp_beam.FeatureSpace.from_artifacts(str(tmp_path / "bundle"))
    assert fs.get_encoded_features().shape[-1] > 0
