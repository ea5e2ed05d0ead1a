"""transformed_dataset reads what WriteDataset wrote, from the manifest alone: values and
shapes against the batches written, and its refusals."""

import json
import pathlib

import numpy as np
import pyarrow as pa
import pytest

from kdp_beam.errors import BundleError
from kdp_beam.transform.dataset import transformed_dataset
from tests.transform.test_write import BATCHES, write

EXPECTED = pa.Table.from_batches(BATCHES)


def _rows(dataset):
    """{column: numpy array} of every batch, concatenated."""
    parts = {}
    for element in dataset:
        features, label = element if isinstance(element, tuple) else (element, None)
        for name, value in features.items():
            parts.setdefault(name, []).append(value.numpy())
        if label is not None:
            parts.setdefault("__label__", []).append(label.numpy())
    return {name: np.concatenate(values) for name, values in parts.items()}


@pytest.mark.parametrize("file_format", ["tfrecord", "parquet"])
def test_values_and_shapes_as_written(tmp_path, file_format):
    write(tmp_path, file_format, max_rows=8)
    dataset = transformed_dataset(str(tmp_path), batch_size=4, label="label")
    first_features, first_label = next(iter(dataset))
    assert first_features["x"].shape == (4, 3) and first_features["c"].shape == (4, 1)
    assert first_label.shape == (4,)
    rows = _rows(dataset)
    assert set(rows) == {"x", "c", "x_missing", "s", "__label__"}  # the outputs; the label apart
    order = np.argsort(rows["__label__"])  # files are read in the manifest's order, not the writer's
    assert rows["__label__"][order].tolist() == EXPECTED["label"].to_pylist()
    np.testing.assert_array_equal(rows["x"][order], np.array(EXPECTED["x"].to_pylist(), np.float32))
    assert rows["c"][order].tolist() == EXPECTED["c"].to_pylist()
    assert [v.decode() for v in rows["s"][order].ravel()] == [v[0] for v in EXPECTED["s"].to_pylist()]


@pytest.mark.parametrize("file_format", ["tfrecord", "parquet"])
def test_kept_missing_floats_read_as_nan(tmp_path, file_format):
    write(tmp_path, file_format)
    rows = _rows(transformed_dataset(str(tmp_path), 5, label="weight", features=["key", "label"]))
    order = np.argsort(rows["label"])
    expected = np.array([np.nan if w is None else w for w in EXPECTED["weight"].to_pylist()])
    dtype = np.float32 if file_format == "tfrecord" else np.float64
    np.testing.assert_array_equal(rows["__label__"][order], expected.astype(dtype))
    assert rows["__label__"].dtype == dtype


def test_epochs_and_shuffled_files(tmp_path):
    write(tmp_path, "tfrecord", max_rows=8)
    rows = _rows(transformed_dataset(str(tmp_path), 6, features=["label"], num_epochs=3, shuffle_files=True, seed=1))
    assert sorted(rows["label"].tolist()) == sorted(EXPECTED["label"].to_pylist() * 3)


def test_a_missing_or_truncated_file_is_refused(tmp_path):
    manifest = write(tmp_path, "tfrecord", max_rows=8)
    first = tmp_path / manifest["files"][0]["path"]
    data = first.read_bytes()
    first.write_bytes(data[:-1])
    with pytest.raises(BundleError, match=f"{manifest['files'][0]['path']} has {len(data) - 1:,} bytes, the manifest {len(data):,}"):
        transformed_dataset(str(tmp_path), 4)
    first.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size, one bit flipped
    transformed_dataset(str(tmp_path), 4)  # sizes only, by default
    with pytest.raises(BundleError, match="CRC-32C differs"):
        transformed_dataset(str(tmp_path), 4, verify_checksums=True)
    first.unlink()
    with pytest.raises(BundleError, match="listed in the manifest but missing"):
        transformed_dataset(str(tmp_path), 4)


def test_another_bundle_is_refused(tmp_path):
    write(tmp_path / "encoded", "parquet")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "manifest.json").write_text(json.dumps({"format": "kdp_beam artifact bundle", "format_version": 2}))
    with pytest.raises(BundleError, match="was encoded with the bundle b/"):
        transformed_dataset(str(tmp_path / "encoded"), 4, bundle=str(bundle))
    with pytest.raises(BundleError, match="is a kdp_beam artifact bundle, not a transformed dataset"):
        transformed_dataset(str(bundle), 4)


def test_unknown_columns_and_integer_gaps_are_refused(tmp_path):
    manifest = write(tmp_path, "tfrecord")
    with pytest.raises(BundleError, match="has no column 'y'"):
        transformed_dataset(str(tmp_path), 4, label="y")
    schema = manifest["schema"]
    schema[4]["null_count"] = 2  # as if the kept label had missing values
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="kept integer column 'label' has 2 missing values.*--keep label:float"):
        transformed_dataset(str(tmp_path), 4, label="label")


def test_an_empty_dataset_yields_nothing(tmp_path):
    from tests.transform.test_write import encoded_batch

    write(tmp_path, "tfrecord", batches=[encoded_batch(0, 0)])
    assert list(transformed_dataset(str(tmp_path), 4)) == []
    assert pathlib.Path(tmp_path / "manifest.json").exists()


@pytest.mark.parametrize("file_format", ["tfrecord", "parquet"])
@pytest.mark.parametrize("epochs, drop_remainder", [(1, False), (3, False), (2, True)])
def test_model_fit_knows_the_steps_of_an_epoch(tmp_path, file_format, epochs, drop_remainder):
    write(tmp_path, file_format, max_rows=8)
    dataset = transformed_dataset(str(tmp_path), 4, label="label", num_epochs=epochs, drop_remainder=drop_remainder)
    total = EXPECTED.num_rows * epochs
    batches = total // 4 if drop_remainder else -(-total // 4)
    assert int(dataset.cardinality()) == batches == sum(1 for _ in dataset)
