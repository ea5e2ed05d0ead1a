"""Custom statistics: a registered plug-in runs in the same pass and builds its layer."""

import json

import keras
import numpy as np
import pyarrow as pa
import pytest

import kdp_beam
import kdp_beam.plugins.robust_scaler  # noqa: F401 - registers "robust_scaler"
from kdp_beam.bundle.loader import load_bundle
from kdp_beam.cli import main
from kdp_beam.errors import SpecError
from kdp_beam.job import run_analysis
from kdp_beam.plugins import Statistic, register_statistic
from kdp_beam.spec import FeatureSpec
from tests.conftest import write_shards


@register_statistic("max_abs")
class MaxAbs(Statistic):
    """The docstring example of kdp_beam.plugins, registered by user code."""

    column_kind = "float"

    def create_accumulator(self):
        return 0.0

    def add_batch(self, acc, column):
        values = column.drop_null().to_numpy()
        return max(acc, float(np.abs(values).max())) if len(values) else acc

    def merge_accumulators(self, accs):
        return max(accs)

    def finalize(self, acc):
        return {"max_abs": acc}

    def to_state(self, acc):
        return acc

    def from_state(self, state):
        return state

    def build_layer(self, statistics, name):
        return keras.layers.Rescaling(1 / (statistics["max_abs"] or 1), name=name)


SPEC = {
    "features": {
        "latency": {"type": "custom", "statistic": "robust_scaler"},
        "delta": {"type": "custom", "statistic": "max_abs"},
        "plain": "float_normalized",
    }
}


def data(rows=4000, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    latency = rng.lognormal(3, 0.5, rows) + shift
    latency[::97] = 1e6  # outliers a normalizer would chase
    return pa.table({"latency": latency, "delta": rng.normal(0, 3, rows), "plain": rng.normal(size=rows)})


def test_plugins_run_in_the_pass_and_build_their_layers(tmp_path):
    table = data()
    pattern = write_shards(table, tmp_path / "csv", 3)
    features = tmp_path / "features.json"
    features.write_text(json.dumps(SPEC))
    run_analysis(str(features), pattern, str(tmp_path / "bundle"))
    stats = load_bundle(str(tmp_path / "bundle")).features
    latency = np.sort(table["latency"].to_numpy())
    rank = lambda v: np.searchsorted(latency, v) / latency.size  # noqa: E731
    assert abs(rank(stats["latency"]["median"]) - 0.5) <= 2e-3
    assert abs(rank(stats["latency"]["q1"]) - 0.25) <= 2e-3 and abs(rank(stats["latency"]["q3"]) - 0.75) <= 2e-3
    assert stats["delta"]["max_abs"] == np.abs(table["delta"].to_numpy()).max()

    fs = kdp_beam.FeatureSpace.from_artifacts(str(tmp_path / "bundle"), output_mode="dict")
    batch = {k: table[k].to_numpy()[:50] for k in ("latency", "delta", "plain")}
    out = {k: np.asarray(v)[:, 0] for k, v in fs(batch).items()}
    median, iqr = stats["latency"]["median"], stats["latency"]["iqr"]
    np.testing.assert_allclose(out["latency"], (batch["latency"] - median) / iqr, rtol=1e-5)
    np.testing.assert_allclose(out["delta"], batch["delta"] / stats["delta"]["max_abs"], rtol=1e-6)
    fs.save(str(tmp_path / "fs.keras"))
    loaded = keras.models.load_model(str(tmp_path / "fs.keras"), safe_mode=True)
    np.testing.assert_array_equal(np.asarray(loaded(batch)["latency"]), np.asarray(fs(batch)["latency"]))


def test_plugin_state_merges_and_unknown_statistics_say_what_to_import(tmp_path):
    for day in (1, 2):
        write_shards(data(1000, seed=day, shift=day), tmp_path / f"d{day}", 1)
        run_analysis(FeatureSpec.from_json(SPEC), str(tmp_path / f"d{day}" / "*.csv"), str(tmp_path / f"b{day}"))
    write_shards(pa.concat_tables([data(1000, 1, 1.0), data(1000, 2, 2.0)]), tmp_path / "all", 2)
    run_analysis(FeatureSpec.from_json(SPEC), str(tmp_path / "all" / "*.csv"), str(tmp_path / "ball"))
    assert main(["merge", str(tmp_path / "b1"), str(tmp_path / "b2"), "--output", str(tmp_path / "m")]) == 0
    merged, whole = load_bundle(str(tmp_path / "m")), load_bundle(str(tmp_path / "ball"))
    assert merged.features["delta"]["max_abs"] == whole.features["delta"]["max_abs"]
    assert merged.features["latency"]["median"] == pytest.approx(whole.features["latency"]["median"], rel=0.02)
    with pytest.raises(SpecError, match="'nope' is not registered; import the module"):
        FeatureSpec({"x": {"type": "custom", "statistic": "nope"}}).features["x"].column_kind
