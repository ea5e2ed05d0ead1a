"""Plug-in feature types: registered by user code, they run in the same pass and build
their layers, as built-in types do."""

import json
import re

import keras
import numpy as np
import pyarrow as pa
import pytest

import kdp_beam
import kdp_beam.plugins.robust_scaler  # noqa: F401 - registers "robust_scaler"
from kdp_beam.bundle.loader import load_bundle
from kdp_beam.cli import main
from kdp_beam.errors import BundleError, SpecError
from kdp_beam.job import run_analysis
from kdp_beam.plugins import FeatureType, register_type
from kdp_beam.spec import FeatureSpec
from tests.conftest import write_shards


class MaxAbsAnalyzer:
    """The plug-in's own statistic: the largest magnitude (the analyzer verbs)."""

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


@register_type
class MaxAbs(FeatureType):
    """A type written by user code: x / max |x|."""

    name = "max_abs"

    def column_kind(self, options):
        return "float"

    def analyzers(self, options, profile=False):
        return {**super().analyzers(options, profile), "max_abs": MaxAbsAnalyzer()}

    def keras_feature(self, feature_space, name, options):
        layer = keras.layers.Rescaling(1.0, name=f"{name}_preprocessor")
        return feature_space.feature("float32", layer, "float", declaration={"type": self.name, **options})

    def set_statistics(self, preprocessor, stats, options):
        preprocessor.scale = 1 / (stats["max_abs"] or 1)


SPEC = {
    "features": {
        "latency": {"type": "custom", "statistic": "robust_scaler"},  # kdp_beam < 0.3's spelling
        "delta": "max_abs",
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
    for declaration in ({"type": "custom", "statistic": "nope"}, "nope"):
        with pytest.raises(SpecError, match="unknown feature type 'nope'.*importing its module: kdp-beam --plugin"):
            FeatureSpec({"x": declaration})


def test_a_plugin_type_adapts_like_a_built_in_one(tmp_path):
    """Declared in code and adapted (in memory and from files), a plug-in type gives the
    model from_artifacts gives: it is a type like any other."""
    table = data(3000, seed=5)
    pattern = write_shards(table, tmp_path / "csv", 2)
    def declared():
        return {"latency": kdp_beam.FeatureSpace.robust_scaler(epsilon=0.001), "delta": kdp_beam.FeatureSpace.max_abs()}

    in_memory = kdp_beam.FeatureSpace(declared(), output_mode="dict")
    in_memory.adapt({k: table[k].to_numpy() for k in ("latency", "delta")})
    from_files = kdp_beam.FeatureSpace(declared(), output_mode="dict")
    from_files.adapt(pattern)
    batch = {k: table[k].to_numpy()[:20] for k in ("latency", "delta")}
    delta = np.abs(table["delta"].to_numpy()).max()
    np.testing.assert_allclose(np.asarray(in_memory(batch)["delta"])[:, 0], batch["delta"] / delta, rtol=1e-6)
    for name in ("latency", "delta"):
        np.testing.assert_allclose(np.asarray(from_files(batch)[name]), np.asarray(in_memory(batch)[name]), rtol=1e-6)
    with pytest.raises(SpecError, match="robust_scaler: epsilon must be a rank error"):
        kdp_beam.FeatureSpace.robust_scaler(epsilon=2)


def test_a_plugin_type_has_its_summary_line_and_report_section(tmp_path):
    from kdp_beam.tools.report import render_report
    from kdp_beam.summary import summary_table

    pattern = write_shards(data(500), tmp_path / "csv", 1)
    run_analysis(FeatureSpec.from_json(SPEC), pattern, str(tmp_path / "b"))
    bundle = load_bundle(str(tmp_path / "b"))
    median, iqr = bundle.features["latency"]["median"], bundle.features["latency"]["iqr"]
    assert f"median {median:.6g}, IQR {iqr:.6g}" in summary_table(bundle.spec, bundle.features, bundle.row_count)
    page = render_report(bundle)
    assert "<th>max_abs</th>" in page and "<th>iqr</th>" in page


def _type(name, **methods):
    """A FeatureType subclass named `name` (a float column unless `methods` say otherwise)."""
    return type(f"Plugin_{name}".replace("-", "_"), (FeatureType,), {"name": name, "column_kind": lambda self, o: "float", **methods})


@pytest.mark.parametrize(
    "name, match",
    [
        ("float", r"'float' is taken by kdp_beam\.feature_types\.numeric\.Float; rename"),  # a built-in
        ("robust_scaler", r"'robust_scaler' is taken by kdp_beam\.plugins\.robust_scaler\.RobustScaler"),
        ("custom", r"'custom' is reserved \(kdp_beam 0\.2's plug-in declaration\)"),
        ("my-type", r"must be an identifier, not a Python keyword nor starting with '_'.*got 'my-type'"),
        ("class", r"must be an identifier, not a Python keyword.*got 'class'"),
        ("_hidden", r"nor starting with '_'.*got '_hidden'"),
        ("adapt", r"FeatureSpace\.adapt is FeatureSpace's own.*rename the type"),
        ("feature", r"FeatureSpace\.feature is FeatureSpace's own"),
        ("from_artifacts", r"FeatureSpace\.from_artifacts is FeatureSpace's own"),
        ("integer", r"kdp_beam\.spec\.integer is the module's own"),
    ],
)
def test_a_plugin_cannot_take_a_name_in_use(name, match):
    """Registering "float" used to replace the built-in silently (every bundle declaring a
    float then loaded as the plug-in), and "feature" or "adapt" replaced FeatureSpace's own
    method. The name is refused, and nothing is registered or replaced."""
    from kdp_beam.feature_types import feature_type, registered_types

    before = {kind.name: kind for kind in registered_types()}
    methods = {name: getattr(kdp_beam.FeatureSpace, name, None) for name in ("feature", "adapt", "from_artifacts", "float")}
    with pytest.raises(SpecError, match=match):
        register_type(_type(name))
    assert {kind.name: kind for kind in registered_types()} == before
    assert {name: getattr(kdp_beam.FeatureSpace, name, None) for name in methods} == methods
    assert feature_type("float") is before["float"]
    fs = kdp_beam.FeatureSpace({"x": kdp_beam.FeatureSpace.float()})  # FeatureSpace still works
    assert fs.features["x"].declaration == {
        "type": "float", "fill_value": None, "missing_indicator": False,
        "multivalent": False, "separator": "|", "sequence_length": None, "pooling": None,
    }


def test_a_plugin_says_its_column_kind_and_is_a_feature_type():
    with pytest.raises(SpecError, match=r"Plugin_no_kind: feature type 'no_kind' must define column_kind"):
        register_type(type("Plugin_no_kind", (FeatureType,), {"name": "no_kind"}))
    with pytest.raises(SpecError, match=r"NotAType.*: a feature type is a subclass of kdp_beam\.feature_types\.FeatureType"):
        register_type(type("NotAType", (), {"name": "not_a_type"}))


def test_registering_the_same_class_again_replaces_it():
    """Re-importing (or reloading) a plug-in's module registers its class again."""
    from kdp_beam.feature_types import feature_type

    assert register_type(MaxAbs) is MaxAbs
    assert type(feature_type("max_abs")) is MaxAbs and kdp_beam.FeatureSpace.max_abs().declaration == {"type": "max_abs"}


def test_a_plugin_registered_before_feature_space_is_refused_when_it_is_imported():
    """The check does not depend on the import order: a type registered before
    FeatureSpace exists is refused by FeatureSpace's import, and left unregistered."""
    import subprocess
    import sys

    script = (
        "from kdp_beam.feature_types import FeatureType, register_type, registered_types\n"
        "@register_type\n"
        "class Adapt(FeatureType):\n"
        "    name = 'adapt'\n"
        "    def column_kind(self, options): return 'float'\n"
        "try:\n"
        "    from kdp_beam import FeatureSpace\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)\n"
        "print('adapt' in [kind.name for kind in registered_types()])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    refused, registered = done.stdout.strip().splitlines()[-2:]
    assert refused.startswith("SpecError feature type 'adapt' (__main__): FeatureSpace.adapt is FeatureSpace's own")
    assert registered == "False"


def test_a_plugin_constructor_takes_its_options_by_position_as_the_spec_does():
    """FeatureSpace.robust_scaler(0.01) used to name the feature "0.01" and keep the
    default epsilon, where kdp_beam.spec.robust_scaler(0.01) sets epsilon."""
    from kdp_beam import spec

    made = kdp_beam.FeatureSpace.robust_scaler(0.01)
    assert made.declaration == spec.robust_scaler(0.01).to_json() == {"type": "robust_scaler", "epsilon": 0.01}
    assert made.preprocessor.name.startswith("robust_scaler")  # auto-named, as without arguments
    named = kdp_beam.FeatureSpace.robust_scaler(0.01, "latency")
    assert named.preprocessor.name == "latency_preprocessor"
    with pytest.raises(TypeError, match=r"robust_scaler\(\) takes at most 2 positional arguments \('epsilon', 'name'\)"):
        kdp_beam.FeatureSpace.robust_scaler(0.01, "latency", 3)


@register_type
class AnalysisOnly(FeatureType):
    """A type for analysis alone: no Keras layer."""

    name = "analysis_only"

    def column_kind(self, options):
        return "float"


def test_a_type_without_a_keras_layer_says_so_when_a_model_needs_one(tmp_path):
    run_analysis(FeatureSpec({"plain": "analysis_only"}), write_shards(data(50), tmp_path / "csv", 1), str(tmp_path / "b"))
    assert load_bundle(str(tmp_path / "b")).features["plain"]["count"] == 50
    message = r"feature type 'analysis_only' \(tests\.test_plugins\) defines no keras_feature\(\): it can be analysed, but no model"
    with pytest.raises(NotImplementedError, match=message):
        kdp_beam.FeatureSpace.from_artifacts(str(tmp_path / "b"))
    with pytest.raises(NotImplementedError, match=message):
        kdp_beam.FeatureSpace.analysis_only()


class LogMeanAnalyzer:
    """Names its statistic "mean", as the moments every number type has do."""

    def create_accumulator(self):
        return [0, 0.0]

    def add_batch(self, acc, column):
        values = np.log1p(column.drop_null().to_numpy())
        return [acc[0] + len(values), acc[1] + float(values.sum())]

    def merge_accumulators(self, accs):
        accs = list(accs)
        return [sum(a[0] for a in accs), sum(a[1] for a in accs)]

    def finalize(self, acc):
        return {"mean": acc[1] / acc[0] if acc[0] else None}


@register_type
class LogMean(FeatureType):
    name = "log_mean"

    def column_kind(self, options):
        return "float"

    def analyzers(self, options, profile=False):
        return {**super().analyzers(options, profile), "log_mean": LogMeanAnalyzer()}


def test_two_analyzers_giving_one_statistic_are_refused_not_overwritten(tmp_path):
    """The plug-in's "mean" (of log1p) silently replaced the moments' mean, in the bundle
    and in the summary."""
    from kdp_beam.analyzers import analyze_batches

    table = pa.table({"x": [1.0, 3.0, 7.0]})
    message = r"feature 'x': its log_mean type's analyzer 'log_mean' gives \['mean'\], which its other analyzers give too"
    with pytest.raises(SpecError, match=message):
        analyze_batches(FeatureSpec({"x": "log_mean"}), table.to_batches())
    with pytest.raises(SpecError, match=message):
        run_analysis(FeatureSpec({"x": "log_mean"}), write_shards(table, tmp_path / "csv", 1), str(tmp_path / "b"))


def test_robust_scaler_scales_a_missing_value_as_the_median(tmp_path):
    """The example plug-in gave NaN for a missing value, where every built-in number type
    fills it (with the mean); it now fills it with the median, and keeps it saved."""
    table = data(2000, seed=11)
    run_analysis(FeatureSpec({"latency": "robust_scaler"}), write_shards(table, tmp_path / "csv", 1), str(tmp_path / "b"))
    stats = load_bundle(str(tmp_path / "b")).features["latency"]
    fs = kdp_beam.FeatureSpace.from_artifacts(str(tmp_path / "b"), output_mode="dict")
    batch = {"latency": [stats["median"] + stats["iqr"], None, float("nan")]}
    np.testing.assert_allclose(np.asarray(fs(batch)["latency"])[:, 0], [1.0, 0.0, 0.0], atol=1e-6)
    fs.save(str(tmp_path / "m.keras"))
    loaded = keras.models.load_model(str(tmp_path / "m.keras"))
    np.testing.assert_allclose(np.asarray(loaded(batch)["latency"])[:, 0], [1.0, 0.0, 0.0], atol=1e-6)
    in_memory = kdp_beam.FeatureSpace({"latency": kdp_beam.FeatureSpace.robust_scaler()}, output_mode="dict")
    in_memory.adapt({"latency": table["latency"].to_numpy()})
    assert in_memory.fill_layers["latency"].fill_value == pytest.approx(stats["median"], rel=1e-3)


@register_type
class TopTokens(FeatureType):
    """Reuses the vocabulary analyzer but forgets to say its vocabulary columns."""

    name = "top_tokens"

    def column_kind(self, options):
        return "string"

    def analyzers(self, options, profile=False):
        from kdp_beam.analyzers.vocabulary import VocabularyAnalyzer

        vocabulary = VocabularyAnalyzer(max_size=3, excluded_tokens=["[UNK]"], missing_token=None, token_type=pa.string())
        return {**super().analyzers(options, profile), "vocabulary": vocabulary}


def test_a_type_giving_a_vocabulary_without_its_columns_is_told_what_to_list(tmp_path):
    table = pa.table({"city": ["a", "b", "a", "c"]})
    run_analysis(FeatureSpec({"city": "top_tokens"}), write_shards(table, tmp_path / "csv", 1), str(tmp_path / "b"))
    with pytest.raises(BundleError, match=r"a top_tokens feature has no vocabulary: its type's vocabulary_columns\(\) are none"):
        load_bundle(str(tmp_path / "b"))


def test_a_profiled_plugin_number_gets_its_histogram_in_the_report(tmp_path):
    """--profile sketched every number's distribution, but only the built-in number types
    drew it: a plug-in (and passthrough) paid for the sketch and showed no histogram."""
    from kdp_beam.tools.report import render_report

    table = data(800, seed=4)
    spec = FeatureSpec({"latency": "robust_scaler", "plain": "passthrough", "delta": "float_normalized"}, profile=True)
    run_analysis(spec, write_shards(table, tmp_path / "csv", 1), str(tmp_path / "b"))
    page = render_report(load_bundle(str(tmp_path / "b")))
    sections = dict(re.findall(r'<section class="feature-section" id="feature-\d+"><h2>(\w+) (.*?)</section>', page))
    assert sorted(sections) == ["delta", "latency", "plain"]
    for name, section in sections.items():
        assert section.count('class="chart histogram"') == 1, name


class NonPositiveAnalyzer:
    def create_accumulator(self):
        return 0

    def add_batch(self, acc, column):
        return acc + int((column.drop_null().to_numpy() <= 0).sum())

    def merge_accumulators(self, accs):
        return sum(accs)

    def finalize(self, acc):
        return {"nonpositive_count": acc}

    def to_state(self, acc):
        return acc

    def from_state(self, state):
        return state


@register_type
class PositiveLog(FeatureType):
    """Treats a value <= 0 as missing, a cause of its own."""

    name = "positive_log"
    missing_causes = (*FeatureType.missing_causes, ("nonpositive_count", "not positive"))

    def column_kind(self, options):
        return "float"

    def analyzers(self, options, profile=False):
        return {**super().analyzers(options, profile), "nonpositive": NonPositiveAnalyzer()}


def test_a_plugin_counts_its_own_cause_of_missing_values(tmp_path):
    """The causes were one list (null, NaN, unparseable dates) spelled in the analysis, the
    summary and the loader alike: a type could not add its own."""
    from kdp_beam.summary import summary_table
    from kdp_beam.tools.report import render_report

    table = pa.table({"x": [1.0, -2.0, None, 0.0, float("nan"), 5.0]})
    run_analysis(FeatureSpec({"x": "positive_log"}), write_shards(table, tmp_path / "pq", 1, fmt="parquet"), str(tmp_path / "b"))
    bundle = load_bundle(str(tmp_path / "b"))
    stats = bundle.features["x"]
    assert (stats["null_count"], stats["nan_count"], stats["nonpositive_count"], stats["missing_count"]) == (1, 1, 2, 4)
    assert "4 (1 null, 1 NaN, 2 not positive)" in summary_table(bundle.spec, bundle.features, bundle.row_count)
    assert "4 (1 null, 1 NaN, 2 not positive)" in render_report(bundle)
