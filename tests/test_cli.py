"""The command line as a person sees it: one `kdp-beam: error:` line (exit 2) for every bad
argument, path or record, no Beam log line unless --verbose, --json alone on stdout, a live
bar on a terminal and plain lines otherwise."""

import bz2
import contextlib
import csv
import gzip
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kdp_beam import progress
from kdp_beam.cli import main
from kdp_beam.job import pipeline_options, run_analysis

FEATURES = {"features": {"x": "float_normalized", "name": "string_categorical"}}
ROWS = [("1.5", "a"), ("2.5", "b"), ("4", "a")]
# What Beam's own logging and Python's traceback look like on stderr.
BEAM_NOISE = re.compile(
    r"Traceback|^\d{4}-\d\d-\d\d |^(INFO|WARNING|ERROR|DEBUG)\b|apache_beam|WriteImpl|state cache|"
    r"No shards",
    re.M,
)


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return str(path)


def csv_text(rows=ROWS, header=("x", "name")):
    return "\n".join(",".join(r) for r in [header, *rows]) + "\n"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A data file, a features file, a bundle of them, a plain file and a directory."""
    root = tmp_path_factory.mktemp("cli")
    paths = {
        "data": write(root / "data" / "d.csv", csv_text()),
        "features": write(root / "features.json", json.dumps(FEATURES)),
        "a_file": write(root / "a_file.txt", "not a directory"),
        "a_dir": str(root / "data"),
        "root": root,
    }
    paths["bundle"] = str(root / "bundle")
    run_analysis(paths["features"], paths["data"], paths["bundle"])
    return paths


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_error_line(status, err, match, expected_status=2):
    """The contract: the status, exactly one error line (the last), no traceback or Beam
    line; any other line is kdp-beam's own (a progress line)."""
    lines = err.splitlines()
    errors = [line for line in lines if line.startswith("kdp-beam: error: ")]
    assert status == expected_status, err
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert all(line.startswith("kdp-beam: ") for line in lines), err
    assert not BEAM_NOISE.search(err), err
    assert re.search(match, errors[0]), errors[0]
    if expected_status == 2:
        assert "[while running" not in err  # Beam's step name means nothing to a person


def case(name, features, extra, data, message):
    """An analyze case: features JSON text (None: the good one; "MISSING"), extra args,
    input (None: the good file; "NOTHING", "DIR" or a CSV file's content), the message."""
    return pytest.param(name, features, extra, data, message, id=name)


ANALYZE_CASES = [
    case("features file missing", "MISSING", [], None, r"cannot read the features file"),
    case("features not JSON", "{oops", [], None, r"not valid JSON"),
    case("features a list", "[1, 2]", [], None, r"JSON object"),
    case("input matches nothing", None, [], "NOTHING", r"no file matches the input pattern"),
    case("input is a directory", None, [], "DIR", r"is a directory; pass a file pattern"),
    case("format unknown", None, ["--format", "xls"], None, r"argument --format: invalid choice: 'xls'"),
    case("split size not a number", None, ["--split-size", "big"], None, r"--split-size.*not a whole number: 'big'"),
    case("split size negative", None, ["--split-size", "-5"], None, r"--split-size.*must be at least 0, not -5"),
    case("fanout zero", None, ["--fanout", "0"], None, r"--fanout.*must be at least 1, not 0"),
    case("runner unknown", None, ["--runner", "NoSuchRunner"], None, r"Unexpected pipeline runner: NoSuchRunner"),
    case("beam option refused", None, ["--direct_num_workers=two"], None, r"Beam refuses an option.*direct_num_workers"),
    case("plugin missing", None, ["--plugin", "no_such_module.stats"], None, r"cannot import the plug-in module 'no_such_module.stats'"),
    case("output is a file", None, [], None, r"is a file"),
    case("column missing from the header", None, [], "x,other\n1,a\n", r"declared column\(s\) \['name'\] are not in the CSV header"),
    case("unparseable number", None, [], "x,name\n1.5,a\noops,b\n", r"row 2 \(line 3\), column 'x': cannot read 'oops'"),
    case("wrong field count", None, [], "x,name\n1.5,a\n2,b,c\n", r"row 2 \(line 3\).*expected 2 fields"),
    case("bad UTF-8", None, [], b"x,name\n1.5,a\n2.5,b\xff\n", r"row 2 \(line 3\), column 'name': not valid UTF-8"),
    case("list where an object belongs", '{"features": ["x"]}', [], None, r"features"),
    case("scalar crosses", json.dumps({**FEATURES, "crosses": 5}), [], None, r"crosses"),
    case(
        "unknown cross key",
        json.dumps({**FEATURES, "crosses": [{"feature_names": ["x", "name"], "crossing_dim": 4, "bogus": 1}]}),
        [], None, r"bogus",
    ),
    case("unhashable type", '{"features": {"x": {"type": ["a"]}}}', [], None, r"type"),
    case(
        "absurd num_bins", '{"features": {"name": {"type": "string_hashed", "num_bins": 1000000000000}}}',
        [], None, r"num_bins",
    ),
    case(
        "fill_value NaN", '{"features": {"x": {"type": "float_normalized", "fill_value": NaN}}}',
        [], None, r"fill_value",
    ),
]


@pytest.mark.parametrize("name, features, extra, data, message", ANALYZE_CASES)
def test_analyze_bad_arguments_are_one_line(files, tmp_path, capsys, name, features, extra, data, message):
    features_path = files["features"]
    if features == "MISSING":
        features_path = str(tmp_path / "no-such.json")
    elif features is not None:
        features_path = write(tmp_path / "f.json", features)
    pattern = {None: files["data"], "NOTHING": str(tmp_path / "none-*.csv"), "DIR": files["a_dir"]}.get(data)
    if pattern is None:
        pattern = write(tmp_path / "in" / "d.csv", data)
    output = files["a_file"] if name == "output is a file" else tmp_path / "out"
    status, out, err = run(capsys, "analyze", "--features", features_path, "--input", pattern, "--output", output, *extra)
    assert_one_error_line(status, err, message)
    assert out == ""  # no --json: nothing on stdout


def test_compressed_csv_is_analysed(tmp_path, capsys):
    path = tmp_path / "d.csv.gz"
    path.write_bytes(gzip.compress(csv_text().encode()))
    features = write(tmp_path / "f.json", json.dumps(FEATURES))
    status, _, err = run(capsys, "analyze", "--features", features, "--input", path, "--output", tmp_path / "b")
    if status:  # until then a raw AttributeError from read_header, as one line
        assert_one_error_line(status, err, r"CompressedFile", expected_status=status)
    assert status == 0, err


@pytest.mark.parametrize("kind", ["float_normalized", "float_rescaled", "float_discretized"])
def test_numbers_whose_variance_exceeds_float64_are_one_line(tmp_path, capsys, kind):
    """A variance beyond float64 (here 1e320) is an InputDataError naming the feature, not
    NaN in the bundle and not an internal error; 1.3e154 (variance 1.6e308) still fits."""
    features = write(tmp_path / "f.json", json.dumps({"features": {"x": kind}}))
    data = write(tmp_path / "h.csv", "x\n1e160\n-1e160\n2e50\n")
    status, _, err = run(capsys, "analyze", "--features", features, "--input", data, "--output", tmp_path / "b")
    assert_one_error_line(status, err, r"feature 'x'.*variance.*exceeds the largest float64.*scale the column")
    data = write(tmp_path / "f.csv", "x\n1.3e154\n-1.3e154\n")
    status, _, err = run(capsys, "analyze", "--features", features, "--input", data, "--output", tmp_path / "ok")
    assert status == 0, err
    stats = json.loads((tmp_path / "ok" / "statistics.json").read_text())["features"]["x"]
    assert stats["mean"] == 0.0 and stats["variance"] == pytest.approx(1.3e154**2, rel=1e-12)


@pytest.mark.parametrize(
    "values, warning",
    [
        (["a", "b", "c"], r"the bundle holds 0 rows: all 3 records were bad \(see .*bad_records/\)"),
        (["1", "b", "c"], r"2 of 3 records \(67%\) were bad and left out; the statistics describe only the other 1"),
        (["1", "2", "c"], None),  # a third bad: the summary line says it, no warning
        ([], r"the bundle holds 0 rows: the input has no rows"),
    ],
)
def test_a_run_that_describes_little_of_its_input_warns(tmp_path, capsys, values, warning):
    features = write(tmp_path / "f.json", json.dumps({"features": {"x": "float_normalized"}}))
    data = write(tmp_path / "d.csv", "x\n" + "".join(v + "\n" for v in values))
    status, out, err = run(
        capsys, "analyze", "--features", features, "--input", data, "--output", tmp_path / "b",
        "--on-bad-record", "skip", "--json",
    )
    assert status == 0, err
    bad = sum(not v.isdigit() for v in values)
    result = json.loads(out)  # stdout: the one JSON object, as before
    assert result["bad_records"]["count"] == bad
    warnings = [line for line in err.splitlines() if line.startswith("kdp-beam: warning: ")]
    if warning is None:
        assert warnings == [], err
    else:
        assert [w for w in warnings if re.search(warning, w)], err  # an empty file also warns of itself


@pytest.mark.parametrize(
    "values, warning",
    [
        (["1e50", "3e50", "2e50"], r"feature 'x': its min 1e\+50 is beyond float32 .*divide it by 1e20"),
        (["1e30", "-1e30"], r"feature 'x': its variance 1e\+60 is beyond float32 .*divide it by 1e15"),
        (["1e19", "-1e19"], None),  # variance 1e38: a float32 model holds it
    ],
)
def test_statistics_a_float32_model_cannot_hold_warn(tmp_path, capsys, values, warning):
    """The bundle is right (exit 0) but a Keras model refuses it: analyze says so."""
    features = write(tmp_path / "f.json", json.dumps({"features": {"x": "float_normalized"}}))
    data = write(tmp_path / "d.csv", "x\n" + "".join(v + "\n" for v in values))
    status, out, err = run(capsys, "analyze", "--features", features, "--input", data, "--output", tmp_path / "b", "--json")
    assert status == 0, err
    assert json.loads(out)["bad_records"]["count"] == 0  # stdout: the one JSON object
    warnings = [line for line in err.splitlines() if line.startswith("kdp-beam: warning: ")]
    assert warnings == [] if warning is None else len(warnings) == 1 and re.search(warning, warnings[0]), err


def test_output_under_a_file_is_one_line(files, tmp_path, capsys):
    # The bundle slice refuses it before the job; whatever arrives is one line, exit 2.
    status, _, err = run(
        capsys, "analyze", "--features", files["features"], "--input", files["data"],
        "--output", os.path.join(files["a_file"], "bundle"),
    )
    assert_one_error_line(status, err, r"a_file\.txt")


def test_a_runner_error_is_not_its_own_cause(files, tmp_path, monkeypatch):
    """An error the runner raises that is not a worker's (here: a failing run) reaches the
    caller as itself, without pointing at itself as its cause."""
    import apache_beam as beam

    def broken_run(self, *args, **kwargs):
        raise RuntimeError("the runner fell over")

    monkeypatch.setattr(beam.Pipeline, "run", broken_run)
    with pytest.raises(RuntimeError, match="fell over") as raised:
        run_analysis(files["features"], files["data"], str(tmp_path / "out"))
    assert raised.value.__cause__ is not raised.value


def test_an_internal_error_is_one_line_with_status_1_and_a_traceback_on_request(files, tmp_path, capsys, monkeypatch):
    plugin = tmp_path / "plugins" / "cli_boom_plugin.py"
    write(plugin, (
        "from kdp_beam.plugins import FeatureType, register_type\n"
        "class Boom:\n"
        "    def create_accumulator(self): return 0\n"
        "    def add_batch(self, acc, column): return 1 / 0\n"
        "    def merge_accumulators(self, accs): return 0\n"
        "    def finalize(self, acc): return {}\n"
        "@register_type\n"
        "class BoomType(FeatureType):\n"
        "    name = 'cli_boom'\n"
        "    def column_kind(self, options): return 'float'\n"
        "    def analyzers(self, options, profile=False): return {'boom': Boom()}\n"
    ))
    monkeypatch.syspath_prepend(str(plugin.parent))
    features = write(tmp_path / "f.json", json.dumps({"features": {"x": "cli_boom"}}))
    argv = ["--plugin", "cli_boom_plugin", "analyze", "--features", features, "--input", files["data"]]
    status, _, err = run(capsys, *argv, "--output", tmp_path / "o1")
    assert_one_error_line(
        status, err, r"internal error: ZeroDivisionError: division by zero.*run with --verbose", expected_status=1
    )
    status, _, err = run(capsys, *argv, "--output", tmp_path / "o2", "--verbose")
    assert status == 1 and "Traceback" in err and "cli_boom_plugin.py" in err
    assert err.splitlines()[-1].startswith("kdp-beam: error: internal error: ZeroDivisionError")


def test_a_good_run_is_quiet_and_json_is_alone_on_stdout(files, tmp_path, capsys):
    status, out, err = run(
        capsys, "analyze", "--features", files["features"], "--input", files["data"], "--output", tmp_path / "b", "--json"
    )
    assert status == 0, err
    assert not BEAM_NOISE.search(err), err
    summary = json.loads(out)
    assert summary["rows_read"] == len(ROWS) and summary["files_read"] == 1
    assert summary["bad_records"]["count"] == 0 and summary["output"] == str(tmp_path / "b")
    assert f"read {len(ROWS)} rows from 1 file" in err and f"wrote the bundle {tmp_path / 'b'}" in err
    assert re.search(r"^x\s+float_normalized\s+0\s+mean 2\.66667", err, re.M)  # the summary table
    # --verbose is the positive control: Beam's lines are there to hide.
    status, out, err = run(
        capsys, "analyze", "--features", files["features"], "--input", files["data"], "--output", tmp_path / "c", "-v"
    )
    assert status == 0 and out == "" and BEAM_NOISE.search(err)


def test_errors_as_json_and_logging_left_as_found(files, tmp_path, capsys):
    import logging

    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    status, out, err = run(
        capsys, "analyze", "--features", files["features"], "--input", str(tmp_path / "none-*.csv"),
        "--output", tmp_path / "o", "--json",
    )
    assert_one_error_line(status, err, "no file matches")
    assert json.loads(out) == {"error": err.splitlines()[-1].removeprefix("kdp-beam: error: "), "exit_status": 2}
    assert (list(root.handlers), root.level) == before


def test_options_nobody_knows_are_named(files, tmp_path, capsys):
    status, _, err = run(
        capsys, "analyze", "--features", files["features"], "--input", files["data"], "--output", tmp_path / "b",
        "--on-bad-records", "skip",
    )
    assert status == 0
    assert "kdp-beam: warning: neither kdp-beam nor Beam knows --on-bad-records" in err


def test_usage_errors_of_every_subcommand_are_one_line(capsys):
    for argv, message in [
        ([], r"required: command"),
        (["explode"], r"invalid choice: 'explode'"),
        (["analyze", "--features", "f.json"], r"required: --input, --output \(see kdp-beam analyze --help\)"),
        (["infer", "--input", "x.csv"], r"required: --output"),
        (["infer", "--input", "x.csv", "--output", "f.json", "--sample-rows", "0"], r"must be at least 1"),
        (["infer", "--input", "x.csv", "--output", "f.json", "--bogus"], r"unrecognized arguments: --bogus"),
        (["report", "--output", "r.html"], r"required: bundle"),
        (["merge", "b1"], r"required: --output"),
    ]:
        status, _, err = run(capsys, *argv)
        assert_one_error_line(status, err, message)


def test_version_is_the_release_on_stdout(capsys):
    from kdp_beam.version import __version__

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"kdp-beam {__version__}\n"


def test_the_plugin_option_says_it_registers_feature_types(capsys):
    """A plug-in is a feature type (kdp_beam.plugins), no longer a "custom statistic"."""
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "registers plug-in feature types" in help_text and "custom statistics" not in help_text


# ---- infer -----------------------------------------------------------------------------

INFER_CASES = [
    ("empty file", "d.csv", b"", r"no rows in .* to infer from"),
    ("header only", "d.csv", b"x,name\n", r"no rows in .* to infer from"),
    ("bad UTF-8", "d.csv", b"x,name\n1,a\n2,b\xff\n", r"d\.csv: row 2 \(line 3\), column 'name': not valid UTF-8"),
    ("wrong field count", "d.csv", b"x,name\n1,a\n2,b,c\n", r"d\.csv: row 2 \(line 3\): expected 2 fields"),
    ("duplicate column", "d.csv", b"x,name,x\n1,a,2\n", r"d\.csv: the column name 'x' appears twice in the file"),
    ("damaged TFRecord", "d.tfrecord", b"not a TFRecord", r"d\.tfrecord: record 1 is not a valid TFRecord"),
    ("matches nothing", None, None, r"no file matches"),
    ("key of two types", "d.jsonl", b'{"k": 1}\n{"k": "one"}\n', r"d\.jsonl: key 'k' holds values of different types"),
]


@pytest.mark.parametrize("case, name, content, message", INFER_CASES, ids=[c[0] for c in INFER_CASES])
def test_infer_bad_data_is_one_line(tmp_path, capsys, case, name, content, message):
    pattern = write(tmp_path / name, content) if name else str(tmp_path / "none-*.csv")
    status, out, err = run(capsys, "infer", "--input", pattern, "--output", tmp_path / "f.json")
    assert_one_error_line(status, err, message)
    assert not (tmp_path / "f.json").exists()


@pytest.mark.parametrize("suffix, compress", [(".gz", gzip.compress), (".bz2", bz2.compress)])
def test_infer_reads_compressed_csv(tmp_path, capsys, suffix, compress):
    path = tmp_path / f"d.csv{suffix}"
    path.write_bytes(compress(csv_text().encode()))
    status, _, err = run(capsys, "infer", "--input", path, "--output", tmp_path / "f.json")
    if status:  # until then a raw AttributeError from read_header, as one line
        assert_one_error_line(status, err, r"CompressedFile", expected_status=status)
    assert status == 0, err
    assert json.loads((tmp_path / "f.json").read_text())["features"]["name"] == "string_categorical"


def test_infer_reads_compressed_json_lines(tmp_path, capsys):
    path = tmp_path / "d.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"x": 1.5, "name": "a"}\n{"x": 2.5, "name": "b"}\n'))
    status, _, err = run(capsys, "infer", "--input", path, "--output", tmp_path / "f.json")
    assert status == 0, err
    assert json.loads((tmp_path / "f.json").read_text())["features"] == FEATURES["features"]


def test_infer_output_paths(files, tmp_path, capsys):
    for output, message in [
        (files["a_dir"], r"is a directory; pass the path of the features JSON file to write"),
        (os.path.join(files["a_file"], "f.json"), r"a_file\.txt is a file, not a directory"),
    ]:
        status, _, err = run(capsys, "infer", "--input", files["data"], "--output", output)
        assert_one_error_line(status, err, message)
    status, out, err = run(capsys, "infer", "--input", files["data"], "--output", tmp_path / "new" / "f.json", "--json")
    assert status == 0 and json.loads(out)["features"] == json.loads((tmp_path / "new" / "f.json").read_text())["features"]


def test_outputs_that_would_destroy_an_input_or_a_bundle_are_refused_before_any_work(files, tmp_path, capsys):
    victim = write(tmp_path / "victim.csv", csv_text())
    bundle_files = {p: open(os.path.join(files["bundle"], p), "rb").read() for p in os.listdir(files["bundle"])
                    if os.path.isfile(os.path.join(files["bundle"], p))}
    for argv, message in [
        (["infer", "--input", victim, "--output", victim], r"features JSON .*victim\.csv is one of the input files"),
        (["infer", "--input", tmp_path / "v*.csv", "--output", tmp_path / "." / "victim.csv"], r"one of the input files"),
        (["infer", "--input", "file://" + victim, "--output", victim], r"one of the input files"),
        (["infer", "--input", victim, "--output", os.path.join(files["bundle"], "manifest.json")],
         r"lies inside the kdp_beam bundle \S*bundle"),
        (["report", files["bundle"], "--output", os.path.join(files["bundle"], "statistics.json")],
         r"report \S*statistics\.json lies inside the kdp_beam bundle"),
        (["report", files["bundle"], "--output", os.path.join(files["bundle"], "new", "r.html")], r"inside the kdp_beam bundle"),
    ]:
        status, _, err = run(capsys, *argv)
        assert_one_error_line(status, err, message)
        assert "inferred from" not in err  # refused before the work
    assert open(victim).read() == csv_text()
    assert bundle_files == {p: open(os.path.join(files["bundle"], p), "rb").read() for p in bundle_files}
    assert not os.path.exists(os.path.join(files["bundle"], "new"))
    # Beside a bundle, or in a directory holding some other manifest.json, is fine.
    write(tmp_path / "other" / "manifest.json", json.dumps({"format": "something else"}))
    for output in (tmp_path / "r.html", tmp_path / "other" / "r.html"):
        status, _, err = run(capsys, "report", files["bundle"], "--output", output)
        assert status == 0 and os.path.getsize(output) > 0, err


def test_a_features_file_with_a_utf8_bom_is_read(files, tmp_path, capsys):
    features = write(tmp_path / "bom.json", b"\xef\xbb\xbf" + json.dumps(FEATURES).encode())
    status, _, err = run(capsys, "analyze", "--features", features, "--input", files["data"], "--output", tmp_path / "b")
    assert status == 0, err
    with open(files["data"], newline="") as f:  # oracle: Python's csv module
        names = [row["name"] for row in csv.DictReader(f)]
    from kdp_beam.bundle.loader import load_bundle

    stats = load_bundle(str(tmp_path / "b")).features["name"]
    assert dict(zip(stats["vocabulary"], stats["vocabulary_counts"])) == {n: names.count(n) for n in names}


def test_infer_types_the_whole_sample_not_its_first_block(tmp_path, capsys):
    """pyarrow's streaming reader types a column from its first block (1 MB) and failed on a
    later one; the sample is typed over all of its rows, as its values require."""
    path = tmp_path / "d.csv"
    with open(path, "w") as f:
        f.write("code,amount\n")
        for i in range(200_000):
            f.write(f"{i % 50},{i}\n")
        f.write("A7,0.5\n")  # past the first block, inside the sample
    status, _, err = run(capsys, "infer", "--input", path, "--output", tmp_path / "f.json", "--sample-rows", "300000")
    assert status == 0, err
    features = json.loads((tmp_path / "f.json").read_text())["features"]
    assert features == {"code": "string_categorical", "amount": "float_normalized"}


def test_infer_leaves_structs_out_proposes_lists_multivalent_and_booleans_as_text(tmp_path, capsys):
    table = pa.table(
        {
            "point": pa.array([{"a": i} for i in range(40)]),
            "tags": pa.array([[i, i + 1] for i in range(40)]),
            "flag": [i % 3 == 0 for i in range(40)],
            "x": [float(i) for i in range(40)],
        }
    )
    pq.write_table(table, tmp_path / "d.parquet")
    status, _, err = run(capsys, "infer", "--input", tmp_path / "d.parquet", "--output", tmp_path / "f.json")
    assert status == 0, err
    proposed = json.loads((tmp_path / "f.json").read_text())
    assert proposed["features"] == {
        "tags": {"type": "float_normalized", "multivalent": True},
        "flag": "string_categorical",
        "x": "float_normalized",
    }
    assert "nested values" in proposed["notes"]["point"] and "flatten" in proposed["notes"]["point"]
    assert proposed["notes"]["tags"].startswith("a list per row (2.0 values per row, up to 2): multivalent")


# ---- report and merge ------------------------------------------------------------------


def test_report_output_paths_and_bundle_errors(files, tmp_path, capsys):
    for bundle, output, message in [
        (files["bundle"], files["a_dir"], r"is a directory; pass the path of the report file"),
        (files["bundle"], os.path.join(files["a_file"], "r.html"), r"a_file\.txt is a file, not a directory"),
        (str(tmp_path / "no-bundle"), tmp_path / "r.html", r"no-bundle"),
    ]:
        status, _, err = run(capsys, "report", bundle, "--output", output)
        assert_one_error_line(status, err, message)
    status, out, err = run(capsys, "report", files["bundle"], "--output", tmp_path / "r.html", "--json")
    assert status == 0 and json.loads(out)["output"] == str(tmp_path / "r.html")
    assert (tmp_path / "r.html").read_text().startswith("<!doctype html>")


def test_report_on_a_bundle_with_an_impossible_value_is_one_line(files, tmp_path, capsys):
    import hashlib
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(files["bundle"], bundle)
    statistics = json.loads((bundle / "statistics.json").read_text())
    statistics["features"]["x"]["variance"] = -1.0  # edited, then re-signed consistently
    data = json.dumps(statistics).encode()
    (bundle / "statistics.json").write_bytes(data)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["statistics.json"] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    status, _, err = run(capsys, "report", bundle, "--output", tmp_path / "r.html")
    assert_one_error_line(status, err, r"statistics\.json.*variance")


def test_an_unwritable_output_file_is_refused_before_the_work(files, tmp_path, capsys, monkeypatch):
    # Permissions do not stop root (these tests may run as root): os.access says no instead.
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path) == str(tmp_path) else real_access(path, mode))
    for argv in (["report", files["bundle"]], ["infer", "--input", files["data"]]):
        status, _, err = run(capsys, *argv, "--output", tmp_path / "out")
        assert_one_error_line(status, err, r"cannot write the .* permission denied")


def test_merge_output_paths_and_bundle_errors(files, tmp_path, capsys):
    for bundles, output, message in [
        ([files["bundle"]], files["a_file"], r"a_file\.txt"),
        ([files["bundle"]], os.path.join(files["a_file"], "m"), r"a_file\.txt"),
        ([str(tmp_path / "no-bundle")], tmp_path / "m", r"no-bundle"),
    ]:
        status, _, err = run(capsys, "merge", *bundles, "--output", output)
        assert_one_error_line(status, err, message)
    status, _, err = run(capsys, "merge", files["bundle"], files["bundle"], "--output", tmp_path / "m")
    assert_one_error_line(status, err, r"are the same directory; merge takes bundles of disjoint data")
    other = str(tmp_path / "other")  # the same rows read from another file: another analysis
    run_analysis(files["features"], write(tmp_path / "data" / "d.csv", csv_text()), other)
    status, out, err = run(capsys, "merge", files["bundle"], other, "--output", tmp_path / "m", "--json")
    assert status == 0 and json.loads(out)["row_count"] == 2 * len(ROWS)


# ---- progress --------------------------------------------------------------------------


def test_read_counts_turn_units_into_bytes(tmp_path):
    pq.write_table(pa.table({"x": list(range(100))}), tmp_path / "p.parquet", row_group_size=25)
    parquet = str(tmp_path / "p.parquet")
    counts = progress.ReadCounts({"/d/a.csv": 1000, "/d/b.csv": 500, parquet: 4000})
    counts.unit_done("/d/a.csv", 10)  # a whole file
    counts.unit_done("/d/b.csv", 3, span=(0, 200))  # byte ranges
    counts.unit_done("/d/b.csv", 4, span=(200, 500))
    counts.unit_done(parquet, 25, row_group=1)  # a quarter of the file's rows
    counts.unit_done("/elsewhere/c.csv", 9)  # not a matched file: no bytes invented
    assert counts.bytes_done == 1000 + 500 + 1000 and counts.total_bytes == 5500


def watched(captured, interval=None):
    @contextlib.contextmanager
    def watch(sizes, options):
        with progress.watching(sizes, options, terminal=False, plain_interval=interval) as counts:
            captured.append(counts)
            yield

    return watch


def test_in_process_readers_feed_the_counts_other_processes_do_not(tmp_path):
    """The local runner's readers report here, to the byte and the row (oracle: the file
    size, Python's csv module); worker processes report nothing, and nothing is made up."""
    path = tmp_path / "d.csv"
    with open(path, "w") as f:
        f.write("x,name\n")
        for i in range(20_000):
            f.write(f"{i * 0.5},n{i % 7}\n")
    rows = sum(1 for _ in csv.reader(open(path))) - 1
    captured = []
    run_analysis(write(tmp_path / "f.json", json.dumps(FEATURES)), str(path), str(tmp_path / "b"),
                 split_size=50_000, progress=watched(captured))
    counts = captured[0]
    assert counts.heard and counts.rows == rows and counts.bytes_done == counts.total_bytes == path.stat().st_size
    assert progress._sink is None  # uninstalled after the job
    workers = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    assert not progress.runs_here(pipeline_options(workers)) and progress.runs_here(pipeline_options([]))
    run_analysis(str(tmp_path / "f.json"), str(path), str(tmp_path / "b2"), pipeline_args=workers,
                 progress=watched(captured))
    assert not captured[1].heard and captured[1].rows == 0 and captured[1].bytes_done == 0


def test_piped_progress_is_plain_lines(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress, "PLAIN_INTERVAL_SECONDS", 0.05)
    status, _, err = run(capsys, "analyze", "--features", files["features"], "--input", files["data"], "--output", tmp_path / "b")
    assert status == 0, err
    assert "\r" not in err and "━" not in err and "\x1b[" not in err
    size = progress.size_text(os.path.getsize(files["data"]))
    assert f"kdp-beam: reading 1 file ({size}) on FnApiRunner\n" in err
    assert re.search(rf"^kdp-beam: 0:00:0\d elapsed, (running on FnApiRunner|\d rows, .+ of {size} \(\d+%\))$", err, re.M)


# ---- what a person sees: real processes -----------------------------------------------


def kdp_beam_process(*argv, **kwargs):
    env = dict(os.environ, PYTHONPATH=os.getcwd(), COLUMNS="120")
    return subprocess.run([sys.executable, "-m", "kdp_beam", *map(str, argv)], capture_output=True, text=True,
                          env=env, timeout=120, **kwargs)


def test_a_person_sees_one_line_on_bad_data_and_json_parses(files, tmp_path):
    bad = write(tmp_path / "bad.csv", "x,name\n1.5,a\noops,b\n")
    done = kdp_beam_process("analyze", "--features", files["features"], "--input", bad, "--output", tmp_path / "o")
    assert_one_error_line(done.returncode, done.stderr, r"bad\.csv: row 2 \(line 3\), column 'x'")
    assert done.stdout == ""
    done = kdp_beam_process("analyze", "--features", files["features"], "--input", files["data"],
                            "--output", tmp_path / "b", "--json")
    assert done.returncode == 0 and not BEAM_NOISE.search(done.stderr), done.stderr
    assert json.loads(done.stdout)["rows_read"] == len(ROWS)
    done = kdp_beam_process("infer", "--input", write(tmp_path / "e.csv", ""), "--output", tmp_path / "f.json")
    assert_one_error_line(done.returncode, done.stderr, r"no rows in")


def test_a_finished_command_runs_the_exit_handlers_and_waits_for_threads(files, tmp_path):
    # The process's own command skips Python's finalization (cli._finished), not what comes
    # before it: a plug-in's exit handler and its non-daemon thread still run, and its
    # thread pool does not keep the process alive. And the
    # garbage collector, off while Beam was imported (cli._imported), was on for the job,
    # the imports' objects frozen.
    (tmp_path / "exit_plugin.py").write_text(
        "import atexit, gc, pathlib, threading, time\n"
        f"here = pathlib.Path({str(tmp_path)!r})\n"
        "atexit.register(lambda: (here / 'atexit').write_text(f'ran {gc.isenabled()} {gc.get_freeze_count()}'))\n"
        "def late():\n"
        "    time.sleep(1)\n"
        "    (here / 'thread').write_text('ran')\n"
        "threading.Thread(target=late).start()\n"
        "import concurrent.futures\n"  # a pool's idle workers: only Python's exit stops them
        "POOL = concurrent.futures.ThreadPoolExecutor(2)\n"
        "POOL.submit(lambda: 42)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), str(tmp_path)]))
    done = subprocess.run(
        [sys.executable, "-m", "kdp_beam", "--plugin", "exit_plugin", "analyze", "--features", files["features"],
         "--input", files["data"], "--output", tmp_path / "b", "--json"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows_read"] == len(ROWS)
    ran, enabled, frozen = (tmp_path / "atexit").read_text().split()
    assert ran == "ran" and enabled == "True" and int(frozen) > 50_000, (ran, enabled, frozen)
    assert (tmp_path / "thread").read_text() == "ran"


@pytest.mark.parametrize("closed", ["stdout", "stderr"])
def test_a_reader_that_leaves_early_gets_the_sigpipe_status_and_no_traceback(files, tmp_path, closed):
    # `kdp-beam ... --json | head -c 10`: the bundle is written; the status says the output
    # was not all read, as a Unix tool ended by SIGPIPE says it. With stderr's reader gone,
    # the summary cannot be shown, and the command ends there.
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody reads the pipe
    other = tmp_path / "other.txt"
    with open(other, "w") as kept:
        streams = {"stdout": write_end, "stderr": kept} if closed == "stdout" else {"stdout": kept, "stderr": write_end}
        done = subprocess.run(
            [sys.executable, "-m", "kdp_beam", "analyze", "--features", files["features"], "--input", files["data"],
             "--output", tmp_path / "b", "--json"],
            env=dict(os.environ, PYTHONPATH=os.getcwd()), timeout=120, **streams,
        )
    os.close(write_end)
    assert done.returncode == 141
    text = other.read_text()
    assert "Traceback" not in text and "Exception ignored" not in text
    if closed == "stdout":
        assert json.loads((tmp_path / "b" / "statistics.json").read_text())["row_count"] == len(ROWS)
    else:  # what a person reads is lost: the --json result says so
        assert json.loads(text)["exit_status"] == 141


@pytest.mark.parametrize("closed", ["stdout", "stderr"])
def test_a_stream_closed_from_the_start_does_not_fail_a_good_run(files, tmp_path, closed):
    # `kdp-beam ... >&-`: Python starts with sys.stdout (or sys.stderr) None.
    streams = {"stdout": subprocess.DEVNULL} if closed == "stdout" else {"stderr": subprocess.DEVNULL, "stdout": subprocess.PIPE}
    done = subprocess.run(
        [sys.executable, "-m", "kdp_beam", "analyze", "--features", files["features"], "--input", files["data"],
         "--output", tmp_path / "b", "--json"],
        env=dict(os.environ, PYTHONPATH=os.getcwd()), timeout=120, close_fds=True, **streams,
        preexec_fn=lambda: os.close(1 if closed == "stdout" else 2),
    )
    assert done.returncode == 0
    assert json.loads((tmp_path / "b" / "statistics.json").read_text())["row_count"] == len(ROWS)
    if closed == "stderr":  # the human lines are not print's fallback, stdout: the JSON is alone
        assert json.loads(done.stdout)["rows_read"] == len(ROWS)


def test_a_json_result_that_cannot_be_written_is_one_line(files, tmp_path):
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "kdp_beam", "analyze", "--features", files["features"], "--input", files["data"],
             "--output", tmp_path / "b", "--json"],
            env=dict(os.environ, PYTHONPATH=os.getcwd()), timeout=120, stdout=full, stderr=subprocess.PIPE, text=True,
        )
    # the work done (its summary above), then one error line saying what was not
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.splitlines()[-1] == "kdp-beam: error: cannot write the JSON result: No space left on device"
    assert done.stderr.count("kdp-beam: error:") == 1


def test_main_called_from_python_returns_to_its_caller(files, tmp_path):
    # main() (argv from sys.argv) is a call, not the process's own command (cli.run).
    code = (
        "import sys\n"
        "from kdp_beam.cli import main\n"
        f"sys.argv = ['kdp-beam', 'analyze', '--features', {files['features']!r}, '--input', {files['data']!r}, "
        f"'--output', {str(tmp_path / 'b')!r}]\n"
        "status = main()\n"
        "print('returned', status)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=os.getcwd()))
    assert done.stdout.strip() == "returned 0", done.stderr


def test_a_json_file_that_would_destroy_data_is_refused_before_the_work(files, tmp_path, capsys):
    data = write(tmp_path / "d.csv", csv_text())
    before = open(data).read()
    common = ["analyze", "--features", files["features"], "--input", data, "--output", tmp_path / "b"]
    for target, match in (
        (data, r"is one of the input files"),
        (files["features"], r"is one of the input files"),
        (tmp_path / "b" / "result.json", r"is the output .* or lies inside it"),
        (tmp_path, r"is a directory"),
        (files["bundle"] + "/x.json", r"lies inside the kdp_beam bundle"),
    ):
        status, out, err = run(capsys, *common, f"--json={target}")
        assert_one_error_line(status, err, match)
        assert not (tmp_path / "b").exists(), target  # refused before the work
    assert open(data).read() == before
    proposed = tmp_path / "proposed.json"  # infer's output file itself
    status, out, err = run(capsys, "infer", "--input", data, "--output", proposed, f"--json={proposed}")
    assert_one_error_line(status, err, r"is the output .* or lies inside it")
    assert not proposed.exists()
    status, out, err = run(capsys, "merge", "--json", files["bundle"], files["bundle"], "--output", tmp_path / "m")
    assert_one_error_line(status, err, r"is a directory")  # --json took the first bundle as its FILE


def test_worker_processes_print_no_traceback(files, tmp_path):
    # Beam's worker processes print a failing bundle's traceback to the stderr they inherit.
    bad = write(tmp_path / "bad.csv", "x,name\n1.5,a\noops,b\n")
    done = kdp_beam_process("analyze", "--features", files["features"], "--input", bad, "--output", tmp_path / "o",
                            "--direct_running_mode=multi_processing", "--direct_num_workers=2")
    assert_one_error_line(done.returncode, done.stderr, r"bad\.csv: row 2 \(line 3\), column 'x'")
    assert "(counts at the end)" in done.stderr  # no live counts from other processes, none invented


def test_a_terminal_gets_a_live_bar(tmp_path, files):
    path = tmp_path / "d.csv"
    path.write_text(csv_text(rows=[(str(i), f"n{i % 5}") for i in range(50_000)]))
    status, screen = run_on_a_terminal(
        "analyze", "--features", files["features"], "--input", path, "--output", tmp_path / "b", "--split-size", "100000"
    )
    assert status == 0, screen
    assert "\x1b[" in screen and "\r" in screen  # drawn in place, in colour
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen).replace("\r\n", "\n").replace("\r", "\n")
    size = progress.size_text(path.stat().st_size)
    assert re.search(r"^\S? ?reading ━+ ", text, re.M)  # rich's bar, while reading
    assert re.search(rf"^ *read ━+ {re.escape(size)}/{re.escape(size)} · 50,000 rows · [\d,]+ rows/s ", text, re.M)
    assert "\nread 50,000 rows from 1 file" in text and "wrote the bundle" in text
    assert not BEAM_NOISE.search(text)


def run_on_a_terminal(*argv):
    """Runs kdp-beam with stdout and stderr on a pseudo-terminal; (status, what it drew)."""
    leader, follower = pty.openpty()
    env = dict(os.environ, PYTHONPATH=os.getcwd(), COLUMNS="140")
    process = subprocess.Popen([sys.executable, "-m", "kdp_beam", *map(str, argv)], stdin=follower,
                               stdout=follower, stderr=follower, env=env, close_fds=True)
    os.close(follower)
    screen, deadline = b"", time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 1 << 16)
            except OSError:  # the follower side closed: the process is gone
                break
            if not chunk:
                break
            screen += chunk
        elif process.poll() is not None:
            break
    os.close(leader)
    return process.wait(timeout=10), screen.decode("utf-8", errors="replace")


@pytest.mark.parametrize("mode, delay", [
    ("in_memory", 0.2), ("in_memory", 1.5), ("multi_processing", 0.2),
    # A signal to the main process only (not a terminal's Ctrl-C, which reaches the workers
    # too): Beam's clean-up waits for the workers, and the process ends after the grace
    # period (cli._abandon), its staging directory removed.
    ("multi_processing", 1.5),
])
def test_ctrl_c_during_analyze_is_one_line_and_status_130(tmp_path, mode, delay):
    data = tmp_path / "big.csv"
    with open(data, "w") as f:
        f.write("x,name\n" + "".join(f"{i * 0.5},n{i % 997}\n" for i in range(1_500_000)))
    out = tmp_path / "out"
    argv = ["analyze", "--features", write(tmp_path / "f.json", json.dumps(FEATURES)), "--input", data,
            "--output", out, "--split-size", "1000000", f"--direct_running_mode={mode}", "--direct_num_workers=2"]
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    process = subprocess.Popen([sys.executable, "-m", "kdp_beam", *map(str, argv)], stderr=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while not [p for p in os.listdir(tmp_path) if p.startswith("out") or p.startswith(".out")]:
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
            time.sleep(0.05)  # the bundle's staging directory: the job has started
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    if process.returncode == 0 and "wrote the bundle" in err:
        pytest.skip("the job ended before the interrupt")  # a fast machine
    assert_one_error_line(process.returncode, err, r"^kdp-beam: error: interrupted$", expected_status=130)
    assert "Exception in thread" not in err and "internal error" not in err
    assert not [p for p in os.listdir(tmp_path) if "kdp-beam-tmp" in p]  # no staging left


def test_a_storage_client_error_is_one_line_of_the_environment_not_an_internal_error():
    """gs:// with no network ends in google.api_core's RetryError (not an OSError): it was
    "internal error" with status 1, which a CI gate reads as a bug (or, for validate, as
    drift)."""
    from google.api_core.exceptions import RetryError

    from kdp_beam.cli import EXIT_ERROR, _error_line

    status, line = _error_line(RetryError("Timeout of 120.0s exceeded", None), verbose=False)
    assert status == EXIT_ERROR
    assert line.startswith("remote storage: RetryError: Timeout of 120.0s exceeded") and "credentials" in line
