"""Bundles and saved models of kdp_beam 0.2 (tests/data/kdp_beam-0.2, written by that
release) still load, build the same model and merge, plug-in features included."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from packaging.version import Version

import kdp_beam
import kdp_beam.plugins.robust_scaler  # noqa: F401 - registers "robust_scaler"
from kdp_beam.bundle.loader import load_bundle
from kdp_beam.tools.merge import merge_bundles

OLD = Path(__file__).parent / "data" / "kdp_beam-0.2"
BATCH = {
    "latency": np.array([10.0, 20.0, 40.0]),
    "plain": np.array([0.5, np.nan, -1.0]),
    "city": np.array(["a", "zz", ""]),
}


def test_an_old_plugin_bundle_loads_as_its_type_and_builds_the_same_model():
    bundle = load_bundle(str(OLD / "plugin-bundle-a"))
    assert bundle.spec.features["latency"].to_json() == {"type": "robust_scaler", "epsilon": 0.01}
    assert bundle.features["latency"]["type"] == "robust_scaler"
    fs = kdp_beam.FeatureSpace.from_artifacts(bundle, output_mode="dict")
    expected = json.loads((OLD / "model_outputs.json").read_text())
    for name, values in expected.items():
        np.testing.assert_allclose(np.asarray(fs(BATCH)[name]), values, rtol=1e-6)
    stats = bundle.features["latency"]
    np.testing.assert_allclose(
        np.asarray(fs(BATCH)["latency"])[:, 0], (BATCH["latency"] - stats["median"]) / stats["iqr"], rtol=1e-5
    )


@pytest.mark.skipif(
    Version(keras.__version__) < Version("3.15.1"),
    reason="saved by keras 3.15.1: an older keras refuses its newer layer options (oov_method, salt)",
)
def test_an_old_saved_model_loads_and_encodes_as_it_did():
    model = keras.models.load_model(str(OLD / "model.keras"))
    expected = json.loads((OLD / "model_outputs.json").read_text())
    for name, values in expected.items():
        np.testing.assert_allclose(np.asarray(model(BATCH)[name]), values, rtol=1e-6)


def test_old_plugin_bundles_merge(tmp_path):
    merge_bundles([str(OLD / "plugin-bundle-a"), str(OLD / "plugin-bundle-b")], str(tmp_path / "m"))
    merged = load_bundle(str(tmp_path / "m"))
    a, b = (load_bundle(str(OLD / f"plugin-bundle-{x}")) for x in "ab")
    assert merged.row_count == a.row_count + b.row_count == 500
    latency = merged.features["latency"]
    assert latency["type"] == "robust_scaler" and latency["count"] == 500
    # The merged median lies between the parts' (the second part is shifted by +5).
    assert a.features["latency"]["median"] < latency["median"] < b.features["latency"]["median"]
    assert merged.features["city"]["vocabulary"] == ["a", "d", "c", "b"]
    assert merged.features["plain"]["mean"] == pytest.approx(
        (a.features["plain"]["mean"] * 300 + b.features["plain"]["mean"] * 200) / 500, rel=1e-12
    )


def test_a_bundle_written_before_profile_was_a_key_loads_as_analysed_without_it(tmp_path):
    """The spec's profile is on by default now; a manifest without the key was analysed
    without the sketch, and must not be refused for lacking it."""
    import json
    import shutil

    from kdp_beam.bundle.loader import load_bundle
    from kdp_beam.job import run_analysis

    csv = tmp_path / "d.csv"
    csv.write_text("x\n1.5\n2.5\n")
    run_analysis({"features": {"x": "float_normalized"}, "profile": False}, str(csv), str(tmp_path / "b"))
    old = tmp_path / "old"
    shutil.copytree(tmp_path / "b", old)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["spec"]["profile"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    bundle = load_bundle(str(old))
    assert bundle.spec.profile is False and bundle.features["x"]["mean"] == 2.0
