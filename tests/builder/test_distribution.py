"""The distribution layers: equal to their formulas computed independently in numpy, in
tf.data, after .keras save/load and through model.export()."""

import statistics

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

import kdp_beam
from kdp_beam.analyzers import distribution as numpy_maths
from kdp_beam.builder.distribution import DistributionTransform, PiecewiseLinearEncoding, QuantileNormal, yeo_johnson


def sklearn_quantile_normal(x, quantiles):
    """scikit-learn QuantileTransformer._transform_col's formula (output "normal"), with
    the standard library's inverse normal CDF."""
    q = np.asarray(quantiles, np.float64)
    references = np.linspace(0, 1, q.size)
    cdf = 0.5 * (np.interp(x, q, references) - np.interp(-x, -q[::-1], -references[::-1]))
    cdf = np.clip(cdf, 1e-7, 1 - 1e-7)
    return np.array([statistics.NormalDist().inv_cdf(p) for p in cdf])


# Ties at the ends and inside: a value many rows hold.
QUANTILES = [-2.0, -2.0, -1.0, 0.0, 0.0, 0.0, 0.5, 3.0, 7.0, 7.0]
QUERIES = np.array([-9.0, -2.0, -1.5, -1.0, -1e-9, 0.0, 1e-9, 0.25, 0.5, 2.0, 3.0, 6.9, 7.0, 8.0, 1e30])


def test_quantile_normal_equals_scikit_learns_formula_also_at_ties_and_beyond_the_ends():
    layer = QuantileNormal(quantiles=QUANTILES)
    got = np.asarray(layer(QUERIES.astype(np.float32)[:, None])).ravel()
    want = sklearn_quantile_normal(QUERIES.astype(np.float32).astype(np.float64), QUANTILES)
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=1e-6)
    assert got[0] < -5.19 and got[-2] == got[-1] > 5.19  # below min / above max: the clipped CDF
    # 0.0 is the points 3..5 of 9: the averaged rank of the run.
    np.testing.assert_allclose(got[5], statistics.NormalDist().inv_cdf(0.5 * (3 / 9 + 5 / 9)), atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, width=32), min_size=2, max_size=40),
    st.lists(st.floats(-2e6, 2e6, width=32), min_size=1, max_size=20),
)
def test_quantile_normal_equals_the_formula_on_any_points(points, queries):
    points, queries = sorted(points), np.array(queries, np.float32)
    got = np.asarray(QuantileNormal(quantiles=points)(queries[:, None])).ravel()
    np.testing.assert_allclose(got, sklearn_quantile_normal(queries.astype(np.float64), points), atol=2e-6, rtol=1e-6)
    np.testing.assert_allclose(got, numpy_maths.quantile_normal(queries.astype(np.float64), points), atol=2e-6, rtol=1e-6)


def test_ple_equals_the_papers_formula_and_a_zero_width_bin_is_a_step():
    edges = [0.0, 1.0, 1.0, 4.0, 10.0]  # the second bin has zero width
    x = np.array([-1.0, 0.0, 0.5, 0.999, 1.0, 2.5, 4.0, 9.0, 10.0, 50.0])
    got = np.asarray(PiecewiseLinearEncoding(4, edges=edges)(x.astype(np.float32)[:, None]))
    e = np.array(edges)
    with np.errstate(divide="ignore", invalid="ignore"):
        want = np.clip((x[:, None] - e[:-1]) / (e[1:] - e[:-1]), 0, 1)
    want[:, 1] = (x >= 1.0).astype(float)
    np.testing.assert_allclose(got, want, atol=1e-7)
    assert got.dtype == np.float32 and got.shape == (10, 4)


def test_layers_refuse_bad_arguments_naming_them():
    with pytest.raises(ValueError, match="num_bins"):
        PiecewiseLinearEncoding(0)
    with pytest.raises(ValueError, match="edges must be num_bins \\+ 1"):
        PiecewiseLinearEncoding(2, edges=[0.0, 1.0])
    with pytest.raises(ValueError, match="non-decreasing"):
        QuantileNormal(quantiles=[1.0, 0.0])
    with pytest.raises(ValueError, match="yeo_johnson_lambda"):
        DistributionTransform("yeo_johnson", yeo_johnson_lambda=9.0)
    with pytest.raises(ValueError, match="transform must be one of"):
        DistributionTransform("box_cox")


@pytest.mark.parametrize("lam", [-5.0, -1.3, 0.0, 1e-13, 0.7, 1.0, 2.0, 2.5, 5.0])
def test_yeo_johnson_in_tensorflow_equals_the_numpy_analysis_and_the_papers_cases(lam):
    x = np.array([-50.0, -3.0, -1e-8, 0.0, 1e-8, 0.5, 3.0, 80.0])
    got = np.asarray(yeo_johnson(tf.constant(x), lam))
    np.testing.assert_allclose(got, numpy_maths.yeo_johnson(x, lam), rtol=1e-12, atol=1e-300)
    # Yeo & Johnson's eq. 2, case by case, in plain Python (whose (x + 1) ** lam - 1 loses
    # every digit as lam -> 0: the expm1 form above is what makes 1e-13 right).
    for value, y in zip(x, got if abs(lam) > 1e-6 else ()):
        if value >= 0:
            want = np.log1p(value) if lam == 0 else ((value + 1) ** lam - 1) / lam
        else:
            want = -np.log1p(-value) if lam == 2 else -((1 - value) ** (2 - lam) - 1) / (2 - lam)
        assert abs(y - want) <= 1e-6 * max(1.0, abs(want)), (value, lam, y, want)


def test_distribution_transform_computes_each_transform():
    x = np.array([-0.5, 0.0, 1.0, 30.0])
    cases = {
        "none": x,
        "log1p": np.log1p(x),
        "signed_log": np.sign(x) * np.log1p(np.abs(x)),
        "yeo_johnson": numpy_maths.yeo_johnson(x, 0.3),
    }
    for transform, t in cases.items():
        layer = DistributionTransform(transform, mean=0.25, std=2.0, yeo_johnson_lambda=0.3 if transform == "yeo_johnson" else None)
        np.testing.assert_allclose(np.asarray(layer(x[:, None])).ravel(), (t - 0.25) / 2.0, rtol=1e-6)
    layer = DistributionTransform("quantile_normal", quantiles=QUANTILES)
    np.testing.assert_allclose(np.asarray(layer(x[:, None])).ravel(), sklearn_quantile_normal(x, QUANTILES), atol=1e-6)


@pytest.fixture(scope="module")
def feature_space(tmp_path_factory):
    rng = np.random.default_rng(5)
    data = {"a": rng.gamma(2.0, 1.0, 3000), "q": rng.exponential(1.0, 3000), "p": rng.normal(0, 1, 3000)}
    data["q"][::7] = np.nan
    fs = kdp_beam.FeatureSpace(
        {
            "a": "float_auto",
            "q": {"type": "float_quantile_normal", "num_quantiles": 100, "missing_indicator": True},
            "p": kdp_beam.FeatureSpace.float_ple(num_bins=5),
        },
        output_mode="concat",
    )
    fs.adapt(data)
    return fs, {k: v.astype(np.float32)[:40, None] for k, v in data.items()}


def test_feature_space_in_tf_data_after_save_load_and_export(feature_space, tmp_path):
    fs, inputs = feature_space
    want = np.asarray(fs(inputs))
    assert want.shape == (40, 1 + 1 + 5 + 1)  # a, p's 5 components, q, q's indicator
    batches = tf.data.Dataset.from_tensor_slices(inputs).batch(8).map(fs)
    np.testing.assert_array_equal(np.concatenate([np.asarray(b) for b in batches]), want)
    fs.save(str(tmp_path / "fs.keras"))
    np.testing.assert_array_equal(np.asarray(keras.models.load_model(str(tmp_path / "fs.keras"))(inputs)), want)
    model = keras.Model(fs.get_inputs(), fs.get_encoded_features())
    model.save(tmp_path / "m.keras")
    np.testing.assert_array_equal(np.asarray(keras.models.load_model(tmp_path / "m.keras")(inputs)), want)
    model.export(str(tmp_path / "served"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "served"))
    np.testing.assert_allclose(np.asarray(served.serve({k: tf.constant(v) for k, v in inputs.items()})), want, atol=1e-6)
