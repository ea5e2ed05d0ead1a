"""kdp-beam transform: the summary and JSON of a run on the sample data, and one error
line with status 2 for what a person got wrong."""

import json

import numpy as np
import pyarrow.parquet as pq

from kdp_beam.cli import main
from pipelines.sample_data import write_sample

FEATURES = "pipelines/sample/features.json"


def test_analyze_and_transform_from_csv(tmp_path, capsys):
    write_sample(str(tmp_path / "sample"), 400, 2)
    bundle, output = str(tmp_path / "bundle"), str(tmp_path / "encoded")
    args = ["transform", "--bundle", bundle, "--input", str(tmp_path / "sample" / "csv" / "*.csv"),
            "--output", output, "--format", "parquet", "--keep", "user_id", "--analyze-and-transform",
            "--features", FEATURES, "--json"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["rows_written"] == 400 and summary["files_read"] == 2 and summary["format"] == "parquet"
    assert "wrote 400 encoded rows in" in err and f"kdp_beam.transformed_dataset({output!r}" in err
    manifest = json.loads((tmp_path / "encoded" / "manifest.json").read_text())
    table = pq.read_table([str(tmp_path / "encoded" / f["path"]) for f in manifest["files"]])
    assert summary["bytes_written"] == sum(f["bytes"] for f in manifest["files"])
    # a kept feature: its raw column beside its encoding, named <name>_raw
    raw = pq.read_table(str(tmp_path / "sample" / "parquet"))["user_id"].to_pylist()
    assert sorted(table["user_id_raw"].to_pylist()) == sorted(raw)
    assert table.schema.field("user_id").type.list_size == 64  # the hashed feature's one-hot
    assert np.asarray(table["age"].to_pylist()).shape == (table.num_rows, 1)

    # the bundle as the output: refused before the job, one line, status 2
    assert main(["transform", "--bundle", bundle, "--input", str(tmp_path / "sample" / "csv" / "*.csv"),
                 "--output", bundle]) == 2
    err = capsys.readouterr().err
    assert err.count("kdp-beam: error:") == 1 and "holds a kdp_beam bundle" in err
    assert main(["transform", "--bundle", bundle, "--input", "x.csv", "--output", output, "--analyze-and-transform"]) == 2
    assert "--analyze-and-transform and --features go together" in capsys.readouterr().err


def test_an_empty_input_warns_of_an_empty_dataset_not_of_the_bundle(tmp_path, capsys):
    write_sample(str(tmp_path / "sample"), 50, 1)
    bundle, csvs = str(tmp_path / "bundle"), str(tmp_path / "sample" / "csv" / "*.csv")
    assert main(["analyze", "--features", FEATURES, "--input", csvs, "--output", bundle]) == 0
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    capsys.readouterr()
    assert main(["transform", "--bundle", bundle, "--input", str(empty), "--output", str(tmp_path / "encoded")]) == 0
    err = capsys.readouterr().err
    assert "the transformed dataset holds 0 rows: the input has no rows; a model trained on it learns nothing" in err
    assert "bundle holds 0 rows" not in err  # the bundle holds 50
