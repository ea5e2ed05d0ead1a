"""TransformFeatures encodes every row exactly as the model does: real files (CSV, Parquet,
JSON Lines) with a column per built-in feature type and missing values in every column, a
real analysis (run_analysis), a real Beam pipeline ReadInput | TransformFeatures, compared
row by row with FeatureSpace.from_artifacts(bundle, output_mode="dict") called on the same
rows read independently (Python's csv and json modules, pyarrow.parquet; None for missing).
Integers exact, floats within 1e-6.

DECLARATIONS is checked against the registry: a built-in type added later fails
test_every_built_in_type_is_declared until it is declared here."""

import csv
import json
import os
import tempfile
import uuid
import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kdp_beam.feature_types import registered_types
from kdp_beam.io import ReadInput
from kdp_beam.job import run_analysis
from kdp_beam.spec import FeatureSpec

ROWS = 600
LABEL = "y"
ROW_ID = "rid"  # a column kept beside the encoding (not a feature)
# {type name: [(column, declaration options, kind of values)]}; kinds: float, int, str,
# text, date, list<float>, list<int>, list<str>.
DECLARATIONS = {
    "float": [
        ("f", {}, "float"),
        ("f_ind", {"missing_indicator": True, "fill_value": 0.5}, "float"),
        ("f_seq", {"multivalent": True, "sequence_length": 3}, "list<float>"),
    ],
    "float_rescaled": [("r", {"scale": 0.5, "offset": 1.0}, "float")],
    "float_normalized": [
        ("n", {"missing_indicator": True}, "float"),
        ("n_pool", {"multivalent": True, "pooling": "mean"}, "list<float>"),
    ],
    "float_discretized": [
        ("d", {"num_bins": 4}, "float"),
        ("d_int", {"num_bins": 4, "output_mode": "int"}, "float"),
        ("d_seq", {"num_bins": 3, "multivalent": True, "sequence_length": 2}, "list<float>"),
    ],
    "integer_categorical": [
        ("ic", {"max_tokens": 8}, "int"),
        ("ic_int", {"output_mode": "int", "missing_token": 7}, "int"),
        ("ic_multi", {"multivalent": True}, "list<int>"),
        ("ic_target", {"output_mode": "target"}, "int"),
    ],
    "string_categorical": [
        ("sc", {"max_tokens": 5}, "str"),
        ("sc_int", {"output_mode": "int"}, "str"),
        ("sc_multi", {"multivalent": True, "output_mode": "multi_hot"}, "list<str>"),
        ("sc_seq", {"multivalent": True, "output_mode": "int", "sequence_length": 3}, "list<str>"),
        ("sc_target", {"output_mode": "target"}, "str"),
    ],
    "integer_hashed": [("ih", {"num_bins": 16}, "int")],
    "string_hashed": [
        ("sh", {"num_bins": 16}, "str"),
        ("sh_multi", {"num_bins": 8, "multivalent": True, "output_mode": "multi_hot"}, "list<str>"),
    ],
    "passthrough": [
        ("p", {}, "float"),
        ("p_int", {"dtype": "int64"}, "int"),
        ("p_str", {"dtype": "string"}, "str"),
        ("p_f64", {"dtype": "float64"}, "float"),
        ("p_i32", {"dtype": "int32"}, "int"),
    ],
    "text": [
        ("t", {"max_tokens": 20}, "text"),
        ("t_tfidf", {"max_tokens": 20, "output_mode": "tf_idf", "ngrams": 2}, "text"),
        ("t_int", {"max_tokens": 20, "output_mode": "int", "sequence_length": 6}, "text"),
    ],
    "date": [("dt", {"missing_indicator": True}, "date")],
    "float_quantile_normal": [("qn", {"num_quantiles": 50}, "float")],
    "float_ple": [("ple", {"num_bins": 5, "missing_indicator": True}, "float")],
    "float_auto": [("auto", {}, "float"), ("auto_yj", {"transform": "yeo_johnson"}, "float")],
}
CROSSES = [{"feature_names": ["sc", "ic"], "crossing_dim": 8}, {"feature_names": ["sh", "p_int"], "crossing_dim": 4}]
COLUMNS = {column: kind for declared in DECLARATIONS.values() for column, _, kind in declared}
WORDS = ["the", "cat", "Sat", "on", "mat!", "dog", "ran", "Über", "far,", "away"]


def test_every_built_in_type_is_declared():
    built_in = {t.name for t in registered_types() if type(t).__module__.startswith("kdp_beam.feature_types.")}
    assert built_in == set(DECLARATIONS), "declare each built-in type in DECLARATIONS"


def spec():
    features = {
        column: {"type": name, **options} for name, declared in DECLARATIONS.items() for column, options, _ in declared
    }
    return FeatureSpec.from_json(
        {"features": features, "crosses": CROSSES, "output_mode": "dict", "label": LABEL, "label_type": "binary"}
    )


def _value(kind, rng):
    """One row's value of a column of `kind`, None (missing) one time in eight."""
    if rng.random() < 0.125:
        return None
    if kind == "float":
        return round(float(rng.normal(3, 2)), 6)
    if kind == "int":
        return int(rng.integers(-1, 12))
    if kind == "str":
        return str(rng.choice(["Paris", "Berlin", "Zürich", "a,b", "Oslo", "[UNK]", "x y"]))
    if kind == "text":
        return " ".join(rng.choice(WORDS, int(rng.integers(1, 7))))
    if kind == "date":
        return f"20{rng.integers(10, 30)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}T{rng.integers(0, 24):02d}:30:00"
    element = kind[5:-1]
    # A list of 0-4 values, a missing element among them sometimes.
    return [None if rng.random() < 0.1 else _value(element, rng) or _value(element, rng) for _ in range(rng.integers(0, 5))]


def rows():
    rng = np.random.default_rng(18)
    data = [{column: _value(kind, rng) for column, kind in COLUMNS.items()} for _ in range(ROWS)]
    for index, row in enumerate(data):
        row[LABEL], row[ROW_ID] = int(rng.integers(0, 2)), index
    return data


def arrow_table(data):
    types = {"float": pa.float64(), "int": pa.int64(), "str": pa.string(), "text": pa.string(), "date": pa.string()}
    fields = {}
    for column, kind in COLUMNS.items():
        element = kind[5:-1] if kind.startswith("list<") else None
        arrow = pa.list_(types[element]) if element else types[kind]
        fields[column] = pa.array([row[column] for row in data], arrow)
    for column in (LABEL, ROW_ID):
        fields[column] = pa.array([row[column] for row in data], pa.int64())
    return pa.table(fields)


def write_csv(data, path):
    """Lists as text joined by "|" (a missing element: an empty value), None as an empty field."""

    def text(value):
        if value is None:
            return ""
        if isinstance(value, list):
            return "|".join("" if v is None else str(v) for v in value)
        return str(value)

    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*COLUMNS, LABEL, ROW_ID])
        for row in data:
            writer.writerow([text(row[c]) for c in [*COLUMNS, LABEL, ROW_ID]])


def read_csv_oracle(path):
    """The rows by Python's csv module, each field as the model takes it (None missing)."""

    def value(field, kind):
        if kind.startswith("list<"):
            if field == "":
                return []
            return [value(v, kind[5:-1]) for v in field.split("|")]
        if field == "":
            return None
        return float(field) if kind == "float" else int(field) if kind == "int" else field

    with open(path, newline="", encoding="utf-8") as f:
        kinds = {**COLUMNS, ROW_ID: "int"}
        return [{c: value(row[c], k) for c, k in kinds.items()} for row in csv.DictReader(f)]


def read_parquet_oracle(path):
    return pq.read_table(path).to_pylist()


def read_jsonl_oracle(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    directory = tmp_path_factory.mktemp("equality")
    data = rows()
    write_csv(data, directory / "data.csv")
    run_analysis(spec(), str(directory / "data.csv"), str(directory / "bundle"))
    return directory, data


@pytest.fixture(scope="module")
def model(bundle):
    from kdp_beam.builder import FeatureSpace

    return FeatureSpace.from_artifacts(str(bundle[0] / "bundle"), output_mode="dict")


def transformed(pattern, bundle_path):
    from kdp_beam.transform.beam import TransformFeatures
    from kdp_beam.transform.encode import BatchEncoder

    keep = {ROW_ID: "integer"}
    columns = BatchEncoder(bundle_path, keep).columns
    out = tempfile.mkdtemp()
    with beam.Pipeline() as p:
        encoded = p | ReadInput(pattern, spec(), columns=columns) | TransformFeatures(bundle_path, keep)
        encoded["batches"] | beam.Map(_write_arrow, out)
    files = sorted(os.listdir(out))
    return pa.concat_tables(pa.ipc.open_file(os.path.join(out, name)).read_all() for name in files)


def _write_arrow(batch, directory):
    with pa.ipc.new_file(os.path.join(directory, f"{uuid.uuid4()}.arrow"), batch.schema) as writer:
        writer.write_batch(batch)


def model_outputs(model, raw):
    """The model's dict outputs for the rows, as numpy (rows, width) arrays."""
    inputs = {column: [row[column] for row in raw] for column in COLUMNS}
    return {name: np.asarray(value) for name, value in model(inputs).items()}


def assert_equal_to_model(table, expected):
    assert table.column_names == list(expected)
    for name, want in expected.items():
        column = table.column(name).combine_chunks()
        got = column.values.to_numpy(zero_copy_only=False).reshape(len(column), column.type.list_size)
        want = want.reshape(len(column), -1)
        if want.dtype.kind == "f":
            assert got.dtype == want.dtype, name
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, err_msg=name)
        elif want.dtype.kind in "OSU":
            assert got.tolist() == [[v.decode() if isinstance(v, bytes) else v for v in r] for r in want.tolist()], name
        else:
            np.testing.assert_array_equal(got, want, err_msg=name)


def test_csv_encodes_as_the_model(bundle, model):
    directory, _ = bundle
    check_file(directory / "data.csv", read_csv_oracle, directory, model)


def check_file(path, oracle, directory, model):
    """The file transformed equals the model's outputs for the file's rows read by `oracle`."""
    raw = oracle(path)
    table = transformed(str(path), str(directory / "bundle"))
    assert table.num_rows == len(raw) == ROWS
    table = table.sort_by(ROW_ID)  # Beam keeps no order: the kept row id gives it back
    assert table.column(ROW_ID).to_pylist() == [row[ROW_ID] for row in raw]
    assert_equal_to_model(table.drop_columns([ROW_ID]), model_outputs(model, raw))


def test_parquet_encodes_as_the_model(bundle, model):
    directory, data = bundle
    path = directory / "data.parquet"
    pq.write_table(arrow_table(data), path, row_group_size=150)  # batches from several row groups
    check_file(path, read_parquet_oracle, directory, model)


def test_json_lines_encode_as_the_model(bundle, model):
    directory, data = bundle
    path = directory / "data.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for row in data:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    check_file(path, read_jsonl_oracle, directory, model)


def write_tfrecord(data, path):
    """tf.Example records: numbers as float_list (float32) or int64_list, text as
    bytes_list, a missing value as an absent feature (tf.Example has no missing element
    inside a list: those are left out of it)."""
    import tensorflow as tf

    lists = {"float": "float_list", "int": "int64_list"}
    kinds = {**COLUMNS, LABEL: "int", ROW_ID: "int"}
    with tf.io.TFRecordWriter(str(path)) as writer:
        for row in data:
            features = {}
            for column, kind in kinds.items():
                if row[column] is None:
                    continue
                element = kind[5:-1] if kind.startswith("list<") else kind
                values = [v for v in (row[column] if element != kind else [row[column]]) if v is not None]
                which = lists.get(element, "bytes_list")
                if which == "bytes_list":
                    values = [v.encode() for v in values]
                feature = tf.train.Feature(**{which: {"float_list": tf.train.FloatList, "int64_list": tf.train.Int64List,
                                                       "bytes_list": tf.train.BytesList}[which](value=values)})
                features[column] = feature
            writer.write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())


def read_tfrecord_oracle(path):
    """The records by tf.train.Example.FromString (not the reader under test): an absent
    feature is None (a list feature's: no values), floats as the float32 they are stored as."""
    import tensorflow as tf

    raw = []
    for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
        example = tf.train.Example.FromString(record).features.feature
        row = {}
        for column, kind in {**COLUMNS, ROW_ID: "int"}.items():
            values = []
            if column in example:
                feature = example[column]
                values = list(getattr(feature, feature.WhichOneof("kind")).value)
                values = [v.decode() if isinstance(v, bytes) else v for v in values]
            row[column] = values if kind.startswith("list<") else (values[0] if values else None)
        raw.append(row)
    return raw


def test_tfrecord_encodes_as_the_model(bundle, model):
    directory, data = bundle
    path = directory / "data.tfrecord"
    write_tfrecord(data, path)
    check_file(path, read_tfrecord_oracle, directory, model)
