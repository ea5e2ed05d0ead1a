"""--on-bad-record=skip: bad records are left out, counted per reason and kept; the
statistics equal those of the good records alone."""

import codecs
import collections
import csv
import glob
import json
import math
import os
import re
import subprocess
import sys

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf
from apache_beam.testing.util import assert_that
from apache_beam.typehints.decorators import TypeCheckError

from kdp_beam import AnalyzeFeatures, ReadCsv, WriteArtifacts
from kdp_beam.analyzers import analyze_batches
from kdp_beam.bad_records import BadRecord
from kdp_beam.bundle.loader import load_bundle
from kdp_beam.errors import InputDataError
from kdp_beam.job import pipeline_options, run_analysis
from kdp_beam.tools.merge import merge_bundles
from kdp_beam.spec import FeatureSpec

SPEC = FeatureSpec(
    {
        "x": "float_normalized",
        "n": {"type": "integer_categorical"},
        "name": {"type": "string_categorical"},
        "empty": "float",
    }
)
GOOD = [("1.5", "3", "a"), ("nan", "4", "b"), ("inf", "3", "é"), ("", "", "")]
BAD = [
    ("2.5,7,a,,extra\n", "wrong_field_count"),
    ("oops,3,a,\n", "unparseable_number"),
    ("1_000,3,a,\n", "unparseable_number"),  # Python reads it; pyarrow and kdp_beam do not
    ("2.5,3.5,a,\n", "unparseable_number"),  # not an integer
    (b"2.5,3,b\xff\xfe,\n", "bad_utf8"),
]


def write_dirty_csv(path, repeat=40):
    """Good rows with bad ones spliced in; returns the good rows, in order."""
    good_rows = []
    with open(path, "wb") as f:
        f.write(b"x,n,name,empty\n")
        for i in range(repeat):
            for x, n, name in GOOD:
                f.write(f"{x},{n},{name if name else ''},\n".encode())
                good_rows.append((x, n, name))
            bad, _ = BAD[i % len(BAD)]
            f.write(bad if isinstance(bad, bytes) else bad.encode())
        f.write(("9," * 2 + "long" + "z" * 100_000 + ",\n").encode())
        good_rows.append(("9", "9", "long" + "z" * 100_000))
    return good_rows


def clean_statistics(good_rows):
    """The statistics of the good rows, from a table built without any CSV reader."""
    number = lambda v, kind: None if v == "" else kind(v)  # noqa: E731
    table = pa.table(
        {
            "x": pa.array([number(x, float) for x, _, _ in good_rows], pa.float64()),
            "n": pa.array([number(n, int) for _, n, _ in good_rows], pa.int64()),
            "name": pa.array([name for _, _, name in good_rows], pa.string()),
            "empty": pa.array([None] * len(good_rows), pa.float64()),
        }
    )
    return analyze_batches(SPEC, table.to_batches(max_chunksize=50))["features"]


def dead_letters(bundle):
    records = []
    for name in bundle.bad_records["files"]:
        with open(os.path.join(bundle.path, name), encoding="utf-8") as f:
            records += [json.loads(line) for line in f]
    return records


def assert_statistics_equal(found, expected):
    for name, stats in expected.items():
        for key, value in stats.items():
            if isinstance(value, float) and not math.isnan(value):
                assert found[name][key] == pytest.approx(value, rel=1e-12), (name, key)
            else:
                assert found[name][key] == value, (name, key)


@pytest.mark.parametrize("split_size", [0, 700], ids=["whole", "byte_ranges"])
def test_csv_skip_keeps_counts_and_writes_every_bad_record(tmp_path, split_size):
    path = tmp_path / "dirty.csv"
    good_rows = write_dirty_csv(path)
    summary = run_analysis(
        SPEC, str(path), str(tmp_path / "b"), on_bad_record="skip", split_size=split_size
    )
    bundle = load_bundle(str(tmp_path / "b"))
    assert summary["rows_read"] == bundle.row_count == len(good_rows)
    assert_statistics_equal(bundle.features, clean_statistics(good_rows))
    expected_reasons = {}
    for i in range(40):
        reason = BAD[i % len(BAD)][1]
        expected_reasons[reason] = expected_reasons.get(reason, 0) + 1
    assert bundle.bad_records["by_reason"] == expected_reasons
    assert bundle.bad_records["count"] == bundle.manifest["bad_record_count"] == 40
    letters = dead_letters(bundle)
    assert sorted(r["reason"] for r in letters) == sorted(BAD[i % len(BAD)][1] for i in range(40))
    data = path.read_bytes()
    for letter in letters:
        assert letter["file"] == str(path)
        # The byte offset points at the record in the file; nothing of it is lost.
        line_end = data.index(b"\n", letter["byte_offset"])
        raw = data[letter["byte_offset"] : line_end]
        if letter["reason"] == "bad_utf8":
            assert raw.decode("utf-8", errors="backslashreplace") == ",".join(letter["record"])
        else:
            assert raw.decode() == ",".join(letter["record"])
        if split_size == 0:  # read whole: rows and lines count from the file's start
            assert data.count(b"\n", 0, letter["byte_offset"]) + 1 == letter["line"]
            assert letter["row"] == letter["line"] - 1
    unparseable = [r for r in letters if r["reason"] == "unparseable_number"]
    assert {r["column"] for r in unparseable} == {"x", "n"}


def test_fail_is_the_default_and_names_the_first_bad_record(tmp_path):
    path = tmp_path / "dirty.csv"
    write_dirty_csv(path)
    with pytest.raises(InputDataError, match=r"dirty\.csv: row 5 \(line 6\): expected 4 fields"):
        run_analysis(SPEC, str(path), str(tmp_path / "b"))
    assert not os.path.exists(tmp_path / "b" / "manifest.json")


def test_an_unterminated_quote_fails_even_when_skipping(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('x,n,name,empty\n1,2,a,\n2,3,"b,\n3,4,c,\n4,5,oops,x\n')
    with pytest.raises(InputDataError, match="unterminated quote"):
        run_analysis(SPEC, str(path), str(tmp_path / "b"), on_bad_record="skip")


def test_jsonl_skip(tmp_path):
    path = tmp_path / "d.jsonl"
    lines = ['{"x": 1.5, "n": 3, "name": "a"}', "{not json", '[1, 2]', '{"x": "two", "n": 1}',
             '{"x": 2.5, "n": 4}', "", '{"x": 3.5, "n": 3.5}', '{"x": 4.5, "name": "b", "other": 1}']
    path.write_text("\n".join(lines) + "\n")
    run_analysis(SPEC, str(path), str(tmp_path / "b"), on_bad_record="skip")
    bundle = load_bundle(str(tmp_path / "b"))
    assert bundle.row_count == 3
    assert bundle.bad_records["by_reason"] == {"not_json": 2, "wrong_type": 2}
    assert bundle.features["x"]["mean"] == pytest.approx((1.5 + 2.5 + 4.5) / 3)
    assert sorted(r["line"] for r in dead_letters(bundle)) == [2, 3, 4, 7]
    with pytest.raises(InputDataError, match=r"d\.jsonl: line 2: not valid JSON"):
        run_analysis(SPEC, str(path), str(tmp_path / "c"))


def test_jsonl_lines_pyarrow_alone_would_misread(tmp_path):
    """Each of these once crashed the reader (a leading null crashes pyarrow 25), or was
    read differently by pyarrow and by the line-by-line reading."""
    path = tmp_path / "d.jsonl"
    lines = [
        (b"null", "not_json"),  # pyarrow: a segfault at the start of a block, later a row of nulls
        (b'{"x": 1.5}{"x": 2.5}', "not_json"),  # pyarrow: two rows
        (b'{"x":\n 3.5}', "not_json"),  # pyarrow: one row over two lines (two bad lines here)
        (b'{"name": "\xff"}', "bad_utf8"),  # pyarrow: invalid UTF-8 in a string column
        (b'{"name": "\\ud800"}', "bad_utf8"),  # a lone surrogate
        (b'{"x": 1, "x": 2}', "not_json"),  # which x?
        (b'{"n": 99999999999999999999}', "wrong_type"),  # not an int64
        (b'{"x": 99999999999999999999, "n": 3}', None),  # a float, not an int64 overflow
        (b'{"x": Infinity, "name": "b"}', None),  # inf, counted as non-finite
    ]
    path.write_bytes(codecs.BOM_UTF8 + b"\n".join(line for line, _ in lines) + b"\n")  # a BOM is not data
    run_analysis(SPEC, str(path), str(tmp_path / "b"), on_bad_record="skip")
    bundle = load_bundle(str(tmp_path / "b"))
    assert bundle.row_count == 2
    assert bundle.bad_records["by_reason"] == {"not_json": 5, "bad_utf8": 2, "wrong_type": 1}
    x = bundle.features["x"]
    assert (x["value_count"], x["inf_count"], x["mean"], x["max"]) == (1, 1, 1e20, 1e20)
    with pytest.raises(InputDataError, match=r"d\.jsonl: line 1: not a JSON object"):
        run_analysis(SPEC, str(path), str(tmp_path / "c"))


def test_tfrecord_skip(tmp_path):
    path = tmp_path / "d.tfrecord"

    def example(**features):
        return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()

    floats = lambda *v: tf.train.Feature(float_list=tf.train.FloatList(value=v))  # noqa: E731
    ints = lambda *v: tf.train.Feature(int64_list=tf.train.Int64List(value=v))  # noqa: E731
    text = lambda *v: tf.train.Feature(bytes_list=tf.train.BytesList(value=v))  # noqa: E731
    records = [
        example(x=floats(1.0), n=ints(3), name=text("é".encode())),
        example(x=floats(1.0, 2.0), n=ints(3)),  # a list, not a scalar
        example(x=ints(7), n=ints(3)),  # an int64_list where floats are declared
        example(x=floats(5.0), name=text(b"\xff\xfe")),  # not text
        example(x=floats(3.0)),
        b"\x0a\x07garbage",  # not a tf.Example proto at all
    ]
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)
    run_analysis(SPEC, str(path), str(tmp_path / "b"), on_bad_record="skip")
    bundle = load_bundle(str(tmp_path / "b"))
    assert bundle.row_count == 2 and bundle.features["x"]["mean"] == 2.0
    assert bundle.bad_records["by_reason"] == {
        "multiple_values": 1, "wrong_type": 1, "bad_utf8": 1, "not_a_tf_example": 1,
    }
    assert bundle.features["name"]["vocabulary"] == ["é"]
    # Oracle for the places: TFRecord framing is a length (8 bytes), its CRC (4), the
    # record and its CRC (4).
    offsets = np.cumsum([0] + [16 + len(r) for r in records]).tolist()
    kept = {(bytes.fromhex(r["record"]), r["row"], r["byte_offset"]) for r in dead_letters(bundle)}
    assert kept == {(records[i], i + 1, offsets[i]) for i in (1, 2, 3, 5)}
    assert {r["row"]: r["column"] for r in dead_letters(bundle)} == {2: "x", 3: "x", 4: "name", 6: None}
    for record, error in [
        (records[1], r"e\.tfrecord: record 2: a record has 2 values for feature 'x'; .* aggregate it"),
        (records[2], r"e\.tfrecord: record 2 does not decode .*expected float_list, found int64_list for feature \"x\""),
        (records[3], r"e\.tfrecord: record 2: a record's bytes for feature 'name' are not UTF-8; Declare"),
        (records[5], r"e\.tfrecord: record 2 is not a tf\.Example .*Write tf\.Example records"),
    ]:
        with tf.io.TFRecordWriter(str(tmp_path / "e.tfrecord")) as writer:
            writer.write(records[0])  # a good record first: the number is the bad one's
            writer.write(record)
        with pytest.raises(InputDataError, match=error):
            run_analysis(SPEC, str(tmp_path / "e.tfrecord"), str(tmp_path / "c"))


def test_cli_skip_reports_what_it_left_out(tmp_path):
    path = tmp_path / "dirty.csv"
    write_dirty_csv(path, repeat=5)
    features = tmp_path / "features.json"
    features.write_text(json.dumps(SPEC.to_json()))
    done = subprocess.run(
        [sys.executable, "-m", "kdp_beam", "analyze", "--features", str(features), "--input",
         str(path), "--output", str(tmp_path / "b"), "--on-bad-record", "skip"],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "5 bad records left out" in done.stderr
    assert glob.glob(str(tmp_path / "b" / "bad_records" / "*.jsonl"))


# --- the readers' two outputs ---------------------------------------------------------------

OUTPUT_SPEC = FeatureSpec({"x": "float_normalized", "n": "integer_categorical", "name": "string_categorical"})
NUMBER = re.compile(r"-?\d+(\.\d+)?")


def write_mixed_csv(path, seed):
    """Good and bad records in a random order, written by Python's csv module (names with
    commas and quotes in them; no newline: the file is read in byte ranges too)."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(300):
        x, n, name = f"{rng.normal(0, 10):.3f}", str(rng.integers(-5, 50)), ["a", "b,c", 'q"d', "é", ""][i % 5]
        kind = rng.integers(0, 10)
        if kind == 0:
            records.append([x, n, name, "extra"])  # a wrong field count
        elif kind == 1:
            records.append(["oops", n, name])  # not a number
        elif kind == 2:
            records.append([x, "3.5", name])  # not an integer
        else:
            records.append([rng.choice([x, ""]), rng.choice([n, ""]), name])
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows([["x", "n", "name"]] + records)


def python_reading(path):
    """The oracle, Python's csv module: (the good rows as typed tuples, the bad records as
    (line, fields, reason))."""
    good, bad = [], []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)
        while True:
            line = reader.line_num + 1  # where the next record starts
            record = next(reader, None)
            if record is None:
                return good, bad
            if len(record) != 3:
                bad.append((line, tuple(record), "wrong_field_count"))
            elif not (record[0] == "" or NUMBER.fullmatch(record[0])) or not re.fullmatch(r"-?\d*", record[1]):
                bad.append((line, tuple(record), "unparseable_number"))
            else:
                x, n, name = record
                good.append((float(x) if x else None, int(n) if n else None, name))


def rows_of(batches):
    return collections.Counter(tuple(row.values()) for batch in batches for row in batch.to_pylist())


@pytest.mark.parametrize("split_size", [0, 1000], ids=["whole", "byte_ranges"])
def test_readers_give_batches_and_bad_records_on_two_outputs(tmp_path, split_size):
    """ReadCsv's main output holds only RecordBatches (the good rows), its tagged output
    only BadRecords (the bad ones), both typed; a plain ``ReadCsv | AnalyzeFeatures`` chain
    counts the bad ones per reason, in the statistics and in the mergeable state, which
    kdp-beam merge adds up; run_analysis writes them as dead letters."""
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    write_mixed_csv(first, seed=1)
    write_mixed_csv(second, seed=2)
    good, bad = python_reading(first)
    assert len(good) > 200 and {reason for *_, reason in bad} == {"wrong_field_count", "unparseable_number"}
    by_reason = dict(collections.Counter(reason for *_, reason in bad))

    def only_batches(elements):
        assert all(isinstance(e, pa.RecordBatch) for e in elements)
        assert rows_of(elements) == collections.Counter(good)

    def only_bad_records(elements):
        assert all(isinstance(e, BadRecord) for e in elements)
        found = [(e.line, tuple(e.record), e.reason) for e in elements]
        if split_size:  # ranges after the first know no line numbers
            assert sorted(f[1:] for f in found) == sorted(b[1:] for b in bad)
        else:
            assert sorted(found) == sorted(bad)

    chained = tmp_path / "chained"
    with beam.Pipeline(options=pipeline_options([])) as p:
        read = p | ReadCsv(str(first), OUTPUT_SPEC, block_size=512, split_size=split_size, on_bad_record="skip")
        assert set(read) == {"batches", "bad_records"}
        assert (read["batches"].element_type, read["bad_records"].element_type) == (pa.RecordBatch, BadRecord)
        assert_that(read["batches"], only_batches, label="OnlyBatches")
        assert_that(read["bad_records"], only_bad_records, label="OnlyBadRecords")
        _ = read | AnalyzeFeatures(OUTPUT_SPEC, state_dir=str(chained)) | WriteArtifacts(str(chained))
        # Batches of one's own (here the reader's main output alone): nothing left out.
        _ = read["batches"] | "Alone" >> AnalyzeFeatures(OUTPUT_SPEC) | "WriteAlone" >> WriteArtifacts(str(tmp_path / "alone"))
        with pytest.raises(TypeCheckError, match="input batches: expected .*RecordBatch.*, got .*BadRecord"):
            _ = read["bad_records"] | "Wrong" >> AnalyzeFeatures(OUTPUT_SPEC)

    bundle = load_bundle(str(chained), with_state=True)
    assert bundle.row_count == len(good)
    assert bundle.bad_records["by_reason"] == by_reason and bundle.bad_records["count"] == len(bad)
    assert bundle.state["analyzers"]["bad_records"] == by_reason
    assert not bundle.bad_records["files"]  # the user's own pipeline writes no dead letters
    alone = load_bundle(str(tmp_path / "alone"))
    assert alone.bad_records == {"count": 0, "by_reason": {}, "files": []}
    assert alone.features == bundle.features

    # run_analysis: the same counts, and every bad record as a dead letter.
    run_analysis(OUTPUT_SPEC, str(first), str(tmp_path / "job"), split_size=split_size, on_bad_record="skip")
    job = load_bundle(str(tmp_path / "job"))
    assert job.bad_records["by_reason"] == by_reason and job.features == bundle.features
    letters = [(r["line"], tuple(r["record"]), r["reason"]) for r in dead_letters(job)]
    assert sorted(letter[1:] for letter in letters) == sorted(b[1:] for b in bad)
    if not split_size:
        assert sorted(letters) == sorted(bad)

    # Merged with the bundle of other data, the counts add up.
    run_analysis(OUTPUT_SPEC, str(second), str(tmp_path / "other"), split_size=split_size, on_bad_record="skip")
    merge_bundles([str(chained), str(tmp_path / "other")], str(tmp_path / "merged"))
    other = collections.Counter(reason for *_, reason in python_reading(second)[1])
    merged = load_bundle(str(tmp_path / "merged"), with_state=True)
    assert merged.bad_records["by_reason"] == dict(sorted((collections.Counter(by_reason) + other).items()))
    assert merged.state["analyzers"]["bad_records"] == merged.bad_records["by_reason"]
