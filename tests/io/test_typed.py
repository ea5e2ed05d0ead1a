"""Typed inputs: one reading rule for every file (kdp_beam.columns), Parquet columns named
twice, timestamps, dates, booleans and the null type, files that cannot be read, and JSON
Lines nested deeper than Python's parser goes."""

import collections
import datetime
import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from apache_beam.io.filesystems import FileSystems

from kdp_beam.bundle.loader import load_bundle
from kdp_beam.errors import InputDataError
from kdp_beam.tools.infer import infer_features
from kdp_beam.io import jsonl
from kdp_beam.io.jsonl import _ReadJsonRange
from kdp_beam.io.memory import record_batches
from kdp_beam.io.parquet import _ListRowGroups, _ReadRowGroup
from kdp_beam.job import run_analysis
from kdp_beam.spec import FeatureSpec
from tests.io.helpers import split_outputs

SPEC = FeatureSpec({"s": "string_categorical", "n": "integer_categorical"})


def error_of(run):
    """The message of the InputDataError `run()` raises, without the step a runner names."""
    with pytest.raises(InputDataError) as error:
        run()
    return re.sub(r" \[while running [^\]]*\]$", "", str(error.value))


# --- one rule for every file --------------------------------------------------------------


@pytest.mark.parametrize(
    "bad, column, words",
    [
        ({"s": pa.array([1, 2]), "n": pa.array([1, 2])}, "s", "int64, which cannot be read as a string feature"),
        ({"s": pa.array(["a", "b"]), "n": pa.array([1.0, 2.0])}, "n", "double, which cannot be read as an integer feature"),
    ],
    ids=["int_as_string", "whole_floats_as_int64"],
)
def test_a_bad_file_gives_the_same_error_first_or_as_the_150th(tmp_path, bad, column, words):
    """The launcher checks the first 100 files, the workers every file, with one rule: the
    outcome does not depend on where the file comes. (The per-batch cast used to accept
    both of these when the file came after the 100th.)"""
    good = [str(tmp_path / f"good-{i:03d}.parquet") for i in range(150)]
    for path in good:
        pq.write_table(pa.table({"s": ["a", "b"], "n": [1, 2]}), path)
    bad_path = str(tmp_path / "bad.parquet")
    pq.write_table(pa.table(bad), bad_path)
    first = error_of(lambda: run_analysis(SPEC, [bad_path, *good], str(tmp_path / "o1")))
    last = error_of(lambda: run_analysis(SPEC, [*good, bad_path], str(tmp_path / "o2")))
    assert first == last
    assert first.startswith(f"{bad_path}: column {column!r} is {words}")


def test_the_in_memory_path_follows_the_same_rule():
    for data, words in [
        ({"s": np.array([1, 2]), "n": np.array([1, 2])}, "column 's' is int64, which cannot be read as a string feature"),
        ({"s": np.array(["a", "b"]), "n": np.array([1.0, 2.0])}, "column 'n' is double, which cannot be read as an integer feature"),
        ({"s": np.array(["a", "b"]), "n": np.array([True, False])}, "column 'n' is bool.*declare a string feature, e.g. a string categorical"),
    ]:
        with pytest.raises(InputDataError, match=words):
            list(record_batches(data, SPEC))
    batch = next(record_batches({"s": np.array([True, False]), "n": np.array([1, 2], np.int8)}, SPEC))
    assert batch.to_pydict() == {"s": ["true", "false"], "n": [1, 2]}


# --- Parquet: a column named twice, files that cannot be read ------------------------------


def metadata(path):
    return FileSystems.match([str(path)])[0].metadata_list[0]


def test_a_parquet_column_named_twice_fails_naming_the_file_and_column(tmp_path):
    path = tmp_path / "dup.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array([1.0]), pa.array([2.0]), pa.array(["a"])], names=["x", "x", "y"]), path)
    spec = FeatureSpec({"x": "float_normalized"})
    expected = f"{path}: column 'x' appears 2 times in the Parquet schema"
    assert error_of(lambda: run_analysis(spec, str(path), str(tmp_path / "o"))).startswith(expected)
    assert error_of(lambda: list(_ListRowGroups(spec).process(metadata(path)))).startswith(expected)  # workers
    # A column named twice that is not declared is not read: no ambiguity.
    pq.write_table(pa.Table.from_arrays([pa.array([1.0]), pa.array([2]), pa.array([3])], names=["x", "y", "y"]), path)
    run_analysis(spec, str(path), str(tmp_path / "o2"))
    assert load_bundle(str(tmp_path / "o2")).features["x"]["mean"] == 1.0


class FailingStream:
    """A file stream whose reads starting before byte `before` fail as a network would."""

    def __init__(self, stream, before):
        self._stream, self._before = stream, before

    def read(self, size=-1):
        if self._stream.tell() < self._before:
            raise ConnectionResetError(104, "Connection reset by peer")
        return self._stream.read(size)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._stream.close()

    def __getattr__(self, name):
        return getattr(self._stream, name)


def test_a_parquet_file_that_cannot_be_read_is_not_called_damaged(tmp_path, monkeypatch):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"x": np.arange(20_000, dtype=float)}), path, compression="none")
    spec = FeatureSpec({"x": "float_normalized"})
    real_open = FileSystems.open
    for before, step in [(1 << 40, "footer"), (8, "row group")]:  # every read fails / pages only
        monkeypatch.setattr(FileSystems, "open", lambda p, *a, **k: FailingStream(real_open(p, *a, **k), before))
        if step == "footer":
            message = error_of(lambda: list(_ListRowGroups(spec).process(metadata(path))))
        else:
            message = error_of(lambda: list(_ReadRowGroup(spec, 1000).process((str(path), 0))))
            assert message.startswith(f"{path} (row group 0): ")
        assert "could not be read (ConnectionResetError: [Errno 104] Connection reset by peer)" in message
        assert "run again" in message and "Re-write" not in message
    monkeypatch.setattr(FileSystems, "open", lambda *a, **k: (_ for _ in ()).throw(PermissionError(13, "Permission denied")))
    message = error_of(lambda: list(_ListRowGroups(spec).process(metadata(path))))
    assert "could not be read (PermissionError: [Errno 13] Permission denied)" in message


# --- timestamps, dates, the null type, booleans -------------------------------------------


def utc_text(seconds, tz):
    """The independent reading of a timestamp: Python's isoformat() of the moment (naive:
    the time as stored; with a zone, in UTC whatever the zone), to the second."""
    moment = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return (moment if tz else moment.replace(tzinfo=None)).isoformat()


TIMESTAMPS = [("s", None), ("ms", None), ("us", "UTC"), ("ns", "Europe/Paris"), ("ms", "+05:30")]


def test_timestamps_and_dates_read_as_dates_equal_their_iso_text(tmp_path):
    """Typed timestamps (any unit, with or without a time zone: then in UTC) and dates are
    read as the ISO text they stand for: the statistics equal those of Python's
    isoformat() strings of the same moments read from CSV, which is what the Keras model
    takes."""
    rng = np.random.default_rng(0)
    seconds = rng.integers(-3 * 10**9, 3 * 10**9, 300)  # 1874 to 2065
    fraction = rng.integers(0, 1000, 300)  # ms, dropped by the date type
    columns, text, features = {}, {}, {}
    for unit, tz in TIMESTAMPS:
        name = f"t_{unit}_{tz}"
        scale = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[unit]
        values = seconds * scale + (fraction * scale // 1000 if unit != "s" else 0)
        columns[name] = pa.array(values, pa.timestamp(unit, tz=tz))
        text[name] = [utc_text(int(s), tz) for s in seconds]
    columns["day32"] = pa.array(seconds // 86400, pa.int32()).cast(pa.date32())
    columns["day64"] = pa.array(seconds // 86400 * 86_400_000, pa.date64())
    for name in ("day32", "day64"):
        text[name] = [datetime.date(1970, 1, 1) + datetime.timedelta(days=int(d)) for d in seconds // 86400]
        text[name] = [d.isoformat() for d in text[name]]
    columns["nothing"] = pa.nulls(300)
    features = {name: {"type": "date", "components": ["year", "month", "day", "hour"]} for name in text}
    features["nothing"] = "date"
    pq.write_table(pa.table(columns), tmp_path / "t.parquet", row_group_size=128)
    pa_csv.write_csv(pa.table({**text, "nothing": pa.array([None] * 300, pa.string())}), tmp_path / "t.csv")
    spec = FeatureSpec(features)
    run_analysis(spec, str(tmp_path / "t.parquet"), str(tmp_path / "p"))
    run_analysis(spec, str(tmp_path / "t.csv"), str(tmp_path / "c"))
    typed, written = load_bundle(str(tmp_path / "p")).features, load_bundle(str(tmp_path / "c")).features
    assert typed.keys() == written.keys()
    for name, stats in typed.items():  # equal, to the float last bits (batches differ)
        assert {k: v for k, v in stats.items() if not isinstance(v, float)} == {
            k: v for k, v in written[name].items() if not isinstance(v, float)
        }
        assert {k: v for k, v in stats.items() if isinstance(v, float)} == pytest.approx(
            {k: v for k, v in written[name].items() if isinstance(v, float)}, rel=1e-12
        )
    for unit, tz in TIMESTAMPS:
        moments = sorted(utc_text(int(s), None) for s in seconds)
        stats = typed[f"t_{unit}_{tz}"]
        assert (stats["min_date"], stats["max_date"]) == (moments[0], moments[-1])
        assert stats["unparseable_count"] == stats["null_count"] == 0
    assert (typed["nothing"]["count"], typed["nothing"]["null_count"]) == (300, 300)
    # What infer proposes for these columns, analyze accepts.
    inferred = infer_features(str(tmp_path / "t.parquet"))["features"]
    assert set(inferred) == set(text) and set(inferred.values()) == {"date"}
    run_analysis(FeatureSpec(inferred), str(tmp_path / "t.parquet"), str(tmp_path / "i"))


def test_typed_dates_need_a_date_feature_without_a_format(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"t": pa.array([0], pa.timestamp("ms")), "d": pa.array([0], pa.date32())}), path)
    for features in ({"t": {"type": "date", "format": "%d/%m/%Y"}}, {"d": "string_categorical"}):
        message = error_of(lambda: run_analysis(FeatureSpec(features), str(path), str(tmp_path / "o")))
        assert "read by a date feature without a format, as ISO 8601 text" in message


@pytest.mark.parametrize("declared", ["float_normalized", "integer_categorical", "string_categorical", "text"])
def test_a_column_of_arrow_type_null_is_all_missing_for_any_type(tmp_path, declared):
    path = tmp_path / "z.parquet"
    pq.write_table(pa.table({"z": pa.nulls(5), "x": [1.0] * 5}), path)
    run_analysis(FeatureSpec({"z": declared, "x": "float"}), str(path), str(tmp_path / "o"))
    stats = load_bundle(str(tmp_path / "o")).features["z"]
    assert (stats["count"], stats["null_count"]) == (5, 5)


def test_booleans_are_true_false_tokens_in_string_columns_and_refused_as_integers(tmp_path):
    values = [True, False, None, True] * 50
    pq.write_table(pa.table({"b": pa.array(values), "i": [1] * len(values)}), tmp_path / "b.parquet")
    (tmp_path / "b.jsonl").write_text("".join(json.dumps({"b": v, "i": 1}) + "\n" for v in values))
    (tmp_path / "b.csv").write_text("b,i\n" + "".join(("" if v is None else str(v).lower()) + ",1\n" for v in values))
    expected = collections.Counter("true" if v else "false" for v in values if v is not None)
    bundles = []
    for fmt in ("parquet", "jsonl", "csv"):
        run_analysis(FeatureSpec({"b": "string_categorical"}), str(tmp_path / f"b.{fmt}"), str(tmp_path / fmt))
        stats = load_bundle(str(tmp_path / fmt)).features["b"]
        assert dict(zip(stats["vocabulary"], stats["vocabulary_counts"])) == expected
        bundles.append(stats)
        if fmt != "csv":  # CSV has no booleans: "true" is text, and not an integer
            message = error_of(lambda: run_analysis(FeatureSpec({"b": "integer_categorical"}), str(tmp_path / f"b.{fmt}"), str(tmp_path / "x")))
            assert "declare a string feature, e.g. a string categorical" in message and f"b.{fmt}" in message
    assert bundles[0] == bundles[1] == bundles[2]


def test_json_booleans_read_alike_by_pyarrow_and_line_by_line(tmp_path):
    """pyarrow cannot read true / false as a string: the reader asks it for booleans
    where its error names a string column of them, and still reads blocks of strings, of
    both, and bad lines, as the line-by-line reading does."""
    lines = [{"b": True, "s": "x"}] * 30 + [{"b": "yes", "s": False}] * 30 + [{"b": False, "s": None}] * 30
    lines += [{"b": True, "s": "x"}, {"b": "no", "s": True}] * 15
    path = tmp_path / "b.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"b": 1}\n' + '{"b": true}\n' * 10)
    spec = FeatureSpec({"b": "string_categorical", "s": "string_categorical"})
    expected = [{k: (str(v).lower() if isinstance(v, bool) else v) for k, v in line.items()} for line in lines]
    expected += [{"b": "true", "s": None}] * 10
    for block_size in (64, 512, 1 << 20):  # blocks of a few lines each, or the whole file
        batches, bad = split_outputs(_ReadJsonRange(spec, block_size, "skip").process((str(path), 0, None)))
        assert [row for batch in batches for row in batch.to_pylist()] == expected
        assert [(e.line, e.reason) for e in bad] == [(len(lines) + 1, "wrong_type")]


# --- JSON Lines: nesting deeper than Python's parser goes; line numbers past a range -------


DEEP = "[" * 100_000 + "]" * 100_000


def test_json_lines_nested_deeper_than_python_goes(tmp_path):
    path = tmp_path / "deep.jsonl"
    lines = ['{"x": 1.0}', '{"x": 2.0, "y": %s}' % DEEP, '{"x": %s}' % DEEP, DEEP, '{"x": 3.0}']
    path.write_text("\n".join(lines) + "\n")
    spec = FeatureSpec({"x": "float_normalized"})
    batches, bad_records = split_outputs(_ReadJsonRange(spec, 1 << 20, "skip").process((str(path), 0, None)))
    rows = [row["x"] for batch in batches for row in batch.to_pylist()]
    bad = [(e.line, e.reason, e.detail) for e in bad_records]
    assert rows == [1.0, 2.0, 3.0]  # an undeclared key is ignored, however deep
    assert [(line, reason) for line, reason, _ in bad] == [(3, "not_json"), (4, "not_json")]
    assert "nested too deeply for Python's JSON parser" in bad[0][2] and bad[1][2] == "not a JSON object"
    message = error_of(lambda: run_analysis(spec, str(path), str(tmp_path / "o")))
    assert message.startswith(f"{path}: line 3: nested too deeply")
    # pyarrow's reading of the same lines when they are all objects: the same rows.
    path.write_text("\n".join(lines[:2] + lines[4:]) + "\n")
    elements = list(_ReadJsonRange(spec, 1 << 20, "fail").process((str(path), 0, None)))
    assert [row["x"] for e in elements for row in e.to_pylist()] == [1.0, 2.0, 3.0]


def test_json_lines_errors_past_the_first_byte_range_name_the_line(tmp_path, monkeypatch):
    path = tmp_path / "f.jsonl"
    lines = [json.dumps({"x": i, "pad": "p" * (i % 7)}) for i in range(300)]
    lines[250] = '{"x": "oops"}'
    lines[100:100] = ["", "  "]  # blank lines count as lines, not rows
    path.write_text("\n".join(lines) + "\n")
    number = next(i for i, line in enumerate(path.read_text().split("\n"), 1) if "oops" in line)
    spec = FeatureSpec({"x": "float_normalized"})
    message = error_of(lambda: run_analysis(spec, str(path), str(tmp_path / "o"), split_size=1000))
    assert message.startswith(f"{path}: line {number}, key 'x': 'oops' is not a number")
    offset = path.read_bytes().index(b'{"x": "oops"}')
    monkeypatch.setattr(jsonl, "LINE_COUNT_LIMIT", offset - 1)  # too far to count: the byte
    reader = _ReadJsonRange(spec, 1 << 20, "fail")
    assert error_of(lambda: list(reader.process((str(path), offset - 10, offset + 10)))).startswith(f"{path}: byte {offset},")
