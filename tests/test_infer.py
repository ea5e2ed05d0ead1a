"""kdp-beam infer proposes declarations with reasons, usable by analyze as written."""

import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

import kdp_beam
from kdp_beam.cli import main
from kdp_beam.errors import InputDataError
from kdp_beam.job import run_analysis
from kdp_beam.tools.infer import infer_features
from tests.conftest import write_shards


def table(rows=3000, seed=0):
    rng = np.random.default_rng(seed)
    words = ["alpha", "beta", "gamma", "delta", "eps"]
    return pa.table(
        {
            "price": rng.lognormal(3, 1, rows),
            "rating": rng.integers(1, 6, rows),
            "count": rng.integers(0, 300, rows),
            "user_id": rng.permutation(rows) + 10**12,
            "amount_cents": rng.integers(0, 10**9, rows),  # nearly all distinct, not an ID
            "row": np.arange(rows) + 7,  # all distinct and dense: row numbers
            "country": rng.choice(["FR", "DE", "NA", "BR"], rows),  # "NA" is Namibia here
            "session": [f"s-{v}" for v in rng.permutation(rows)],
            "comment": [" ".join(rng.choice(words, rng.integers(3, 9))) + f" #{i}" for i in range(rows)],
            "when": [f"2024-{m:02d}-{d:02d}T10:00:00" for m, d in zip(rng.integers(1, 13, rows), rng.integers(1, 29, rows))],
            "nothing": pa.array([None] * rows, pa.float64()),
        }
    )


EXPECTED = {
    "price": "float_normalized",
    "rating": "integer_categorical",
    "count": "float_normalized",
    "user_id": "integer_hashed",
    "amount_cents": "float_normalized",
    "row": "integer_hashed",
    "country": "string_categorical",
    "session": "string_hashed",
    "comment": "text",
    "when": "date",
}


def write_json_lines(data, directory):
    """Two JSON Lines files; the first starts with lines that are not objects (`null`
    crashes pyarrow's JSON parser), which the sample leaves out."""
    directory.mkdir()
    rows = data.to_pylist()
    half = len(rows) // 2
    for i, part in enumerate([rows[:half], rows[half:]]):
        lines = (["null", "[1, 2]", "{not json"] if i == 0 else []) + [json.dumps(r) for r in part]
        (directory / f"part-{i}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(directory / "*.jsonl")


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_infer_chooses_by_type_cardinality_tokens_and_parsing(tmp_path, fmt):
    if fmt == "jsonl":
        pattern = write_json_lines(table(), tmp_path / fmt)
    else:
        pattern = write_shards(table(), tmp_path / fmt, 2, fmt=fmt)
    out = tmp_path / "features.json"
    assert main(["infer", "--input", pattern, "--output", str(out), "--sample-rows", "2500"]) == 0
    proposed = json.loads(out.read_text())
    kinds = {n: d if isinstance(d, str) else d["type"] for n, d in proposed["features"].items()}
    assert kinds == EXPECTED
    assert "nothing" not in proposed["features"] and "no value" in proposed["notes"]["nothing"]
    assert "identifiers (named like one)" in proposed["notes"]["user_id"]
    assert "row numbers" in proposed["notes"]["row"] and "quantity" in proposed["notes"]["amount_cents"]
    assert "date" in proposed["notes"]["when"]
    assert set(proposed["notes"]) == set(table().column_names)
    # Ready to use as written: analyse with it and build the model.
    run_analysis(str(out), pattern, str(tmp_path / "bundle"), on_bad_record="skip")  # jsonl: 3 bad lines
    fs = kdp_beam.FeatureSpace.from_artifacts(str(tmp_path / "bundle"))
    assert fs.get_encoded_features().shape[-1] > 0


def test_files_typed_differently_are_unified_or_named(tmp_path, capsys):
    (tmp_path / "a.csv").write_text("amount,code\n1,7\n2,8\n")
    (tmp_path / "b.csv").write_text("amount,code\n2.5,x\n3.5,y\n")
    out = tmp_path / "f.json"
    assert main(["infer", "--input", str(tmp_path / "a.csv"), "--output", str(out)]) == 0
    (tmp_path / "c.csv").write_text("amount\n1\n2\n")
    (tmp_path / "d.csv").write_text("amount\n2.5\n3.5\n")
    assert main(["infer", "--input", str(tmp_path / "[cd].csv"), "--output", str(out)]) == 0
    assert json.loads(out.read_text())["features"] == {"amount": "float_normalized"}  # int64 + double
    assert main(["infer", "--input", str(tmp_path / "[ab].csv"), "--output", str(out)]) == 2
    assert re.search(r"column 'code' is int64 in \S*a\.csv but string in \S*b\.csv", capsys.readouterr().err)


def write_table(data, directory, fmt):
    if fmt == "jsonl":
        directory.mkdir()
        lines = [json.dumps(row, default=str) for row in data.to_pylist()]
        (directory / "d.jsonl").write_text("\n".join(lines) + "\n")
        return str(directory / "d.jsonl")
    return write_shards(data, directory, 1, fmt=fmt)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_a_true_false_column_is_proposed_as_categories_analyze_accepts(tmp_path, fmt):
    flags = [True, False, True, None] * 25
    pattern = write_table(pa.table({"flag": flags, "x": np.arange(100) * 0.5}), tmp_path / fmt, fmt)
    out = tmp_path / "features.json"
    assert main(["infer", "--input", pattern, "--output", str(out)]) == 0
    assert json.loads(out.read_text())["features"]["flag"] == "string_categorical"
    run_analysis(str(out), pattern, str(tmp_path / "bundle"))
    stats = kdp_beam.load_bundle(str(tmp_path / "bundle")).features["flag"]
    # Oracle: the Python list's own counts, as the text "true"/"false".
    assert dict(zip(stats["vocabulary"], stats["vocabulary_counts"])) == {"true": flags.count(True), "false": flags.count(False)}
    assert stats["null_count"] == flags.count(None)


def every_arrow_kind(rows=400, seed=1):
    """One column of each Arrow type a Parquet file may hold and infer may meet."""
    rng = np.random.default_rng(seed)
    stamps = pa.array(rng.integers(1.5e15, 1.8e15, rows), pa.timestamp("us"))
    return pa.table(
        {
            "int8": pa.array(rng.integers(-5, 5, rows), pa.int8()),
            "uint16": pa.array(rng.integers(0, 60000, rows), pa.uint16()),
            "int32_id": pa.array(rng.permutation(rows), pa.int32()),
            "float32": pa.array(rng.normal(0, 1, rows), pa.float32()),
            "float16": pa.array(rng.normal(0, 1, rows).astype(np.float16), pa.float16()),
            "flag": pa.array(rng.random(rows) < 0.3),
            "city": pa.array(rng.choice(["a", "b", "c"], rows)).dictionary_encode(),
            "large": pa.array(rng.choice(["x", "y"], rows), pa.large_string()),
            "stamp": stamps,
            "stamp_tz": stamps.cast(pa.timestamp("us", tz="Europe/Paris")),
            "day": pa.array(rng.integers(0, 20000, rows).astype("int32"), pa.date32()),
            "null_type": pa.nulls(rows),
            "all_null_float": pa.array([None] * rows, pa.float64()),
        }
    )


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_whatever_infer_proposes_analyze_accepts_and_the_model_encodes(tmp_path, fmt):
    """The rule: a declaration infer proposes is accepted by analyze on the same data
    (fail mode: not one record refused), and the model built from it encodes that data."""
    data = every_arrow_kind()
    if fmt == "parquet":
        pattern = write_shards(data, tmp_path / fmt, 2, fmt="parquet")
    else:  # the same values as text formats write them
        data = data.drop_columns(["null_type"])
        pattern = write_table(data, tmp_path / fmt, fmt) if fmt == "jsonl" else write_shards(data, tmp_path / fmt, 2)
    out = tmp_path / "features.json"
    assert main(["infer", "--input", pattern, "--output", str(out)]) == 0
    proposed = json.loads(out.read_text())["features"]
    assert {"int8", "float32", "flag", "city", "stamp", "day"} <= set(proposed)
    run_analysis(str(out), pattern, str(tmp_path / "bundle"))
    bundle = kdp_beam.load_bundle(str(tmp_path / "bundle"))
    assert bundle.row_count == data.num_rows
    fs = kdp_beam.FeatureSpace.from_artifacts(bundle)
    sample = bundle_input(data.slice(0, 5), proposed, bundle.spec)
    encoded = np.asarray(fs(sample))
    assert encoded.shape[0] == 5 and np.isfinite(encoded).all()


def bundle_input(data, proposed, spec):
    """Rows as a model is given them: numbers as numbers, everything else as text (dates
    and timestamps as ISO text in UTC, booleans as "true"/"false")."""
    columns = {}
    for name in proposed:
        column = data.column(name)
        kind = spec.features[name].column_kind
        if kind in ("float", "integer"):
            columns[name] = np.asarray(column.to_pylist(), dtype="float32" if kind == "float" else "int64")
        elif pa.types.is_boolean(column.type):
            columns[name] = np.array(["true" if v else "false" for v in column.to_pylist()])
        elif pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
            as_utc = column.cast(pa.timestamp("us", tz="UTC")) if pa.types.is_timestamp(column.type) else column
            columns[name] = np.array([v.isoformat()[:19] for v in as_utc.to_pylist()])
        else:
            columns[name] = np.array([str(v) for v in column.to_pylist()])
    return columns


def test_zero_padded_codes_are_proposed_as_text_and_analyze_keeps_them_apart(tmp_path, capsys):
    # As integers 007 is 7: a categorical proposal would merge the two codes.
    codes = ["007", "7", "0042", "42", " 01", "-05"] * 20
    data = tmp_path / "d.csv"
    data.write_text("code,n\n" + "".join(f"{c},{i % 3}\n" for i, c in enumerate(codes)))
    out = tmp_path / "f.json"
    assert main(["infer", "--input", str(data), "--output", str(out)]) == 0
    proposed = json.loads(out.read_text())
    assert proposed["features"] == {"code": "string_categorical", "n": "integer_categorical"}
    assert "leading zeros" in proposed["notes"]["code"] and "leading zeros" not in proposed["notes"]["n"]
    run_analysis(str(out), str(data), str(tmp_path / "bundle"))
    stats = kdp_beam.load_bundle(str(tmp_path / "bundle")).features["code"]
    # Oracle: Python's csv module's text of each field.
    import collections
    import csv as csv_module

    with open(data, newline="") as f:
        expected = collections.Counter(row["code"] for row in csv_module.DictReader(f))
    assert dict(zip(stats["vocabulary"], stats["vocabulary_counts"])) == dict(expected)


@pytest.mark.parametrize("rows, sample, says_more", [(50, 10, True), (50, 50, False), (50, 100, False)])
def test_infer_says_how_many_rows_it_sampled(tmp_path, capsys, rows, sample, says_more):
    data = tmp_path / "d.csv"
    data.write_text("x\n" + "".join(f"{i * 0.5}\n" for i in range(rows)))
    out = tmp_path / "f.json"
    assert main(["infer", "--input", str(data), "--output", str(out), "--sample-rows", str(sample), "--json"]) == 0
    captured = capsys.readouterr()
    line = f"the first {min(rows, sample)} rows of 1 file"
    assert f"inferred from {line}" in captured.err and line in json.loads(captured.out)["sampled"]
    assert ("the data has more rows" in captured.err) == says_more
    assert "sampled" not in json.loads(out.read_text())  # not part of the declaration


def test_infer_names_the_unsupported_type_of_the_only_column(tmp_path, capsys):
    data = tmp_path / "t.csv"
    data.write_text("t\n10:00\n11:30\n")
    assert main(["infer", "--input", str(data), "--output", str(tmp_path / "f.json")]) == 2
    assert re.search(r"error: no column .* can be proposed \(t: type time32\[s\] is not supported", capsys.readouterr().err)


# ---- multivalent: lists and separated strings ------------------------------------------


def list_table(rows=400, seed=5):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 5, rows)
    return {
        "tags": [list(rng.choice(["red", "green", "blue", "Zürich"], k)) for k in lengths],
        "readings": [[float(np.float32(v)) for v in rng.normal(20, 5, k)] for k in lengths],
        "items": [[int(v) for v in rng.integers(0, 8, k)] for k in lengths],
        "price": rng.lognormal(3, 1, rows).astype(np.float32).astype(float).tolist(),
    }


LIST_EXPECTED = {
    "tags": {"type": "string_categorical", "multivalent": True},
    "readings": {"type": "float_normalized", "multivalent": True},
    "items": {"type": "integer_categorical", "multivalent": True},
    "price": "float_normalized",
}


def write_lists(data, directory, fmt):
    import tensorflow as tf

    directory.mkdir()
    path = str(directory / f"d.{fmt}")
    rows = [dict(zip(data, values)) for values in zip(*data.values())]
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(pa.table(data), path)
    elif fmt == "jsonl":
        (directory / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        with tf.io.TFRecordWriter(path) as writer:
            for r in rows:
                feature = {
                    "tags": tf.train.Feature(bytes_list=tf.train.BytesList(value=[t.encode() for t in r["tags"]])),
                    "readings": tf.train.Feature(float_list=tf.train.FloatList(value=r["readings"])),
                    "items": tf.train.Feature(int64_list=tf.train.Int64List(value=r["items"])),
                    "price": tf.train.Feature(float_list=tf.train.FloatList(value=[r["price"]])),
                }
                writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return path


def read_rows(path, features):
    """The rows the readers deliver with the proposed declarations."""
    from apache_beam.io.filesystems import FileSystems

    from kdp_beam.io.jsonl import _ReadJsonRange
    from kdp_beam.io.parquet import _ListRowGroups, _ReadRowGroup
    from kdp_beam.io.tfrecord import _DecodeExamples, _ReadRecords
    from kdp_beam.spec import FeatureSpec

    spec = FeatureSpec(features)
    metadata = FileSystems.match([path])[0].metadata_list[0]
    if path.endswith(".jsonl"):
        elements = _ReadJsonRange(spec, 1 << 20).process((path, 0, None))
    elif path.endswith(".parquet"):
        elements = [e for unit in _ListRowGroups(spec).process(metadata) for e in _ReadRowGroup(spec, 1000).process(unit)]
    else:
        decode = _DecodeExamples(spec)
        decode.setup()
        elements = [e for batch in _ReadRecords(1000).process(metadata) for e in decode.process(batch)]
    return [row for batch in elements for row in batch.to_pylist()]


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "tfrecord"])
def test_list_columns_are_proposed_multivalent_with_their_reason_and_read_as_proposed(tmp_path, fmt):
    data = list_table()
    path = write_lists(data, tmp_path / fmt, fmt)
    out = tmp_path / "features.json"
    assert main(["infer", "--input", path, "--output", str(out)]) == 0
    proposed = json.loads(out.read_text())
    assert proposed["features"] == LIST_EXPECTED
    lengths = [len(t) for t in data["tags"]]
    per_row = f"a list per row ({np.mean(lengths):.1f} values per row, up to {max(lengths)}): multivalent; its values: "
    assert proposed["notes"]["tags"] == per_row + f"strings, 4 distinct in {sum(lengths):,} values: categories"
    assert proposed["notes"]["readings"].startswith(per_row + "floating point")
    assert proposed["notes"]["items"].startswith(per_row + "integers, 8 distinct")
    rows = read_rows(path, proposed["features"])
    assert [r["tags"] for r in rows] == data["tags"] and [r["items"] for r in rows] == data["items"]
    assert [r["readings"] for r in rows] == data["readings"]


def test_strings_mostly_split_by_a_separator_are_proposed_multivalent(tmp_path):
    rng = np.random.default_rng(1)
    rows = 300
    genres = ["|".join(rng.choice(["drama", "comedy", "sci-fi"], rng.integers(1, 4))) for _ in range(rows)]
    sizes = [";".join(str(v) for v in rng.integers(30, 50, 2)) for _ in range(rows)]
    sizes[::10] = ["42"] * len(sizes[::10])  # most, not all, hold the separator
    prose = [f"I liked it; it was {w}; really {i}" for i, w in enumerate(rng.choice(["good", "bad"], rows))]
    codes = ["007|012" if i % 2 else "003|010" for i in range(rows)]
    pa_csv.write_csv(pa.table({"genres": genres, "sizes": sizes, "prose": prose, "codes": codes}), tmp_path / "d.csv")
    out = tmp_path / "features.json"
    assert main(["infer", "--input", str(tmp_path / "d.csv"), "--output", str(out)]) == 0
    proposed = json.loads(out.read_text())
    assert proposed["features"]["genres"] == {"type": "string_categorical", "multivalent": True}
    assert proposed["features"]["sizes"] == {"type": "integer_categorical", "multivalent": True, "separator": ";"}
    assert proposed["features"]["codes"] == {"type": "string_categorical", "multivalent": True}  # 007 is not 7
    assert proposed["features"]["prose"]["type"] == "text"  # sentences holding ";" are text
    assert proposed["notes"]["sizes"].startswith("90% of the values hold ';': values split on ';' (1.9 values per row, up to 2)")
    share = np.mean(["|" in g for g in genres])  # one-genre rows hold none
    assert proposed["notes"]["genres"].startswith(f"{share:.0%} of the values hold '|': values split on '|'")
    # The CSV reader splits them as proposed.
    from kdp_beam.io.csv import _ReadCsvRange
    from kdp_beam.spec import FeatureSpec

    spec = FeatureSpec({n: proposed["features"][n] for n in ("genres", "sizes", "codes")})
    read = [r for b in _ReadCsvRange(spec, 1 << 20).process((str(tmp_path / "d.csv"), 0, None)) for r in b.to_pylist()]
    assert [r["genres"] for r in read] == [g.split("|") for g in genres]
    assert [r["sizes"] for r in read] == [[int(v) for v in s.split(";")] for s in sizes]
    assert [r["codes"] for r in read] == [c.split("|") for c in codes]


# --- --label: the label left out of the features, its label_type proposed ---------------------


def type_of_target(labels):
    """The oracle: scikit-learn's type_of_target rule in plain Python over the present
    labels (as text): all numbers and one not whole, regression; <= 2 distinct, binary."""
    present = [v for v in labels if v not in (None, "")]
    try:
        numbers = [float(v) for v in present]
    except ValueError:
        numbers = None
    if numbers is not None and any(n != int(n) for n in numbers if not np.isnan(n)):
        return "regression"
    return "binary" if len(set(present)) <= 2 else "multiclass"


def write_examples(columns, path):
    """A TFRecord file of tf.Example, one feature per column (None: absent)."""
    import tensorflow as tf

    with tf.io.TFRecordWriter(path) as writer:
        for row in zip(*columns.values()):
            feature = {}
            for name, value in zip(columns, row):
                if isinstance(value, str):
                    feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
                elif isinstance(value, float):
                    feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
                elif value is not None:
                    feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return path


def labelled(rows=400, seed=3):
    rng = np.random.default_rng(seed)
    return {
        "x": list(rng.normal(0, 1, rows)),
        "city": [str(v) for v in rng.choice(["a", "b", "c"], rows)],
        "clicked": [int(v) for v in rng.integers(0, 2, rows)],
        "species": [str(v) for v in rng.choice(["cat", "dog", "NA"], rows)],  # "NA" is a class
        "price": [float(v) for v in rng.choice([0.5, 1.0, 2.25, 7.0], rows)],
    }


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl", "tfrecord"])
@pytest.mark.parametrize("label,label_type", [("clicked", "binary"), ("species", "multiclass"), ("price", "regression")])
def test_the_label_is_left_out_of_the_features_and_its_type_proposed_with_its_reason(tmp_path, fmt, label, label_type, capsys):
    columns = labelled()
    assert type_of_target([str(v) for v in columns[label]]) == label_type  # the oracle agrees
    path = str(tmp_path / f"d.{fmt}")
    if fmt == "tfrecord":
        write_examples(columns, path)
    elif fmt == "jsonl":
        with open(path, "w") as f:
            f.writelines(json.dumps(dict(zip(columns, row))) + "\n" for row in zip(*columns.values()))
    else:
        write_shards(pa.table(columns), tmp_path, 1, fmt=fmt)
        path = str(tmp_path / f"part-00000.{fmt}")
    out = tmp_path / "features.json"
    assert main(["infer", "--input", path, "--output", str(out), "--label", label]) == 0
    proposed = json.loads(out.read_text())
    assert label not in proposed["features"] and set(proposed["features"]) == set(columns) - {label}
    assert proposed["label"] == label and proposed["label_type"] == label_type
    assert proposed["notes"][label] == {
        "binary": "the label: 2 distinct in 400 labels: binary",
        "multiclass": "the label: classes (3 distinct in 400 labels): multiclass",
        "regression": "the label: numbers, some not whole (4 distinct in 400 labels): regression",
    }[label_type]
    assert re.search(rf"{label}\s+label \({label_type}\)\s+the label:", capsys.readouterr().err)
    # Ready to use as written: the readers read the label beside the features.
    run_analysis(str(out), path, str(tmp_path / "bundle"))
    assert kdp_beam.load_bundle(str(tmp_path / "bundle")).row_count == 400


def test_label_types_follow_type_of_target_on_the_labels_as_read(tmp_path):
    cases = {
        "whole floats": ([1.0, 2.0, 3.0, 1.0], "multiclass"),
        "two whole floats": ([0.0, 1.0, 1.0, None], "binary"),
        "text numbers": (["1.5", "2", "2", "3"], "regression"),
        "codes": (["007", "012", "007", "012"], "binary"),
        "one class": (["yes", "yes", None, "yes"], "binary"),
        "booleans": ([True, False, True, None], "binary"),
    }
    for name, (values, want) in cases.items():
        path = tmp_path / f"{name}.parquet"
        pq.write_table(pa.table({"x": [0.5, 1.5, 2.5, 3.5], "y": values}), path)
        assert type_of_target([None if v is None else str(v) for v in values]) == want, name
        assert infer_features(str(path), label="y")["label_type"] == want, name
    whole = infer_features(str(tmp_path / "whole floats.parquet"), label="y")
    assert whole["notes"]["y"] == (
        'the label: whole numbers (3 distinct in 4 labels): multiclass; if they measure a quantity, declare "regression"'
    )


def test_a_label_with_no_value_in_the_sample_or_not_in_the_data(tmp_path, capsys):
    path = tmp_path / "d.csv"
    path.write_text("x,y\n1.5,\n2.5,\n")
    proposed = infer_features(str(path), label="y")
    assert proposed["label"] == "y" and "label_type" not in proposed
    assert proposed["notes"]["y"] == "the label: no value in the sample; label_type left out, to be inferred from the data"
    assert main(["infer", "--input", str(path), "--output", str(tmp_path / "f.json"), "--label", "z"]) == 2
    assert "the label 'z' is not a column of" in capsys.readouterr().err


def test_a_label_of_lists_is_refused_saying_what_to_write(tmp_path):
    pq.write_table(pa.table({"x": [1.0, 2.0], "y": [[1, 0], [0, 1]]}), tmp_path / "d.parquet")
    with pytest.raises(InputDataError, match="the label 'y' is list<element: int64>: a label holds one value per row"):
        infer_features(str(tmp_path / "d.parquet"), label="y")
