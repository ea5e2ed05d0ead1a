"""A feature with no value at all (an all-null column, a run that kept no row) builds a
working model: every value maps to OOV (categoricals, text), numbers and dates take their
no-statistics defaults, and the .keras file loads.

keras itself offers no oracle here: StringLookup / IntegerLookup / TextVectorization
adapted on no token fail at their first call ("Table not initialized"), and
keras.utils.FeatureSpace.adapt on an empty dataset raises StopIteration. The oracles are
keras' own layers given a vocabulary of one token the inputs never contain (so their OOV
mapping is the one wanted), and plain arithmetic.
"""

import datetime
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import kdp_beam
from kdp_beam.errors import SpecError
from kdp_beam.job import run_analysis
from kdp_beam.spec import FeatureSpec

FS = kdp_beam.FeatureSpace
NEVER = "zzzneveraninput"
SPEC = {
    "s": "string_categorical",
    "s3": {"type": "string_categorical", "output_mode": "int", "num_oov_indices": 3},
    "i": "integer_categorical",
    "i3": {"type": "integer_categorical", "output_mode": "int", "num_oov_indices": 3},
    "t": {"type": "text", "max_tokens": 20},
    "ti": {"type": "text", "output_mode": "int", "sequence_length": 4},
    "tf": {"type": "text", "output_mode": "tf_idf", "max_tokens": 20},
    "m": {"type": "string_categorical", "missing_token": "?"},
    "n": {"type": "float_normalized", "missing_indicator": True},
    "q": {"type": "float_discretized", "num_bins": 4},
    "d": "date",
    "h": {"type": "string_hashed", "num_bins": 4},
}
# The same declarations through FeatureSpace's constructors, for in-memory adapt().
DECLARED = {
    "s": FS.string_categorical, "s3": lambda: FS.string_categorical(output_mode="int", num_oov_indices=3),
    "i": FS.integer_categorical, "i3": lambda: FS.integer_categorical(output_mode="int", num_oov_indices=3),
    "t": lambda: FS.text(max_tokens=20), "ti": lambda: FS.text(output_mode="int", sequence_length=4),
    "tf": lambda: FS.text(output_mode="tf_idf", max_tokens=20),
    "m": lambda: FS.string_categorical(missing_token="?"),
    "n": lambda: FS.float_normalized(missing_indicator=True), "q": lambda: FS.float_discretized(num_bins=4),
    "d": FS.date, "h": lambda: FS.string_hashed(num_bins=4),
}
CALL = {
    "s": ["a", None, ""], "s3": ["a", "b", "c"], "i": [1, None, 7], "i3": [5, 6, 2**40],
    "t": ["a b", "", None], "ti": ["a b c d e", "x", None], "tf": ["a a b", "", "c"],
    "m": ["a", None, "?"], "n": [1.5, None, -2.0], "q": [1.0, 2.0, None],
    "d": ["2020-01-31", None, "bad"], "h": ["a", "b", None],
}


def _date_row(day):
    """DateEncoding with no statistics: the year as is, sin/cos of each cycle."""
    row = [float(day.year)]
    for value, (period, start) in (
        (day.month, (12, 1)), (day.day, (31, 1)), (day.weekday(), (7, 0)),
        (day.timetuple().tm_yday, (366, 1)),
    ):
        angle = 2 * math.pi * (value - start) / period
        row += [math.sin(angle), math.cos(angle)]
    return row


def _expected(rows):
    """What a model with no statistics must give for CALL, from keras' layers and
    arithmetic; `rows`: the rows the analysis read (the tf_idf document count)."""
    oov3_strings = keras.layers.StringLookup(num_oov_indices=3, vocabulary=[NEVER])
    oov3_ints = keras.layers.IntegerLookup(num_oov_indices=3, vocabulary=[-123456789])
    text = keras.layers.TextVectorization(vocabulary=[NEVER], output_mode="multi_hot")
    text_int = keras.layers.TextVectorization(vocabulary=[NEVER], output_mode="int", output_sequence_length=4)
    oov = [[1.0, 0.0]] * 3  # one-hot OOV, and the placeholder token's column no input reaches
    return {
        "s": oov,
        "s3": np.asarray(oov3_strings(np.array(CALL["s3"])))[:, None],
        "i": oov,
        "i3": np.asarray(oov3_ints(np.array(CALL["i3"])))[:, None],
        "t": np.asarray(text(np.array(["a b", "", ""]))),
        "ti": np.asarray(text_int(np.array(["a b c d e", "x", ""]))),
        # OOV count times the idf of a term seen in none of the `rows` documents.
        "tf": [[3 * math.log(1 + rows), 0.0], [0.0, 0.0], [math.log(1 + rows), 0.0]],
        # With rows, all missing: the missing token is the one token; with none, OOV.
        "m": [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]] if rows else oov,
        "n": [[1.5], [0.0], [-2.0]],  # no mean: the identity; missing filled with 0
        "n_missing": [[0.0], [1.0], [0.0]],
        "q": [[1.0, 0.0, 0.0, 0.0]] * 3,  # no boundary: one bin
        "d": [_date_row(datetime.date(2020, 1, 31)), [0.0] * 9, [0.0] * 9],  # missing: zeros
    }


def _check(fs, rows, tmp_path, label):
    out = {k: np.asarray(v) for k, v in fs(CALL).items()}
    for name, expected in _expected(rows).items():
        np.testing.assert_allclose(out[name], expected, rtol=1e-5, atol=1e-5, err_msg=name)
    assert out["h"].sum(axis=1).tolist() == [1.0] * 3
    fs.save(str(tmp_path / f"{label}.keras"))
    loaded = keras.models.load_model(str(tmp_path / f"{label}.keras"))
    for name, value in loaded(CALL).items():
        np.testing.assert_array_equal(np.asarray(value), out[name], err_msg=name)
    return out


def test_all_null_columns_from_a_bundle_build_a_working_model(tmp_path):
    names = list(SPEC)
    (tmp_path / "a.csv").write_text(",".join(names + ["kept"]) + "\n" + ("," * len(names) + "1\n") * 5)
    spec = FeatureSpec(SPEC, crosses=[["s", "i"]], output_mode="dict")
    run_analysis(spec, str(tmp_path / "a.csv"), str(tmp_path / "bundle"))
    out = _check(FS.from_artifacts(str(tmp_path / "bundle")), 5, tmp_path, "bundle")
    assert out["s_X_i"].sum(axis=1).tolist() == [1.0] * 3

    # The functional model takes missing values already encoded: "", NaN, -1.
    model = kdp_beam.build_preprocessor(str(tmp_path / "bundle"))
    missing = {"string": "", "float32": math.nan, "int64": -1}
    batch = {
        name: np.array([missing[model.input[name].dtype] if v is None else v for v in values],
                       dtype=object if model.input[name].dtype == "string" else model.input[name].dtype)[:, None]
        for name, values in CALL.items()
    }
    model.save(str(tmp_path / "model.keras"))
    reloaded = keras.models.load_model(str(tmp_path / "model.keras"))
    model.export(str(tmp_path / "served"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "served"))
    tensors = {k: tf.constant(v, dtype=model.input[k].dtype) for k, v in batch.items()}
    for outputs in (model(batch), reloaded(batch), served.serve(tensors)):
        for name, value in outputs.items():
            np.testing.assert_allclose(np.asarray(value), out[name], rtol=1e-6, err_msg=name)


def test_a_run_that_kept_no_row_builds_a_working_model(tmp_path):
    """on_bad_record="skip" with every row bad: the analysis read 0 rows."""
    (tmp_path / "bad.csv").write_text(",".join(SPEC) + "\n" + "1,2\n" * 4)  # wrong field count
    run_analysis(
        FeatureSpec(SPEC, output_mode="dict"), str(tmp_path / "bad.csv"), str(tmp_path / "bundle"),
        on_bad_record="skip",
    )
    bundle = kdp_beam.load_bundle(str(tmp_path / "bundle"))
    assert bundle.features["s"]["count"] == 0
    _check(FS.from_artifacts(bundle), 0, tmp_path, "skip")


def test_in_memory_adapt_on_no_rows_builds_a_working_model(tmp_path):
    fs = FS({name: make() for name, make in DECLARED.items()}, output_mode="dict")
    fs.adapt({name: [] for name in DECLARED})
    _check(fs, 0, tmp_path, "memory")


def test_no_value_and_no_oov_index_is_refused_naming_the_feature():
    fs = FS({"c": FS.string_categorical(num_oov_indices=0)})
    with pytest.raises(SpecError, match="feature 'c'.*num_oov_indices"):
        fs.adapt({"c": np.array([None, ""], dtype=object)})
