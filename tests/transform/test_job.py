"""run_transform end to end on the sample data (pipelines/sample): analyze, transform on a
real Beam pipeline, read back with transformed_dataset, and compare every row's every
output with FeatureSpace.from_artifacts(bundle, output_mode="dict") called on the raw rows
as pyarrow.parquet reads them (None for missing)."""

import hashlib
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kdp_beam.errors import BundleError, InputDataError
from kdp_beam.job import run_analysis
from kdp_beam.transform.dataset import transformed_dataset
from kdp_beam.transform.job import run_transform
from pipelines.sample_data import sample_table

FEATURES = "pipelines/sample/features.json"
ROWS = 700


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The sample's rows in two Parquet files, with a row id to find each row again, and
    the bundle analysed from them."""
    root = tmp_path_factory.mktemp("sample")
    table = sample_table(ROWS, seed=3)
    table = table.append_column("row_id", pa.array(np.arange(ROWS)))
    (root / "in").mkdir()
    pq.write_table(table.slice(0, 300), root / "in" / "part-0.parquet")
    pq.write_table(table.slice(300), root / "in" / "part-1.parquet")
    run_analysis(FEATURES, str(root / "in" / "*.parquet"), str(root / "bundle"))
    return root, table


def _model_outputs(bundle, table):
    from kdp_beam.builder import FeatureSpace

    fs = FeatureSpace.from_artifacts(bundle, output_mode="dict")
    raw = {name: table[name].to_pylist() for name in fs.features}
    return {name: np.asarray(value) for name, value in fs(raw).items()}


def _read_all(path, **options):
    parts = {}
    for features, label in transformed_dataset(path, batch_size=128, label="row_id", **options):
        for name, value in {**features, "row_id": label}.items():
            parts.setdefault(name, []).append(value.numpy())
    return {name: np.concatenate(values) for name, values in parts.items()}


@pytest.mark.parametrize("output_format", ["tfrecord", "parquet"])
def test_the_dataset_equals_the_model_on_the_raw_rows(sample, output_format):
    root, table = sample
    output = str(root / f"encoded-{output_format}")
    summary = run_transform(
        str(root / "bundle"), str(root / "in" / "*.parquet"), output, output_format, keep=["row_id"]
    )
    assert summary["rows_written"] == ROWS == summary["rows_read"] and summary["files_read"] == 2
    manifest = json.loads((root / f"encoded-{output_format}" / "manifest.json").read_text())
    assert manifest["row_count"] == ROWS and manifest["file_format"] == output_format
    bundle_bytes = (root / "bundle" / "manifest.json").read_bytes()
    assert manifest["bundle"]["manifest_sha256"] == hashlib.sha256(bundle_bytes).hexdigest()
    read = _read_all(output, bundle=str(root / "bundle"))
    order = np.argsort(read.pop("row_id"))
    expected = _model_outputs(str(root / "bundle"), table)
    assert set(read) == set(expected) == {e["name"] for e in manifest["schema"] if e["role"] != "keep"}
    for name, values in expected.items():
        got = read[name][order]
        assert got.shape == values.shape, name  # (rows, width), as the model gives
        if values.dtype.kind == "f":
            np.testing.assert_allclose(got, values, rtol=0, atol=1e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(got, values, err_msg=name)


def test_analyze_and_transform_then_refusals(sample, tmp_path):
    root, table = sample
    bundle, output = str(tmp_path / "bundle"), str(tmp_path / "encoded")
    summary = run_transform(
        bundle, str(root / "in" / "*.parquet"), output, "parquet", keep=["row_id"], features=FEATURES
    )
    assert summary["analysis"]["rows_read"] == ROWS and summary["rows_written"] == ROWS
    analysed = json.loads((root / "bundle" / "manifest.json").read_text())
    assert json.loads((tmp_path / "bundle" / "manifest.json").read_text())["row_count"] == analysed["row_count"]
    with pytest.raises(BundleError, match="holds a kdp_beam bundle"):  # the bundle as output
        run_transform(bundle, str(root / "in" / "*.parquet"), bundle)
    with pytest.raises(InputDataError, match="not_there"):
        run_transform(bundle, str(root / "in" / "*.parquet"), output, keep=["not_there"])
    assert json.loads((tmp_path / "encoded" / "manifest.json").read_text())["file_format"] == "parquet"  # left as it was
