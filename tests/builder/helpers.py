"""One small dataset with a column for every feature type, and its declarations."""

import numpy as np
import pyarrow as pa

ROWS = 2000
_rng = np.random.default_rng(11)
DATA = {
    "f": _rng.normal(3, 2, ROWS).astype(np.float32),
    "r": _rng.uniform(0, 10, ROWS).astype(np.float32),
    "n": (1e4 + _rng.normal(0, 5, ROWS)).astype(np.float32),
    "d": _rng.lognormal(0, 1, ROWS).astype(np.float32),
    "ic": _rng.integers(-1, 20, ROWS),
    "sc": _rng.choice(["Paris", "Berlin", "Zürich", "", "a,b", "[UNK]", "Oslo"], ROWS),
    "sc2": _rng.choice(["x", "y", "z"], ROWS),
    "sh": _rng.choice([f"user{i}" for i in range(300)], ROWS),
    "ih": _rng.integers(0, 10**6, ROWS),
}


def declare(cls, output_mode="dict"):
    """The same declarations through keras' or kdp_beam's FeatureSpace constructors
    (one integer-coded feature in dict mode: keras cannot concatenate integers)."""
    return {
        "f": cls.float(),
        "r": cls.float_rescaled(scale=0.5, offset=1.0),
        "n": cls.float_normalized(),
        "d": cls.float_discretized(num_bins=4),
        "ic": cls.integer_categorical(max_tokens=8),
        "sc": cls.string_categorical(max_tokens=5),
        "sc2": cls.string_categorical(output_mode="int" if output_mode == "dict" else "one_hot"),
        "sh": cls.string_hashed(num_bins=16),
        "ih": cls.integer_hashed(num_bins=16),
    }


def feature_data_table():
    """DATA as an Arrow table (float32 columns widened exactly to float64)."""
    return pa.table({k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in DATA.items()})
