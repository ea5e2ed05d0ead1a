"""Large CSV and JSON Lines files read as byte ranges give the statistics of the unsplit
read."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from kdp_beam.bundle.loader import load_bundle
from kdp_beam.errors import InputDataError
from kdp_beam.job import run_analysis
from kdp_beam.spec import FeatureSpec

FEATURES = FeatureSpec(
    {
        "x": "float_normalized",
        "q": {"type": "float_discretized", "num_bins": 4},
        "city": {"type": "string_categorical", "max_tokens": 6},
        "id": "integer_categorical",
        "note": {"type": "text", "max_tokens": 20},
    }
)


def table(rows, cities, seed=0):
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "x": pa.array(rng.normal(1e6, 3, rows)),
            "q": pa.array([None if i % 11 == 0 else float(v) for i, v in enumerate(rng.integers(0, 99, rows))]),
            "city": rng.choice(cities, rows),
            "id": rng.integers(0, 50, rows),
            "note": [" ".join(rng.choice(["a", "b,c", "d!", "e"], rng.integers(0, 4))) for _ in range(rows)],
        }
    )


def analyse(tmp_path, data, split_size, name, fmt="csv"):
    path = tmp_path / f"{name}.{fmt}"
    if not path.exists() and fmt == "csv":
        pa_csv.write_csv(data, str(path))
    elif not path.exists():
        path.write_text("".join(json.dumps(row) + "\n" for row in data.to_pylist()), encoding="utf-8")
    out = tmp_path / f"bundle-{name}-{split_size}"
    summary = run_analysis(FEATURES, str(path), str(out), split_size=split_size)
    return summary, load_bundle(str(out))


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("split_size", [61, 1000, 4096])
def test_tiny_splits_give_the_unsplit_statistics(tmp_path, split_size, fmt):
    # Quotes, commas, escaped quotes and a 5" stray quote: no newline inside values.
    data = table(600, ["Paris", "a,b", 'the "Big" one', "x" * 150, "Zürich", '5" screen'])
    whole, expected = analyse(tmp_path, data, 0, "data", fmt)
    split, got = analyse(tmp_path, data, split_size, "data", fmt)
    assert split["rows_read"] == whole["rows_read"] == 600
    assert split["files_read"] == 1
    assert split["batches_read"] > whole["batches_read"]  # it was really read in pieces
    for name, stats in expected.features.items():
        for key, value in stats.items():
            if key in ("bin_boundaries", "profile_quantiles"):  # sketches: within their error
                np.testing.assert_allclose(got.features[name][key], value, atol=1.0)
            elif isinstance(value, float):
                assert got.features[name][key] == pytest.approx(value, rel=1e-12), (name, key)
            else:
                assert got.features[name][key] == value, (name, key)


def test_a_split_inside_a_multiline_quoted_value_is_an_error_not_a_wrong_row(tmp_path):
    data = table(300, ["Paris", "two\nlines", "three\nmore\nlines"])
    run_analysis(FEATURES, _write(tmp_path, data), str(tmp_path / "whole"), split_size=0)
    with pytest.raises(InputDataError, match="inside a quoted value that contains a newline.*--split-size 0"):
        run_analysis(FEATURES, str(tmp_path / "data.csv"), str(tmp_path / "split"), split_size=200)


def _write(tmp_path, data):
    pa_csv.write_csv(data, str(tmp_path / "data.csv"))
    return str(tmp_path / "data.csv")
