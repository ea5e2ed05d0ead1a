"""The distribution-aware number types end to end (issue 19's done-means): real Parquet
files through run_analysis, a bundle, FeatureSpace.from_artifacts, the model's output
measured with numpy."""

import math

import numpy as np
import pyarrow as pa
import pytest

import kdp_beam
from kdp_beam.errors import InputDataError, SpecError
from kdp_beam.job import run_analysis
from kdp_beam.spec import FeatureSpec
from kdp_beam.summary import summary_table
from tests.conftest import write_shards

ROWS = 100_000
_rng = np.random.default_rng(19)
SKEWED = {
    "lognormal": _rng.lognormal(0.0, 1.0, ROWS),
    "gamma": _rng.gamma(2.0, 3.0, ROWS),
    "exponential": _rng.exponential(5.0, ROWS),
}
NORMAL = _rng.normal(3.0, 2.0, ROWS)
COLUMNS = {**SKEWED, "normal": NORMAL, "holes": np.where(_rng.random(ROWS) < 0.1, np.nan, SKEWED["gamma"])}
FEATURES = {
    **{f"{name}_auto": {"type": "float_auto", "column": name} for name in [*SKEWED, "normal"]},
    **{f"{name}_qn": {"type": "float_quantile_normal", "column": name} for name in SKEWED},
    **{f"{name}_ple": {"type": "float_ple", "num_bins": 16, "column": name} for name in [*SKEWED, "normal"]},
    "normal_z": {"type": "float_normalized", "column": "normal"},
    "declared": {"type": "float_auto", "transform": "log1p", "column": "gamma"},
    "holes": {"type": "float_auto", "missing_indicator": True, "column": "holes"},
}


def skewness(values):
    d = values - values.mean()
    return float((d**3).mean() / (d**2).mean() ** 1.5)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("distribution")
    # One column per feature (a feature reads the column of its name).
    table = pa.table({name: pa.array(COLUMNS[f["column"]], from_pandas=True) for name, f in FEATURES.items()})
    pattern = write_shards(table, tmp / "parquet", 3, fmt="parquet", row_group_size=20_000)
    declarations = {name: {k: v for k, v in f.items() if k != "column"} for name, f in FEATURES.items()}
    run_analysis(FeatureSpec(declarations), pattern, str(tmp / "bundle"))
    return kdp_beam.load_bundle(str(tmp / "bundle"))


@pytest.fixture(scope="module")
def encoded(bundle):
    fs = kdp_beam.FeatureSpace.from_artifacts(bundle, output_mode="dict")
    inputs = {name: COLUMNS[f["column"]].astype(np.float32)[:, None] for name, f in FEATURES.items()}
    return fs, {name: np.asarray(x, np.float64) for name, x in fs(inputs).items()}


@pytest.mark.parametrize("name", [f"{c}_{t}" for c in SKEWED for t in ("auto", "qn")])
def test_skewed_columns_encode_close_to_standard_normal(encoded, name):
    out = encoded[1][name].ravel()
    assert abs(skewness(out)) < 0.5 and abs(out.mean()) < 0.05 and abs(out.std() - 1) < 0.05, (
        name, skewness(out), out.mean(), out.std()
    )


def test_auto_records_its_choice_with_the_numbers(bundle):
    for column in SKEWED:
        stats = bundle.features[f"{column}_auto"]
        assert stats["transform"] != "none"
        raw = stats["candidate_skewness"]["none"]
        assert abs(raw - skewness(COLUMNS[column])) < 1e-9 * abs(raw)
        after = stats["candidate_skewness"][stats["transform"]]
        assert f"{raw:.3g} -> {after:.3g} after {stats['transform']}" in stats["reason"]
        # log1p and signed_log are exact moments of the transformed values.
        assert abs(stats["candidate_skewness"]["log1p"] - skewness(np.log1p(COLUMNS[column]))) < 1e-9
        if stats["transform"] == "yeo_johnson":
            assert -5 <= stats["yeo_johnson_lambda"] <= 5


def test_a_normal_column_keeps_the_z_score_equal_to_float_normalized(bundle, encoded):
    stats = bundle.features["normal_auto"]
    assert stats["transform"] == "none" and stats["yeo_johnson_lambda"] is None
    assert "plain z-score" in stats["reason"]
    fs, out = encoded
    np.testing.assert_allclose(out["normal_auto"], out["normal_z"], atol=1e-6, rtol=0)
    # ... and keras' own Normalization over the same data, computed in numpy.
    x = NORMAL.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(out["normal_auto"].ravel(), (x - NORMAL.mean()) / NORMAL.std(), atol=1e-6)


@pytest.mark.parametrize("column", [*SKEWED, "normal"])
def test_ple_equals_the_formula_over_the_bundles_edges(bundle, encoded, column):
    stats = bundle.features[f"{column}_ple"]
    edges = np.array([stats["min"], *stats["bin_boundaries"], stats["max"]])
    assert edges.size == 17 and np.all(np.diff(edges) >= 0)
    x = COLUMNS[column].astype(np.float32).astype(np.float64)[:, None]
    expected = np.clip((x - edges[:-1]) / (edges[1:] - edges[:-1]), 0.0, 1.0)
    np.testing.assert_allclose(encoded[1][f"{column}_ple"], expected, atol=1e-6, rtol=0)
    # Equal-frequency bins: each component is about 1 for 1 - t / T of the rows.
    share_full = (encoded[1][f"{column}_ple"] >= 1.0).mean(axis=0)
    np.testing.assert_allclose(share_full, 1 - np.arange(1, 17) / 16, atol=0.01)


def test_a_declared_transform_is_honoured(bundle, encoded):
    stats = bundle.features["declared"]
    assert stats["transform"] == "log1p" and stats["reason"] == "declared"
    logged = np.log1p(SKEWED["gamma"])
    assert abs(stats["transform_mean"] - logged.mean()) < 1e-12 * abs(logged.mean())
    x = np.log1p(SKEWED["gamma"].astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(encoded[1]["declared"].ravel(), (x - logged.mean()) / logged.std(), atol=1e-6)


def test_missing_values_are_filled_with_the_mean_and_indicated(bundle, encoded):
    fs, out = encoded
    holes = COLUMNS["holes"]
    stats = bundle.features["holes"]
    assert stats["missing_count"] == int(np.isnan(holes).sum()) > 0  # nulls in the Parquet file
    mean = np.nanmean(holes)
    assert abs(stats["mean"] - mean) < 1e-9 * mean
    filled = np.asarray(fs({**{n: np.zeros((1, 1), np.float32) for n in FEATURES}, "holes": np.array([[mean]], np.float32)})["holes"])
    np.testing.assert_array_equal(out["holes"][np.isnan(holes)].ravel(), np.full(np.isnan(holes).sum(), filled.item()))
    np.testing.assert_array_equal(out["holes_missing"].ravel(), np.isnan(holes).astype(float))


def test_summary_line_shows_the_transform(bundle):
    spec = bundle.spec
    table = summary_table(spec, bundle.features, ROWS)
    stats = bundle.features["lognormal_auto"]
    line = next(line for line in table.splitlines() if line.startswith("lognormal_auto"))
    before, after = stats["candidate_skewness"]["none"], stats["candidate_skewness"][stats["transform"]]
    assert f"{stats['transform']} (skew {before:.2g} -> {after:.2g})" in line
    assert "log1p (declared)" in next(line for line in table.splitlines() if line.startswith("declared"))


def test_report_section_shows_transform_reason_and_candidates(bundle):
    kind = bundle.spec.features["gamma_auto"].kind
    details, _ = kind.report_section(bundle.features["gamma_auto"], bundle.spec.features["gamma_auto"].options)
    assert "reason" in details and "skewness after quantile_normal" in details
    assert bundle.features["gamma_auto"]["transform"] in details


@pytest.mark.parametrize(
    "declaration, words",
    [
        ({"type": "float_auto", "multivalent": True}, ["one value per row", "multivalent"]),
        ({"type": "float_auto", "transform": "box_cox"}, ["transform", "box_cox", "log1p"]),
        ({"type": "float_ple", "num_bins": 0}, ["num_bins", "1 to 1,000"]),
        ({"type": "float_quantile_normal", "num_quantiles": 5000}, ["num_quantiles", "2 to 1,000"]),
        ({"type": "float_ple", "separator": ";"}, ["unknown argument", "separator"]),
    ],
)
def test_declarations_refused_name_the_argument(declaration, words):
    with pytest.raises(SpecError) as raised:
        FeatureSpec({"x": declaration})
    assert all(w in str(raised.value) for w in words), str(raised.value)


def test_declared_log1p_of_values_at_most_minus_one_is_an_error_naming_the_fix(tmp_path):
    pattern = write_shards(pa.table({"x": np.linspace(-3.0, 5.0, 200)}), tmp_path / "csv", 2)
    with pytest.raises(InputDataError) as raised:
        run_analysis(FeatureSpec({"x": {"type": "float_auto", "transform": "log1p"}}), pattern, str(tmp_path / "b"))
    message = str(raised.value)
    assert "'x'" in message and "-3.0" in message and "signed_log" in message, message


def test_in_memory_adapt_gives_what_the_pipeline_gives(bundle):
    declarations = {"lognormal_auto": "float_auto", "gamma_qn": {"type": "float_quantile_normal"}}
    fs = kdp_beam.FeatureSpace(declarations, output_mode="dict")
    fs.adapt({"lognormal_auto": SKEWED["lognormal"], "gamma_qn": SKEWED["gamma"]})
    config = fs.preprocessors["lognormal_auto"].get_config()
    stats = bundle.features["lognormal_auto"]
    assert config["transform"] == stats["transform"]
    assert math.isclose(config["mean"], stats["transform_mean"], rel_tol=1e-3)
