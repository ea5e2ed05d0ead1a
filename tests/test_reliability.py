"""Bundles: atomic writes under a kill, safe names, verified loads."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa

import kdp_beam
from kdp_beam.analyzers import analyze_batches
from kdp_beam.bundle.loader import load_bundle
from kdp_beam.bundle.writer import write_bundle
from kdp_beam.errors import BundleError
from kdp_beam.spec import FeatureSpec
from tests.test_bundle_output import files_in

WRITER = """
import json, sys
import apache_beam.io.filesystems  # imported first, so "writing" means writing
from kdp_beam.bundle.writer import write_bundle
from kdp_beam.bundle.staging import staged_output
statistics = json.load(open(sys.argv[1]))
print("writing", flush=True)
with staged_output(sys.argv[2]) as staging_dir:  # as run_analysis and merge_bundles write
    write_bundle(statistics, staging_dir)
print("done", flush=True)
"""


def statistics(rows, tokens, seed):
    spec = FeatureSpec({"x": "float_normalized", "user": "string_categorical"})
    rng = np.random.default_rng(seed)
    table = pa.table({"x": rng.normal(size=rows), "user": [f"user-{i}" for i in rng.integers(0, tokens, rows)]})
    return {"spec": spec.to_json(), **analyze_batches(spec, table.to_batches(max_chunksize=1 << 16))}


def test_a_writer_killed_at_any_point_leaves_the_previous_bundle_or_the_new_one(tmp_path):
    previous = statistics(1000, 50, seed=1)
    new = statistics(1_500_000, 1_000_000, seed=2)  # a ~20 MB vocabulary: a slow write
    new_path = tmp_path / "new.json"
    new_path.write_text(json.dumps(new))
    reference = str(tmp_path / "reference")
    write_bundle(previous, reference)
    outcomes, interrupted = [], 0
    for delay in (0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8, None):
        runs = tmp_path / "runs"  # the bundle and the siblings its writer stages beside it
        shutil.rmtree(runs, ignore_errors=True)
        target = str(runs / "bundle")
        shutil.copytree(reference, target)
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(new_path), target], stdout=subprocess.PIPE, text=True
        )
        assert writer.stdout.readline().strip() == "writing"
        if delay is None:
            writer.wait()
        else:
            time.sleep(delay)
            writer.send_signal(signal.SIGKILL)
            writer.wait()
        bundle = load_bundle(target)  # never none, never a mix: one of the two, whole
        # ... and nothing else: the directory holds exactly what its manifest lists.
        assert files_in(target) == {"manifest.json", *bundle.manifest["files"]}
        if bundle.row_count == previous["row_count"]:
            outcomes.append("previous")
            assert bundle.features["user"]["vocabulary"] == previous["features"]["user"]["vocabulary"]
        else:
            outcomes.append("new")
            assert bundle.row_count == new["row_count"]
            assert bundle.features["user"]["vocabulary"] == new["features"]["user"]["vocabulary"]
        # A killed writer may leave its hidden staging directory, never read.
        siblings = set(os.listdir(runs)) - {"bundle"}
        assert all(s.startswith(".bundle.kdp-beam-tmp-") for s in siblings), siblings
        interrupted += bool(siblings)
    assert outcomes[-1] == "new"  # the writer that was not killed finished
    assert "previous" in outcomes and interrupted, outcomes  # some kills landed mid-write


def test_feature_names_never_become_paths_outside_the_bundle(tmp_path):
    names = ["../../escape", "a/b", "/abs", "with space", "ünï😀", "x" * 1000, "..", ".", "C:\\win"]
    spec = FeatureSpec({name: "string_categorical" for name in names})
    table = pa.table({name: [f"v{i}", "w"] for i, name in enumerate(names)})
    stats = {"spec": spec.to_json(), **analyze_batches(spec, table.to_batches())}
    bundle_dir = tmp_path / "inner" / "bundle"
    manifest = write_bundle(stats, str(bundle_dir))
    written = {
        os.path.relpath(os.path.join(root, f), bundle_dir)
        for root, _, files in os.walk(tmp_path)
        for f in files
    }
    assert all(not path.startswith("..") for path in written)  # nothing outside the bundle
    vocabularies = [name for name in manifest["files"] if name.startswith("vocabularies/")]
    assert len(set(vocabularies)) == len(names)
    bundle = load_bundle(str(bundle_dir))
    for i, name in enumerate(names):
        assert bundle.features[name]["vocabulary"] == ["w", f"v{i}"]


def test_a_manifest_naming_a_path_outside_the_bundle_is_refused(tmp_path):
    stats = statistics(10, 3, seed=0)
    write_bundle(stats, str(tmp_path / "b"))
    manifest_path = tmp_path / "b" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["../outside.json"] = {"sha256": "0" * 64, "bytes": 1}
    manifest_path.write_text(json.dumps(manifest))
    try:
        load_bundle(str(tmp_path / "b"))
    except BundleError as e:
        assert "unsafe file path '../outside.json'" in str(e)
    else:
        raise AssertionError("loaded a bundle naming ../outside.json")


def test_saved_models_load_in_keras_safe_mode(tmp_path):
    import keras

    fs = kdp_beam.FeatureSpace(
        {
            "d": kdp_beam.FeatureSpace.date(missing_indicator=True),
            "t": kdp_beam.FeatureSpace.text(max_tokens=5),
            "x": kdp_beam.FeatureSpace.float_normalized(missing_indicator=True),
        }
    )
    fs.adapt({"d": ["2024-01-01", "bad"], "t": ["a b", "b"], "x": [1.0, np.nan]})
    fs.save(str(tmp_path / "fs.keras"))
    # safe_mode=True (the default) refuses lambdas and arbitrary code: ours is config only.
    loaded = keras.models.load_model(str(tmp_path / "fs.keras"), safe_mode=True)
    data = {"d": ["2024-01-01", None], "t": ["a", None], "x": [None, 2.0]}
    np.testing.assert_array_equal(np.asarray(loaded(data)), np.asarray(fs(data)))


def test_schema_problems_fail_before_the_job_starts(tmp_path, monkeypatch):
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq
    import pytest

    from kdp_beam.errors import InputDataError
    from kdp_beam.job import run_analysis

    (tmp_path / "csv").mkdir()
    pa_csv.write_csv(pa.table({"x": [1.0], "name": ["a"]}), str(tmp_path / "csv" / "a.csv"))
    pa_csv.write_csv(pa.table({"x": [1.0]}), str(tmp_path / "csv" / "b.csv"))
    spec = FeatureSpec({"x": "float", "name": "string_categorical"})
    # The messages are the workers' own (one check for every file): no pipeline is built.
    monkeypatch.setattr("kdp_beam.job.add_analysis", lambda *a, **k: pytest.fail("the job started"))
    with pytest.raises(InputDataError, match=r"b\.csv: declared column\(s\) \['name'\] are not in the CSV header \['x'\]"):
        run_analysis(spec, str(tmp_path / "csv" / "*.csv"), str(tmp_path / "o"))
    pq.write_table(pa.table({"x": [1.5], "name": ["a"]}), str(tmp_path / "p.parquet"))
    with pytest.raises(InputDataError, match=r"p\.parquet: column 'x' is double, which cannot be read as an integer feature"):
        run_analysis(FeatureSpec({"x": "integer_categorical"}), str(tmp_path / "p.parquet"), str(tmp_path / "o"))


def test_damaged_parquet_files_fail_naming_the_file(tmp_path):
    import pyarrow.parquet as pq
    import pytest

    from kdp_beam.errors import InputDataError
    from kdp_beam.job import run_analysis

    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"x": np.arange(100, dtype=float)}), str(good), compression="none")
    data = good.read_bytes()
    damaged = {
        "truncated": data[: len(data) // 2],  # footer lost: caught before the job starts
        "empty": b"",
        "not_parquet": b"x,y\n1,2\n",
        "page_header": data[:4] + bytes(16) + data[20:],  # footer fine: caught by the worker
    }
    spec = FeatureSpec({"x": "float_normalized"})
    for name, content in damaged.items():
        (tmp_path / f"{name}.parquet").write_bytes(content)
        for policy in ("fail", "skip"):
            with pytest.raises(InputDataError, match=rf"{name}\.parquet.*: not valid Parquet .*Re-write the file"):
                run_analysis(spec, str(tmp_path / f"{name}.parquet"), str(tmp_path / "o"), on_bad_record=policy)


def test_damaged_tfrecord_files_fail_naming_the_file_and_record(tmp_path):
    import gzip

    import pytest
    import tensorflow as tf

    from kdp_beam.errors import InputDataError
    from kdp_beam.job import run_analysis

    good = tmp_path / "good.tfrecord"
    with tf.io.TFRecordWriter(str(good)) as writer:
        for i in range(5):
            x = tf.train.Feature(float_list=tf.train.FloatList(value=[i]))
            writer.write(tf.train.Example(features=tf.train.Features(feature={"x": x})).SerializeToString())
    data = good.read_bytes()
    damaged = {
        "truncated.tfrecord": (data[:-7], 5),
        "not_tfrecord.tfrecord": (b"x,y\n1,2\n3,4\n5,6\n", 1),
        "flipped.tfrecord": (data[:20] + bytes([data[20] ^ 1]) + data[21:], 1),  # a CRC mismatch
        "truncated.tfrecord.gz": (gzip.compress(data)[:-30], 3),
    }
    spec = FeatureSpec({"x": "float_normalized"})
    for name, (content, record) in damaged.items():
        (tmp_path / name).write_bytes(content)
        for policy in ("fail", "skip"):
            error = rf"{name}: record {record} is not a valid TFRecord .*Re-write it"
            with pytest.raises(InputDataError, match=error):
                run_analysis(spec, str(tmp_path / name), str(tmp_path / "o"), on_bad_record=policy)
