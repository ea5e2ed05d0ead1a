"""Multivalent features used as a new user would, on inputs the authors did not design:
each test here failed before its fix."""

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kdp_beam import FeatureSpace
from kdp_beam.cli import main
from kdp_beam.errors import SpecError
from kdp_beam.job import run_analysis


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A multivalent `tags` beside a scalar `city` and `size`, analysed from a real CSV."""
    root = tmp_path_factory.mktemp("outsider")
    with open(root / "data.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["tags", "city", "size"])
        writer.writerows([["a|b", "x", "1.5"], ["", "y", "2.5"], ["b", "x", "3.5"]])
    spec = {"features": {
        "tags": {"type": "string_categorical", "multivalent": True},
        "city": "string_categorical",
        "size": "float_normalized",
    }}
    run_analysis(spec, str(root / "data.csv"), str(root / "bundle"))
    return str(root / "bundle")


def test_a_cross_of_a_multivalent_feature_is_refused_when_the_space_is_declared():
    # It was accepted by the constructor and refused only by adapt(), with a message listing
    # string_categorical among the types a cross takes.
    features = {"tags": FeatureSpace.string_categorical(multivalent=True), "city": "string_categorical"}
    with pytest.raises(SpecError, match=r"\['tags'\] multivalent: a cross takes one value per row"):
        FeatureSpace(features, crosses=[FeatureSpace.cross(["city", "tags"], 8)])


@pytest.mark.parametrize("crossed", [["tags", "city"], ["size", "city"]])
def test_from_artifacts_refuses_a_cross_no_type_can_take(bundle, crossed):
    # from_artifacts built the layers and keras' HashedCrossing raised a raw ValueError
    # ("Expected the two input tensors to have identical shapes"), for a scalar float too.
    features = {"tags": {"type": "string_categorical", "multivalent": True},
                "city": "string_categorical", "size": "float_normalized"}
    with pytest.raises(SpecError, match=rf"cross {crossed!r}"):
        FeatureSpace.from_artifacts(bundle, features=features, crosses=[FeatureSpace.cross(crossed, 8)])


def test_infer_gives_a_csv_list_the_values_per_row_of_the_same_parquet_list(tmp_path):
    # The CSV note left the empty rows out (2.7 values per row where Parquet said 2.0,
    # and the analysis' mean_values_per_row 2.03).
    rows = [["a", "b"], [], ["c", "a", "b", "d"], [], ["b", "c"]] * 20
    pq.write_table(pa.table({"tags": rows}), tmp_path / "d.parquet")
    with open(tmp_path / "d.csv", "w", newline="") as f:
        csv.writer(f).writerows([["tags"], *(["|".join(r)] for r in rows)])
    notes = {}
    for fmt in ("parquet", "csv"):
        out = tmp_path / f"{fmt}.json"
        assert main(["infer", "--input", str(tmp_path / f"d.{fmt}"), "--output", str(out)]) == 0
        notes[fmt] = json.loads(out.read_text())["notes"]["tags"]
    mean = sum(map(len, rows)) / len(rows)
    assert f"({mean:.1f} values per row, up to 4)" in notes["parquet"]
    assert f"({mean:.1f} values per row, up to 4)" in notes["csv"]


def test_infer_keeps_the_rows_of_a_one_column_csv_that_hold_no_value(tmp_path, capsys):
    # Its re-typing wrote such a row as an empty line and read it back skipped: "inferred
    # from the first 3 rows" of 5, and every share of missing values was wrong.
    (tmp_path / "d.csv").write_text('size\n1.5\n""\n2.5\n""\n3.5\n')
    out = tmp_path / "features.json"
    assert main(["infer", "--input", str(tmp_path / "d.csv"), "--output", str(out)]) == 0
    assert "inferred from the first 5 rows of 1 file" in capsys.readouterr().err


def test_one_row_inside_tf_data_gives_a_pooled_one_hot_the_shape_an_eager_call_gives():
    # With a scalar feature beside, keras drops the batch axis of a one-row call only where
    # the static shape says one row: a hashed list's and a discretized list's pooled
    # one-hots (tf.math.bincount) came out (1, bins) inside tf.data, (bins,) eagerly.
    import numpy as np
    import tensorflow as tf

    features = {
        "h": {"type": "string_hashed", "multivalent": True, "num_bins": 4},
        "d": {"type": "float_discretized", "multivalent": True, "num_bins": 3, "pooling": "max"},
        "s": "string_categorical",
    }
    data = {"h": [["a"], ["b", "c"]], "d": [[1.0, 2.0], [3.0]], "s": ["x", "y"]}
    space = FeatureSpace(features, output_mode="dict")
    space.adapt(data)
    row = {"h": tf.constant(["b", "c"]), "d": tf.constant([3.0]), "s": tf.constant("y")}
    eager = space(row)
    mapped = next(iter(tf.data.Dataset.from_tensors(row).map(space)))
    for name in ("h", "d", "s"):
        assert tuple(mapped[name].shape) == tuple(eager[name].shape) == (eager[name].shape[-1],)
        np.testing.assert_array_equal(mapped[name].numpy(), eager[name].numpy())
    batched = space({name: [value] for name, value in zip(data, (["b", "c"], [3.0], "y"))})
    np.testing.assert_array_equal(eager["h"].numpy(), batched["h"].numpy()[0])


@pytest.mark.parametrize("declaration, first, second", [
    ("string_categorical", ["a", "b"], ["a", "c", "d", "d"]),
    ({"type": "string_categorical", "multivalent": True}, [["a"], ["b"]], [["a", "c"], ["d"], ["d"], []]),
])
def test_a_second_adapt_is_refused_rather_than_encoding_into_the_first_widths(declaration, first, second):
    # A scalar's one-hot kept the first vocabulary's width: after adapting on ["a", "c", "d"],
    # "a" (index 3 of 4) encoded as all zeros. A list's multi-hot raised keras' RuntimeError.
    space = FeatureSpace({"t": declaration, "n": "float_normalized"}, output_mode="dict")
    space.adapt({"t": first, "n": [1.0] * len(first)})
    with pytest.raises(SpecError, match="already adapted"):
        space.adapt({"t": second, "n": [1.0] * len(second)})


@pytest.mark.parametrize("tags, readings", [([None, None], [None, None]), ([], [])])
def test_a_dataframe_of_lists_is_one_row_per_item_when_no_item_is_a_list(tags, readings):
    # A column holding no list (all None, or no rows) was read as one row's values: two rows
    # with no values encoded as one row of two missing values, an empty frame as one row.
    import numpy as np
    import pandas as pd

    space = FeatureSpace({"tags": {"type": "string_categorical", "multivalent": True},
                          "readings": {"type": "float_normalized", "multivalent": True}}, output_mode="dict")
    space.adapt({"tags": [["a"], ["b", "a"]], "readings": [[1.0], [2.0, 3.0]]})
    frame = pd.DataFrame({"tags": pd.Series(tags, dtype=object), "readings": pd.Series(readings, dtype=object)})
    encoded = space(frame)
    assert encoded["tags"].shape == (len(tags), 3) and encoded["readings"].shape == (len(tags), 1)
    np.testing.assert_array_equal(np.asarray(encoded["tags"]), np.zeros((len(tags), 3)))
    np.testing.assert_array_equal(np.asarray(encoded["readings"]), np.zeros((len(tags), 1)))  # the mean: 0


def test_a_nan_row_of_a_dataframe_is_no_values_in_a_call_as_in_adapt():
    # adapt() read pandas' NaN (and NA) for a row as no values; a call refused it
    # ("got nan at row 1, beside rows of values").
    import numpy as np
    import pandas as pd

    features = {"tags": {"type": "string_categorical", "multivalent": True},
                "readings": {"type": "float_normalized", "multivalent": True}}
    frame = pd.DataFrame({"tags": [["a", "b"], np.nan, pd.NA], "readings": [[1.0, 3.0], np.nan, [5.0]]})
    space = FeatureSpace(features, output_mode="dict")
    space.adapt(frame)
    assert space.preprocessors["readings"].mean.numpy().item() == pytest.approx(3.0)  # 1, 3, 5
    encoded = space(frame)
    np.testing.assert_array_equal(np.asarray(encoded["tags"]), [[0, 1, 1], [0, 0, 0], [0, 0, 0]])
    std = np.std([1.0, 3.0, 5.0])
    np.testing.assert_allclose(np.asarray(encoded["readings"]).ravel(), [(2.0 - 3.0) / std, 0.0, 2.0 / std], rtol=1e-6)


def test_a_fill_value_a_sequence_would_ignore_is_refused():
    # Accepted, and a row with no value came out all zeros (mask 0) whatever fill_value said.
    with pytest.raises(SpecError, match="fill_value is what a row with no value pools to"):
        FeatureSpace({"v": {"type": "float", "multivalent": True, "sequence_length": 2, "fill_value": 9.0}})
    FeatureSpace({"v": {"type": "float", "multivalent": True, "sequence_length": 2, "missing_indicator": True}})
    FeatureSpace({"v": {"type": "float", "multivalent": True, "fill_value": 9.0}})  # pooled: it applies
