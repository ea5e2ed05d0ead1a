"""kdp_beam.transform.examples against tfx_bsl's serialisation and TensorFlow's reader:
every column kind the encoder writes (fixed-width float32 with and without nulls, int64,
float64, strings, kept scalars with nulls), batches that are slices of larger ones (an
Arrow offset), all-template, mixed and template-free batches."""

import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf
from tfx_bsl.coders import example_coder

from kdp_beam.transform import examples
from kdp_beam.transform.examples import tfrecord_chunks
from kdp_beam.transform.write import example_columns


def _fixed(values, width, mask=None):
    return pa.FixedSizeListArray.from_arrays(pa.array(values), width, mask=mask)


def batch(rows, seed):
    rng = np.random.default_rng(seed)
    columns = {
        "one_hot": _fixed(rng.random(rows * 7).astype(np.float32), 7),
        "x": _fixed(rng.normal(size=rows).astype(np.float32) * 1e30, 1),  # any float32, huge ones too
        "é/name with space": _fixed(np.full(rows * 2, -0.0, np.float32), 2),
        "index": _fixed(rng.integers(-(2**62), 2**62, rows * 3), 3),  # varints of every length
        "wide": _fixed(rng.random(rows * 2), 2),  # float64 outputs
        "token": _fixed(np.array([f"t{i}" for i in range(rows * 2)], object), 2),
        "kept": pa.array([None if i % 5 == 0 else i for i in range(rows)], pa.int64()),
        "kept_text": pa.array([None if i % 3 == 0 else f"r{i}" for i in range(rows)]),
        "kept_float": pa.array([None if i % 4 == 0 else i / 3 for i in range(rows)]),
    }
    if rows:
        mask = pa.array([i % 6 == 1 for i in range(rows)])
        columns["with_nulls"] = _fixed(rng.random(rows * 2).astype(np.float32), 2, mask=mask)
    return pa.RecordBatch.from_pydict(columns)


def records_of(data, tmp_path):
    path = tmp_path / "part.tfrecord"
    path.write_bytes(data)
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(str(path))]


@pytest.mark.parametrize("chunk_bytes", [1 << 20, 300])  # one chunk; a few rows a chunk
@pytest.mark.parametrize("columns", ["floats", "mixed", "others"])
@pytest.mark.parametrize("rows, start", [(40, 0), (40, 13), (1, 0), (0, 0)])
def test_examples_equal_tfx_bsl_and_read_by_tensorflow(tmp_path, monkeypatch, columns, rows, start, chunk_bytes):
    monkeypatch.setattr(examples, "CHUNK_BYTES", chunk_bytes)
    whole = batch(rows + start + 5, seed=rows + start)
    part = whole.slice(start, rows)  # offsets into the arrays, as the encoder's cuts give
    names = {
        "floats": ["one_hot", "x", "é/name with space"],
        "mixed": part.schema.names,
        "others": [n for n in part.schema.names if n not in ("one_hot", "x", "é/name with space")],
    }[columns]
    part = part.select([n for n in names if n in part.schema.names])
    expected = [tf.train.Example.FromString(r) for r in example_coder.RecordBatchToExamples(example_columns(part))]
    got = records_of(b"".join(tfrecord_chunks(part)), tmp_path)  # TensorFlow checks both CRCs of every record
    assert len(got) == rows == len(expected)
    assert got == expected
    if rows and columns != "others":
        first = got[0].features.feature
        np.testing.assert_array_equal(
            first["one_hot"].float_list.value, whole.column("one_hot")[start].values.to_numpy()
        )
