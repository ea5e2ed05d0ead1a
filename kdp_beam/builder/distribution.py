"""Keras layers of the distribution-aware number types (docs/distribution.md): the
quantile-normal map, the piecewise-linear encoding and the chosen transform.

Each holds its statistics as lists of floats in its config (as DateEncoding does), set
from a bundle by ``set_statistics``, and computes in float64 from its float32 input, cast
to float32 at the end: the edges and quantile points then keep the bundle's float64
values, and the result differs from a float64 numpy computation on the same float32 input
by the last float32 rounding only (``tf.math.ndtri``, ``log1p`` and ``pow`` may differ
from numpy's in the last float64 bit, far below it).
"""

import math

import keras
import numpy as np
import tensorflow as tf

from kdp_beam.builder import keras_internals

# scikit-learn QuantileTransformer's BOUNDS_THRESHOLD: the CDF is clipped to
# [1e-7, 1 - 1e-7] before the inverse normal CDF, so outputs lie within about +-5.2.
BOUNDS_THRESHOLD = 1e-7
TRANSFORMS = ("none", "log1p", "signed_log", "yeo_johnson", "quantile_normal")


def _interpolate(x, xp, fp, side):
    """np.interp(x, xp, fp) for a non-decreasing `xp` of >= 2 points, constant beyond its
    ends. Where points repeat (a value many rows hold), x equal to them gets the rank of
    the last of them (side "right", as np.interp) or of the first (side "left")."""
    shape = tf.shape(x)
    flat = tf.reshape(x, [-1])
    k = tf.clip_by_value(tf.searchsorted(xp, flat, side=side), 1, xp.shape[0] - 1)
    x0, x1 = tf.gather(xp, k - 1), tf.gather(xp, k)
    f0, f1 = tf.gather(fp, k - 1), tf.gather(fp, k)
    width = x1 - x0
    at_tie = tf.constant(1.0 if side == "right" else 0.0, tf.float64)
    t = tf.where(width > 0, (flat - x0) / tf.where(width > 0, width, 1.0), at_tie)
    inside = f0 + tf.clip_by_value(t, 0.0, 1.0) * (f1 - f0)
    # Beyond the ends, the ends' values (also where the end points repeat).
    return tf.reshape(tf.where(flat < xp[0], fp[0], tf.where(flat > xp[-1], fp[-1], inside)), shape)


def quantile_normal(x, quantiles):
    """Phi^-1(F(x)) in float64: F linear through `quantiles` (a float64 tensor of n + 1
    points) at ranks 0, 1/n, ..., 1, averaged over both directions where points repeat (as
    scikit-learn's QuantileTransformer), clipped to [BOUNDS_THRESHOLD, 1 - BOUNDS_THRESHOLD]."""
    ranks = tf.linspace(tf.constant(0.0, tf.float64), 1.0, quantiles.shape[0])
    # Forward from the left and backward from the right, as scikit-learn averages them.
    cdf = 0.5 * (_interpolate(x, quantiles, ranks, "right") + _interpolate(x, quantiles, ranks, "left"))
    return tf.math.ndtri(tf.clip_by_value(cdf, BOUNDS_THRESHOLD, 1.0 - BOUNDS_THRESHOLD))


def _float64(inputs):
    return tf.cast(tf.convert_to_tensor(inputs), tf.float64)


def _floats(values, arg, layer, at_least=0):
    """`values` as a list of finite floats in non-decreasing order, else ValueError naming
    the layer and the argument."""
    values = [float(v) for v in (values or ())]
    if not all(math.isfinite(v) for v in values) or any(a > b for a, b in zip(values, values[1:])):
        raise ValueError(f"{layer}: {arg} must be finite numbers in non-decreasing order. Received: {arg}={values!r:.200}")
    if values and len(values) < at_least:
        raise ValueError(f"{layer}: {arg} needs at least {at_least} values. Received: {arg}={values!r:.200}")
    return values


@keras.saving.register_keras_serializable(package="kdp_beam")
class QuantileNormal(keras.layers.Layer):
    """x -> Phi^-1(F(x)), F the CDF through the pass's quantile points: close to N(0, 1)
    whatever the input's shape. Below the first point the output is about -5.2, above the
    last about +5.2 (the clipped CDF).

    Args:
        quantiles: the n + 1 quantile points [min, q_1/n, ..., max], non-decreasing (empty
            until set: every output is 0).

    Example: ``QuantileNormal(quantiles=[0.0, 1.0, 4.0])(np.array([[1.0]]))`` is 0 (the median).
    """

    def __init__(self, quantiles=(), **kwargs):
        super().__init__(**kwargs)
        self.quantiles = _floats(quantiles, "quantiles", "QuantileNormal", at_least=2)
        keras_internals.take_inputs_as_given(self)  # no autocast: computed in float64 below

    def set_statistics(self, quantiles):
        self.quantiles = _floats(quantiles, "quantiles", "QuantileNormal", at_least=2)

    def call(self, inputs):
        x = _float64(inputs)
        if not self.quantiles:
            return tf.zeros_like(x, tf.float32)
        return tf.cast(quantile_normal(x, tf.constant(self.quantiles, tf.float64)), tf.float32)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype="float32")

    def get_config(self):
        return {**super().get_config(), "quantiles": self.quantiles}


@keras.saving.register_keras_serializable(package="kdp_beam")
class PiecewiseLinearEncoding(keras.layers.Layer):
    """x -> num_bins components in [0, 1] over the edges e_0..e_T (Gorishniy, Rubachev &
    Babenko 2022, "On Embeddings for Numerical Features in Tabular Deep Learning", eq. 1):
    component t is clip((x - e_{t-1}) / (e_t - e_{t-1}), 0, 1), so 0 below e_{t-1}, 1 above
    e_t. A bin of zero width (a repeated edge: a value many rows hold) is 1 where
    x >= e_t, else 0.

    Args:
        num_bins: T, the output width (>= 1).
        edges: T + 1 non-decreasing numbers [min, bin_boundaries..., max] (empty until set:
            every output is 0).
    """

    def __init__(self, num_bins, edges=(), **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_bins, bool) or not isinstance(num_bins, int) or num_bins < 1:
            raise ValueError(f"PiecewiseLinearEncoding: num_bins must be an integer >= 1. Received: num_bins={num_bins!r}")
        self.num_bins = num_bins
        self.edges = self._checked(edges)
        keras_internals.take_inputs_as_given(self)

    def _checked(self, edges):
        edges = _floats(edges, "edges", "PiecewiseLinearEncoding")
        if edges and len(edges) != self.num_bins + 1:
            raise ValueError(
                f"PiecewiseLinearEncoding: edges must be num_bins + 1 = {self.num_bins + 1} numbers. "
                f"Received: {len(edges)} edges"
            )
        return edges

    def set_statistics(self, edges):
        self.edges = self._checked(edges)

    def call(self, inputs):
        x = _float64(inputs)  # (rows, 1): broadcast against the T bins
        if not self.edges:
            return tf.zeros(tf.concat([tf.shape(x)[:-1], [self.num_bins]], 0), tf.float32)
        edges = np.asarray(self.edges, np.float64)
        low, high = tf.constant(edges[:-1]), tf.constant(edges[1:])
        width = high - low
        ratio = (x - low) / tf.where(width > 0, width, 1.0)
        step = tf.cast(x >= high, tf.float64)  # a zero-width bin
        return tf.cast(tf.clip_by_value(tf.where(width > 0, ratio, step), 0.0, 1.0), tf.float32)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.num_bins)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((*inputs.shape[:-1], self.num_bins), dtype="float32")

    def get_config(self):
        return {**super().get_config(), "num_bins": self.num_bins, "edges": self.edges}


def yeo_johnson(x, lam):
    """Yeo & Johnson (2000), "A new family of power transformations to improve normality
    or symmetry", eq. 2, of a float64 tensor; the TensorFlow twin of
    kdp_beam.analyzers.distribution.yeo_johnson (numpy: the analysis imports no
    TensorFlow), tested equal. expm1 / log1p keep small x and lambda near 0 or 2 exact."""
    positive = x >= 0
    zero = tf.zeros_like(x)
    up, down = tf.math.log1p(tf.where(positive, x, zero)), tf.math.log1p(tf.where(positive, zero, -x))
    upper = up if lam == 0 else tf.math.expm1(lam * up) / lam
    lower = -down if lam == 2 else -tf.math.expm1((2.0 - lam) * down) / (2.0 - lam)
    return tf.where(positive, upper, lower)


@keras.saving.register_keras_serializable(package="kdp_beam")
class DistributionTransform(keras.layers.Layer):
    """A transform chosen from the data, then normalised: (t(x) - mean) / std.

    Args:
        transform: "none", "log1p" (log(1 + x); a value <= -1 is taken as the float64 just
            above -1), "signed_log" (sign(x) log(1 + |x|)), "yeo_johnson" (with
            ``yeo_johnson_lambda``) or "quantile_normal" (Phi^-1 of the CDF through
            ``quantiles``, as QuantileNormal; its mean 0 and std 1 leave it as it is).
        mean, std: of t(x) over the data (std > 0; a constant column's 1).
        yeo_johnson_lambda: the fitted lambda, in [-5, 5].
        quantiles: the quantile points (quantile_normal).
    """

    def __init__(self, transform="none", mean=0.0, std=1.0, yeo_johnson_lambda=None, quantiles=(), **kwargs):
        super().__init__(**kwargs)
        self.set_statistics(transform, mean, std, yeo_johnson_lambda, quantiles)
        keras_internals.take_inputs_as_given(self)

    def set_statistics(self, transform, mean, std, yeo_johnson_lambda=None, quantiles=()):
        if transform not in TRANSFORMS:
            raise ValueError(f"DistributionTransform: transform must be one of {list(TRANSFORMS)}. Received: transform={transform!r}")
        if transform == "yeo_johnson" and not (isinstance(yeo_johnson_lambda, (int, float)) and -5 <= yeo_johnson_lambda <= 5):
            raise ValueError(
                "DistributionTransform: yeo_johnson needs yeo_johnson_lambda in [-5, 5]. "
                f"Received: yeo_johnson_lambda={yeo_johnson_lambda!r}"
            )
        if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
            raise ValueError(f"DistributionTransform: mean must be finite and std > 0. Received: mean={mean!r}, std={std!r}")
        self.transform = transform
        self.mean, self.std = float(mean), float(std)
        self.yeo_johnson_lambda = None if yeo_johnson_lambda is None else float(yeo_johnson_lambda)
        self.quantiles = _floats(quantiles, "quantiles", "DistributionTransform", at_least=2)

    def call(self, inputs):
        x = _float64(inputs)
        if self.transform == "log1p":
            t = tf.math.log1p(tf.maximum(x, np.nextafter(-1.0, 0.0)))
        elif self.transform == "signed_log":
            t = tf.sign(x) * tf.math.log1p(tf.abs(x))
        elif self.transform == "yeo_johnson":
            t = yeo_johnson(x, self.yeo_johnson_lambda)
        elif self.transform == "quantile_normal":
            t = quantile_normal(x, tf.constant(self.quantiles, tf.float64)) if self.quantiles else tf.zeros_like(x)
        else:
            t = x
        return tf.cast((t - self.mean) / self.std, tf.float32)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype="float32")

    def get_config(self):
        return {
            **super().get_config(),
            "transform": self.transform,
            "mean": self.mean,
            "std": self.std,
            "yeo_johnson_lambda": self.yeo_johnson_lambda,
            "quantiles": self.quantiles,
        }
