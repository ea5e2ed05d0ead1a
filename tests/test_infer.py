"""kdp-beam infer proposes declarations with reasons, usable by analyze as written."""

import json
import re

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


def write_json_lines(data, directory):
    """Two JSON Lines files; the first starts with lines that are not objects (`null`
    crashes pyarrow's JSON parser), which the sample leaves out."""
    directory.mkdir()
    rows = data.to_pylist()
    half = len(rows) // 2
    for i, part in enumerate([rows[:half], rows[half:]]):
        lines = (["null", "[1, 2]", "{not json"] if i == 0 else []) + [json.dumps(r) for r in part]
        (directory / f"part-{i}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(directory / "*.jsonl")


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_infer_chooses_by_type_cardinality_tokens_and_parsing(tmp_path, fmt):
    if fmt == "jsonl":
        pattern = write_json_lines(table(), tmp_path / fmt)
    else:
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
    run_analysis(str(out), pattern, str(tmp_path / "bundle"), on_bad_record="skip")  # jsonl: 3 bad lines
    fs = kdp_beam.FeatureSpace.from_artifacts(str(tmp_path / "bundle"))
    assert fs.get_encoded_features().shape[-1] > 0


def test_files_typed_differently_are_unified_or_named(tmp_path, capsys):
    (tmp_path / "a.csv").write_text("amount,code\n1,7\n2,8\n")
    (tmp_path / "b.csv").write_text("amount,code\n2.5,x\n3.5,y\n")
    out = tmp_path / "f.json"
    assert main(["infer", "--input", str(tmp_path / "a.csv"), "--output", str(out)]) == 0
    (tmp_path / "c.csv").write_text("amount\n1\n2\n")
    (tmp_path / "d.csv").write_text("amount\n2.5\n3.5\n")
    assert main(["infer", "--input", str(tmp_path / "[cd].csv"), "--output", str(out)]) == 0
    assert json.loads(out.read_text())["features"] == {"amount": "float_normalized"}  # int64 + double
    assert main(["infer", "--input", str(tmp_path / "[ab].csv"), "--output", str(out)]) == 2
    assert re.search(r"column 'code' is int64 in \S*a\.csv but string in \S*b\.csv", capsys.readouterr().err)


def write_table(data, directory, fmt):
    if fmt == "jsonl":
        directory.mkdir()
        lines = [json.dumps(row, default=str) for row in data.to_pylist()]
        (directory / "d.jsonl").write_text("\n".join(lines) + "\n")
        return str(directory / "d.jsonl")
    return write_shards(data, directory, 1, fmt=fmt)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_a_true_false_column_is_proposed_as_categories_analyze_accepts(tmp_path, fmt):
    flags = [True, False, True, None] * 25
    pattern = write_table(pa.table({"flag": flags, "x": np.arange(100) * 0.5}), tmp_path / fmt, fmt)
    out = tmp_path / "features.json"
    assert main(["infer", "--input", pattern, "--output", str(out)]) == 0
    assert json.loads(out.read_text())["features"]["flag"] == "string_categorical"
    run_analysis(str(out), pattern, str(tmp_path / "bundle"))
    stats = kdp_beam.load_bundle(str(tmp_path / "bundle")).features["flag"]
    # Oracle: the Python list's own counts, as the text "true"/"false".
    assert dict(zip(stats["vocabulary"], stats["vocabulary_counts"])) == {"true": flags.count(True), "false": flags.count(False)}
    assert stats["null_count"] == flags.count(None)
