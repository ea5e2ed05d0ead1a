"""What a Keras model built from a bundle can hold: float32, up to FLOAT32_MAX (~3.4e38).

Statistics are float64 and can be far larger. A statistic beyond float32 becomes inf in the
model, and then every output is NaN or 0: a Normalization of mean 2e50 gives NaN for every
row, one of variance 1e60 gives 0. The builder refuses such statistics (naming the feature,
the statistic and what to do), and `kdp-beam analyze` warns of them, and of input values
beyond float32 (a model refuses those at call time), when it writes the bundle.
"""

import math

from kdp_beam.feature_types.options import FLOAT32_MAX


def first_beyond_float32(held):
    """The first (statistic, value) of `held` beyond FLOAT32_MAX in magnitude, or None.
    Each numeric type says which statistics its model holds (FeatureType.beyond_float32):
    the mean (the fill of a missing value unless fill_value is given; a Normalization's
    centre), the variance (a Normalization's), the bin boundaries (a Discretization's),
    and, for analyze's warning, the data's min and max (values a model cannot take)."""
    return next(((key, v) for key, v in held if v is not None and abs(v) > FLOAT32_MAX), None)


def float32_problem(statistic, value):
    """beyond_float32's finding, as the start of a sentence."""
    return f"its {statistic} {value:.6g} is beyond float32 (~{FLOAT32_MAX:.3g}), the Keras model's numbers"


def float32_remedy(statistic, value):
    """What to do about beyond_float32's finding: a power of ten to divide the column by
    that brings values to ~1e30 (a variance, a square, to ~1e30 too)."""
    magnitude, target = (math.sqrt(abs(value)), 15) if statistic == "variance" else (abs(value), 30)
    power = max(math.ceil(math.log10(magnitude)) - target, 1)
    return (
        f"scale the column before analysis (e.g. divide it by 1e{power}), or declare it "
        "a string categorical if the numbers are codes"
    )
