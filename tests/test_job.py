"""The whole analysis job on real files through real Beam pipelines."""

import collections
import json
import math
import os
import subprocess
import sys

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

import kdp_beam
from kdp_beam.bundle.loader import load_bundle
from kdp_beam.errors import InputDataError
from kdp_beam.job import run_analysis
from kdp_beam.spec import FeatureSpec
from tests.conftest import MIXED_FEATURES, exact_moments, write_shards

LOCAL = ["--runner=FnApiRunner"]


def assert_same_statistics(a, b, table):
    """Counts and vocabularies identical, floating statistics within 1e-12 relative, and
    quantile boundaries within both sketches' rank error of each other."""
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].keys() == b[name].keys()
        for key, value in a[name].items():
            other = b[name][key]
            if key in ("bin_boundaries", "profile_quantiles"):
                values = table[name].to_numpy(zero_copy_only=False)
                ordered = np.sort(values[np.isfinite(values)])
                # A value's ranks are an interval (ties: a value many rows hold): how far apart
                # the two sketches' intervals are.
                low = lambda bs: np.searchsorted(ordered, bs, side="left") / ordered.size  # noqa: E731
                high = lambda bs: np.searchsorted(ordered, bs, side="right") / ordered.size  # noqa: E731
                epsilon = a[name]["quantile_epsilon" if key == "bin_boundaries" else "profile_epsilon"]
                tolerance = 2 * epsilon + 1 / ordered.size
                apart = np.maximum(0, np.maximum(low(other) - high(value), low(value) - high(other)))
                assert np.all(apart <= tolerance), (name, key)
            elif isinstance(value, float):
                assert math.isclose(value, other, rel_tol=1e-12, abs_tol=1e-300), (name, key)
            else:
                assert value == other, (name, key)


def keras_vocabulary(tokens, max_size, excluded):
    counts = collections.Counter(t for t in tokens if t != excluded)
    key = (lambda t: t.encode()) if isinstance(tokens[0], str) else (lambda t: t)
    ordered = sorted(counts, key=lambda t: (counts[t], key(t)), reverse=True)
    return ordered[:max_size] if max_size else ordered


def test_csv_statistics_match_an_independent_computation(tmp_path, mixed):
    pattern = write_shards(mixed, tmp_path / "csv", shards=3)
    summary = run_analysis(FeatureSpec(MIXED_FEATURES), pattern, str(tmp_path / "bundle"))
    bundle = load_bundle(str(tmp_path / "bundle"))
    stats = bundle.features
    assert summary["rows_read"] == bundle.row_count == mixed.num_rows
    for name in ("big", "score"):
        values = mixed[name].to_pylist()
        mean, variance = exact_moments(values)
        assert stats[name]["mean"] == pytest.approx(mean, rel=1e-12)
        assert stats[name]["variance"] == pytest.approx(variance, rel=1e-12)
        assert stats[name]["null_count"] == mixed[name].null_count
    ts = np.sort(mixed["ts"].to_numpy())
    for i, boundary in enumerate(stats["ts"]["bin_boundaries"], start=1):
        rank = np.searchsorted(ts, boundary) / ts.size
        assert abs(rank - i / 5) <= stats["ts"]["quantile_epsilon"] + np.mean(ts == boundary)
    city = mixed["city"].to_pylist()
    assert stats["city"]["vocabulary"] == keras_vocabulary(city, 5, "[UNK]")
    assert stats["store"]["vocabulary"] == keras_vocabulary(mixed["store"].to_pylist(), None, -1)
    assert stats["tag"]["count"] == mixed.num_rows and "vocabulary" not in stats["tag"]
    assert bundle.spec == FeatureSpec(MIXED_FEATURES)


def test_csv_and_parquet_and_any_sharding_give_the_same_statistics(tmp_path, mixed):
    spec = FeatureSpec(MIXED_FEATURES)
    runs = {
        "csv-1": (write_shards(mixed, tmp_path / "c1", 1), None),
        "csv-5": (write_shards(mixed.take(np.random.default_rng(3).permutation(mixed.num_rows)), tmp_path / "c5", 5), None),
        "parquet-4": (write_shards(mixed, tmp_path / "p4", 4, "parquet", row_group_size=97), None),
    }
    bundles = {}
    for label, (pattern, fmt) in runs.items():
        run_analysis(spec, pattern, str(tmp_path / label), fmt, LOCAL)
        bundles[label] = load_bundle(str(tmp_path / label)).features
    # Tiny CSV blocks: many batches per file, merged in whatever order Beam chooses.
    with beam.Pipeline(options=PipelineOptions(LOCAL)) as p:
        _ = (
            p
            | kdp_beam.ReadCsv(runs["csv-5"][0], spec, block_size=4096)
            | kdp_beam.AnalyzeFeatures(spec, fanout=3)
            | kdp_beam.WriteArtifacts(str(tmp_path / "csv-small-blocks"))
        )
    bundles["csv-small-blocks"] = load_bundle(str(tmp_path / "csv-small-blocks")).features
    reference = bundles.pop("csv-1")
    for features in bundles.values():
        assert_same_statistics(reference, features, mixed)


def test_one_read_of_the_data_whatever_the_number_of_features(tmp_path):
    rng = np.random.default_rng(1)
    rows = 4000
    table = pa.table(
        {f"f{i}": rng.normal(i, 1, rows) for i in range(12)}
        | {f"s{i}": rng.choice(list("abcdef"), rows) for i in range(12)}
    )
    pattern = write_shards(table, tmp_path / "data", shards=3)
    few = FeatureSpec({"f0": "float_normalized"})
    many = FeatureSpec(
        {f"f{i}": "float_normalized" for i in range(12)}
        | {f"s{i}": "string_categorical" for i in range(12)}
    )
    read_few = run_analysis(few, pattern, str(tmp_path / "few"))
    read_many = run_analysis(many, pattern, str(tmp_path / "many"))
    assert read_many["files_read"] == read_few["files_read"] == 3
    assert read_many["rows_read"] == read_few["rows_read"] == rows  # not rows x features
    assert read_many["batches_read"] == read_few["batches_read"]
    assert len(load_bundle(str(tmp_path / "many")).features) == 24


@pytest.mark.parametrize(
    "runner_args",
    [
        LOCAL + ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
        # The portable translation Flink and Dataflow receive, with an embedded job service.
        ["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=LOOPBACK"],
    ],
    ids=["two_worker_processes", "portable_runner"],
)
def test_other_runners_give_the_same_statistics(tmp_path, mixed, runner_args):
    spec = FeatureSpec(MIXED_FEATURES)
    pattern = write_shards(mixed, tmp_path / "csv", 4)
    run_analysis(spec, pattern, str(tmp_path / "one"))
    run_analysis(spec, pattern, str(tmp_path / "other"), pipeline_args=runner_args)
    one, other = (load_bundle(str(tmp_path / d)).features for d in ("one", "other"))
    assert_same_statistics(one, other, mixed)


def write_text(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    "text, words",
    [
        ("x,name\n1.5,a\n2.5,b,extra\n", ["bad.csv", "row 2", "line 3", "expected 2 fields"]),
        ("x,name\n1.5,a\n2.5,b\noops,c\n", ["bad.csv", "row 3", "column 'x'", "'oops'"]),
        ("name,y\na,1\n", ["bad.csv", "['x']", "not in the CSV header"]),
        ('x,name\n1.5,"a\n2,b\n', ["bad.csv", "malformed"]),
    ],
    ids=["field_count", "unparseable_number", "missing_column", "unterminated_quote"],
)
def test_malformed_csv_names_file_row_and_column(tmp_path, text, words):
    path = write_text(tmp_path / "bad.csv", text)
    spec = FeatureSpec({"x": "float_normalized", "name": "string_categorical"})
    with pytest.raises(InputDataError) as error:
        run_analysis(spec, path, str(tmp_path / "out"))
    for word in words:
        assert word in str(error.value)
    assert not os.path.exists(tmp_path / "out" / "manifest.json")


def test_parquet_missing_column_and_lossy_type_are_errors(tmp_path):
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [1.5, 2.5], "name": ["a", "b"]}), tmp_path / "d.parquet")
    with pytest.raises(InputDataError, match=r"d\.parquet.*\['y'\].*not in the Parquet schema"):
        run_analysis(FeatureSpec({"y": "float"}), str(tmp_path / "d.parquet"), str(tmp_path / "o"))
    with pytest.raises(InputDataError, match=r"d\.parquet.*column 'x' is double.*an integer feature"):
        run_analysis(
            FeatureSpec({"x": "integer_categorical"}), str(tmp_path / "d.parquet"), str(tmp_path / "o")
        )


def test_cli_writes_a_bundle_and_reports_errors_cleanly(tmp_path, mixed):
    pattern = write_shards(mixed, tmp_path / "csv", 2)
    features = write_text(tmp_path / "features.json", json.dumps({"features": MIXED_FEATURES}))
    cli = [sys.executable, "-m", "kdp_beam", "analyze", "--features", features]
    done = subprocess.run(
        cli + ["--input", pattern, "--output", str(tmp_path / "b"), "--runner=FnApiRunner", "--json"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows_read"] == mixed.num_rows  # stdout: --json only
    assert load_bundle(str(tmp_path / "b")).row_count == mixed.num_rows
    bad = write_text(tmp_path / "bad" / "x.csv", "big,city\n1,a\n")
    failed = subprocess.run(
        cli + ["--input", bad, "--output", str(tmp_path / "c")], capture_output=True, text=True
    )
    assert failed.returncode == 2
    assert "kdp-beam: error:" in failed.stderr and "not in the CSV header" in failed.stderr


def test_misused_paths_are_one_line_errors_saying_what_to_do(tmp_path, capsys):
    from kdp_beam.cli import main

    pattern = write_shards(pa.table({"x": [1.0, 2.0]}), tmp_path / "csv", 1)
    features = write_text(tmp_path / "f.json", json.dumps({"features": {"x": "float"}}))
    a_file = write_text(tmp_path / "a_file", "")
    cases = [
        (["--features", str(tmp_path / "nope.json"), "--input", pattern, "--output", str(tmp_path / "o")],
         "cannot read the features file"),
        (["--features", features, "--input", str(tmp_path / "csv"), "--output", str(tmp_path / "o")],
         "is a directory; pass a file pattern such as"),
        (["--features", features, "--input", pattern, "--output", a_file],
         "is a file; the output is the bundle's directory"),
    ]
    for args, message in cases:
        assert main(["analyze"] + args) == 2
        assert message in capsys.readouterr().err
    assert main(["infer", "--input", str(tmp_path / "csv"), "--output", str(tmp_path / "i.json")]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_errors_from_worker_processes_keep_their_kdp_beam_type(tmp_path):
    path = write_text(tmp_path / "bad.csv", "x,name\n1.5,a\noops,b\n")
    spec = FeatureSpec({"x": "float_normalized", "name": "string_categorical"})
    workers = LOCAL + ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    with pytest.raises(InputDataError, match=r"bad\.csv: row 2 \(line 3\), column 'x'"):
        run_analysis(spec, path, str(tmp_path / "out"), pipeline_args=workers)


def test_bad_utf8_names_the_row_and_long_strings_are_read(tmp_path):
    spec = FeatureSpec({"x": "float_normalized", "name": "string_categorical"})
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"x,name\n1.5,a\n2.5,b\xff\xfe\n")
    with pytest.raises(InputDataError, match=r"bad\.csv: row 2 \(line 3\), column 'name': not valid UTF-8"):
        run_analysis(spec, str(bad), str(tmp_path / "o"))
    long_token = "y" * (5 << 20)  # longer than a 4 MiB read block
    path = write_text(tmp_path / "long.csv", f"x,name\n1.5,a\n2.5,{long_token}\n3,a\n")
    run_analysis(spec, path, str(tmp_path / "o2"))
    assert load_bundle(str(tmp_path / "o2")).features["name"]["vocabulary"] == ["a", long_token]


def test_empty_and_header_only_files_add_no_rows(tmp_path):
    write_text(tmp_path / "d" / "a.csv", "x,name\n1.5,a\nnan,b\n,c\n")
    write_text(tmp_path / "d" / "b.csv", "")
    write_text(tmp_path / "d" / "c.csv", "x,name\n")
    spec = FeatureSpec({"x": "float_normalized", "name": "string_categorical"})
    summary = run_analysis(spec, str(tmp_path / "d" / "*.csv"), str(tmp_path / "out"))
    stats = load_bundle(str(tmp_path / "out")).features
    assert summary["files_read"] == 3 and summary["rows_read"] == 3
    assert (stats["x"]["count"], stats["x"]["null_count"], stats["x"]["nan_count"]) == (3, 1, 1)
    assert stats["x"]["mean"] == 1.5 and stats["name"]["vocabulary"] == ["c", "b", "a"]


def test_the_spec_may_be_its_json_object(tmp_path, mixed):
    """run_analysis({"features": ...}) raised a raw "TypeError: unhashable type: 'dict'"."""
    pattern = write_shards(mixed, tmp_path / "csv", shards=1)
    run_analysis({"features": MIXED_FEATURES}, pattern, str(tmp_path / "from_json"))
    run_analysis(FeatureSpec(MIXED_FEATURES), pattern, str(tmp_path / "from_spec"))
    a, b = load_bundle(str(tmp_path / "from_json")), load_bundle(str(tmp_path / "from_spec"))
    assert a.spec == b.spec and a.features == b.features


def test_a_pattern_matching_nothing_is_an_error(tmp_path):
    with pytest.raises(InputDataError, match="no file matches"):
        run_analysis(FeatureSpec({"x": "float"}), str(tmp_path / "none-*.csv"), str(tmp_path / "o"))


def test_empty_json_lines_files_add_no_rows_and_say_so(tmp_path, caplog):
    write_text(tmp_path / "d" / "a.jsonl", '{"x": 1.5}\n\n{"x": 2.5}\n')
    write_text(tmp_path / "d" / "b.jsonl", "")
    write_text(tmp_path / "d" / "c.jsonl", "\n \n")
    with caplog.at_level("WARNING", logger="kdp_beam.io.jsonl"):
        summary = run_analysis(FeatureSpec({"x": "float_normalized"}), str(tmp_path / "d" / "*.jsonl"), str(tmp_path / "o"))
    assert summary["files_read"] == 3 and summary["rows_read"] == 2
    assert load_bundle(str(tmp_path / "o")).features["x"]["mean"] == 2.0
    warned = sorted(r.getMessage().split("/")[-1] for r in caplog.records if "adds no rows" in r.getMessage())
    assert warned == ["b.jsonl has no good JSON object; it adds no rows", "c.jsonl has no good JSON object; it adds no rows"]


def test_lenient_quoting_does_not_hide_the_bad_record_behind_it(tmp_path):
    # `"a"b` reads as `ab`, as pyarrow reads it; the error names the bad number after it.
    path = write_text(tmp_path / "q.csv", 'x,name\n1,"a"b\n2,c\noops,d\n')
    spec = FeatureSpec({"x": "float_normalized", "name": "string_categorical"})
    with pytest.raises(InputDataError, match=r"q\.csv: row 3 \(line 4\), column 'x'"):
        run_analysis(spec, path, str(tmp_path / "fail"))
    run_analysis(spec, path, str(tmp_path / "skip"), on_bad_record="skip")
    bundle = load_bundle(str(tmp_path / "skip"))
    assert bundle.features["name"]["vocabulary"] == ["c", "ab"] and bundle.bad_records["count"] == 1
