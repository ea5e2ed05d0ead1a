"""Opening and matching input files for the line-based readers (CSV, JSON Lines):
compressed files, truncated streams, headers, huge fields, pipes and relative globs."""

import bz2
import contextlib
import csv
import gzip
import io
import json
import lzma
import os
import signal
import subprocess
import sys
import zlib

import pyarrow as pa
import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from kdp_beam.bundle.loader import load_bundle
from kdp_beam.bad_records import BadRecord
from kdp_beam.errors import InputDataError
from kdp_beam.tools.infer import infer_features
from kdp_beam.io.csv import _ReadCsvRange, _records_skipping_bad, read_header
from kdp_beam.io.files import matched_paths
from kdp_beam.io.jsonl import _ReadJsonRange
from kdp_beam.job import run_analysis
from kdp_beam.spec import FeatureSpec
from tests.io.helpers import split_outputs
from tests.io.test_formats import comparable

SPEC = FeatureSpec({"x": "float_normalized", "n": "integer_categorical", "s": "string_categorical"})
COMPRESS = {"gz": gzip.compress, "bz2": bz2.compress}
OTHER_COMPRESS = {"xz": lzma.compress, "zst": zstandard.ZstdCompressor().compress, "deflate": zlib.compress}
DECOMPRESS = {"gz": gzip.decompress, "bz2": bz2.decompress}


def csv_text(rows):
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([("x", "n", "s")] + rows)
    return out.getvalue()


def jsonl_text(rows):
    return "".join(json.dumps(dict(zip("xns", (float(x), int(n), s)))) + "\n" for x, n, s in rows)


ROWS = [(f"{i}.5", str(i), ["a", "b,c", 'q"d', "new\nline", ""][i % 5]) for i in range(40)]


def read(path, skip):
    """The rows (as dicts) and bad records the reader's DoFn yields for the whole file."""
    mode = "skip" if skip else "fail"
    dofn = (_ReadCsvRange if ".csv" in str(path) else _ReadJsonRange)(SPEC, 256, mode)
    batches, bad = split_outputs(dofn.process((str(path), 0, None)))
    return [row for batch in batches for row in batch.to_pylist()], bad


# --- compressed files ---------------------------------------------------------------------


def test_compressed_csv_gives_the_statistics_of_the_uncompressed_file(tmp_path):
    text = csv_text(ROWS).encode()
    dirty = csv_text(ROWS + [("oops", "1", "a")]).encode()  # skip mode: the record path too
    files = {"plain.csv": text, "a.csv.gz": gzip.compress(text), "a.csv.bz2": bz2.compress(text),
             "dirty.csv.gz": gzip.compress(dirty), "dirty.csv.bz2": bz2.compress(dirty)}
    bundles = {}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        mode = "skip" if name.startswith("dirty") else "fail"
        summary = run_analysis(SPEC, str(tmp_path / name), str(tmp_path / f"b-{name}"), on_bad_record=mode)
        assert summary["rows_read"] == len(ROWS), name
        bundles[name] = load_bundle(str(tmp_path / f"b-{name}"))
        assert comparable(bundles[name]) == comparable(bundles["plain.csv"]), name
    assert [bundles[name].bad_records["count"] for name in files] == [0, 0, 0, 1, 1]


@pytest.mark.parametrize("compression", ["gz", "bz2"])
def test_compressed_csv_and_json_lines_read_the_rows_python_reads(tmp_path, compression):
    expected = [{"x": float(x), "n": int(n), "s": s or None} for x, n, s in ROWS]
    for name, text in (("f.csv", csv_text(ROWS)), ("f.jsonl", jsonl_text(ROWS))):
        path = tmp_path / f"{name}.{compression}"
        path.write_bytes(COMPRESS[compression](text.encode()))
        for skip in (False, True):
            rows, bad = read(path, skip)
            assert not bad
            assert [{**r, "s": r["s"] or None} for r in rows] == expected, (name, skip)


@pytest.mark.parametrize("compression", sorted(OTHER_COMPRESS))
def test_every_compression_beam_detects_is_read_and_its_truncation_caught(tmp_path, compression):
    text = csv_text(ROWS).encode()
    data = OTHER_COMPRESS[compression](text)
    path = tmp_path / f"f.csv.{compression}"
    path.write_bytes(data)
    assert len(read(path, False)[0]) == len(ROWS)
    for cut in (1, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(InputDataError, match="truncated"):
            read(path, True)


def test_infer_reads_compressed_csv(tmp_path):
    (tmp_path / "f.csv.gz").write_bytes(gzip.compress(csv_text(ROWS).encode()))
    (tmp_path / "g.csv.bz2").write_bytes(bz2.compress(csv_text(ROWS).encode()))
    for name in ("f.csv.gz", "g.csv.bz2"):
        features = infer_features(str(tmp_path / name))["features"]
        assert features["x"] == "float_normalized" and set(features) == {"x", "n", "s"}


def test_concatenated_gzip_members_are_read_as_one_file(tmp_path):
    text = csv_text(ROWS)
    cut = text.index("\n20.5")  # gzip -c a >> f, as the gzip tool reads it
    path = tmp_path / "f.csv.gz"
    path.write_bytes(gzip.compress(text[:cut].encode()) + gzip.compress(text[cut:].encode()))
    assert len(read(path, False)[0]) == len(ROWS)


# --- truncated compressed streams ---------------------------------------------------------


def truncated_outcome(path, skip):
    """The reader's rows, or the InputDataError it raised."""
    try:
        return read(path, skip)[0]
    except InputDataError as e:
        return e


def python_reads_whole(compression, data, text):
    try:
        return DECOMPRESS[compression](data) == text
    except (EOFError, OSError, ValueError):  # each module's ways of saying "cut short"
        return False


def check_cut(path, cut_data, compression, text, skip):
    """The oracle: Python's gzip/bz2 module. A cut stream is truncated (the reader fails
    saying so, naming the file) unless Python reads it whole; then both read the same."""
    path.write_bytes(cut_data)
    outcome = truncated_outcome(path, skip)
    if python_reads_whole(compression, cut_data, text):
        assert not isinstance(outcome, InputDataError), outcome
        assert len(outcome) == len(ROWS[:8])
    else:
        assert isinstance(outcome, InputDataError), f"cut at {len(cut_data)}: read {outcome}"
        assert "truncated" in str(outcome) and str(path) in str(outcome)
        assert "Re-create the file" in str(outcome)


@pytest.mark.parametrize("compression", ["gz", "bz2"])
@pytest.mark.parametrize("name", ["f.csv", "f.jsonl"])
def test_a_stream_cut_anywhere_is_truncated_in_both_modes(tmp_path, compression, name):
    text = (csv_text if name == "f.csv" else jsonl_text)(ROWS[:8]).encode()
    data = COMPRESS[compression](text)
    path = tmp_path / f"{name}.{compression}"
    for cut in range(1, len(data) + 1):  # every position: header, blocks, trailer
        for skip in (False, True):
            check_cut(path, data[:cut], compression, text, skip)


@given(
    rows=st.lists(st.tuples(st.integers(-999, 999), st.text("ab,\"\n é", max_size=6)), max_size=12),
    compression=st.sampled_from(["gz", "bz2"]),
    name=st.sampled_from(["f.csv", "f.jsonl"]),
    cut=st.floats(0, 1),
    skip=st.booleans(),
)
def test_generated_cut_streams_are_truncated_or_read_whole(tmp_path_factory, rows, compression, name, cut, skip):
    rows = [(str(n), str(n), s) for n, s in rows]
    text = (csv_text if name == "f.csv" else jsonl_text)(rows).encode()
    data = COMPRESS[compression](text)
    path = tmp_path_factory.mktemp("cut") / f"{name}.{compression}"
    path.write_bytes(data[: max(1, round(cut * len(data)))])
    outcome = truncated_outcome(path, skip)
    if python_reads_whole(compression, path.read_bytes(), text):
        assert len(outcome) == len(rows)
    else:
        assert isinstance(outcome, InputDataError) and "truncated" in str(outcome)


@pytest.mark.parametrize("name", ["f.csv.gz", "f.jsonl.gz"])
@pytest.mark.parametrize("mode", ["fail", "skip"])
def test_a_stream_cut_at_a_line_end_fails_the_job(tmp_path, name, mode):
    """Flushed at a line end, then cut: every row so far decompresses and parses."""
    text = (csv_text if name == "f.csv.gz" else jsonl_text)(ROWS).encode()
    first_half = text[: text.index(b"\n", len(text) // 2) + 1]
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    (tmp_path / name).write_bytes(packer.compress(first_half) + packer.flush(zlib.Z_SYNC_FLUSH))
    with pytest.raises(InputDataError, match=rf"{name}: the gzip data is truncated: it ends after "
                       f"{len(first_half):,} bytes of data"):
        run_analysis(SPEC, str(tmp_path / name), str(tmp_path / "b"), on_bad_record=mode)


def test_damaged_compressed_data_is_a_clear_error(tmp_path):
    data = bytearray(gzip.compress(csv_text(ROWS).encode()))
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "f.csv.gz").write_bytes(bytes(data))
    with pytest.raises(InputDataError, match=r"f\.csv\.gz: the gzip data is damaged after .* Re-create"):
        read(tmp_path / "f.csv.gz", True)


# --- headers ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["fail", "skip"])
def test_a_declared_column_named_twice_in_the_header_is_an_error(tmp_path, mode):
    path = tmp_path / "d.csv"
    path.write_text("x,n,s,n\n1.5,1,a,2\n")
    message = r"d\.csv: the CSV header names the declared column 'n' 2 times \(columns \[2, 4\]\)"
    with pytest.raises(InputDataError, match=message + ".*Rename or remove"):
        run_analysis(SPEC, str(path), str(tmp_path / "b"), on_bad_record=mode)  # before the job
    with pytest.raises(InputDataError, match=message):
        read(path, mode == "skip")  # and on the workers, for files the launcher skips


def test_an_undeclared_column_named_twice_is_harmless(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("z,x,n,z,s,\n9,1.5,1,8,a,\n9,oops,2,8,b,\n")
    assert read_header(str(path)) == ["z", "x", "n", "z", "s", ""]
    rows, bad = read(path, True)
    assert rows == [{"x": 1.5, "n": 1, "s": "a"}] and [b.row for b in bad] == [2]


HEADERS = ["x,n,s", "x,n,s\n", "x,n,s\r\n", "\ufeffx,n,s", '"x","n",s', "x,n,s\n\n"]


@pytest.mark.parametrize("header", HEADERS)
@pytest.mark.parametrize("skip", [False, True])
def test_a_header_only_file_adds_no_rows_and_says_so(tmp_path, caplog, header, skip):
    path = tmp_path / "h.csv"
    path.write_bytes(header.encode())
    with caplog.at_level("WARNING", logger="kdp_beam.io.csv"):
        assert read(path, skip) == ([], [])
    assert [r.getMessage() for r in caplog.records] == [f"kdp_beam: {path} has a header and no rows; it adds no rows"]


def test_header_only_files_in_a_job_add_no_rows(tmp_path):
    for i, header in enumerate(HEADERS):
        (tmp_path / f"h{i}.csv").write_bytes(header.encode())
    summary = run_analysis(SPEC, str(tmp_path / "*.csv"), str(tmp_path / "b"))
    assert summary["rows_read"] == 0 and summary["files_read"] == len(HEADERS)


# --- huge fields --------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1 << 20, 5 << 20])
def test_huge_fields_read_the_same_on_both_paths(tmp_path, size):
    """Python's csv module refuses fields over 128 KiB by default, and pyarrow a record
    over two of its blocks (256 bytes here, 4 MiB by default); both are read."""
    huge = "y" * (size - 3) + '"\n,'  # quoted, with a quote, a newline and a comma
    text = csv_text([("1.5", "1", huge), ("2.5", "2", "b")])
    expected = [{"x": 1.5, "n": 1, "s": huge}, {"x": 2.5, "n": 2, "s": "b"}, {"x": 4.5, "n": 4, "s": "d"}]
    (tmp_path / "clean.csv").write_text(text)
    assert read(tmp_path / "clean.csv", False) == (expected[:2], [])  # the fast path alone
    path = tmp_path / "f.csv"
    path.write_text(text + "oops,3,c\n4.5,4,d\n")
    with pytest.raises(InputDataError, match=r"f\.csv: row 3 \(line 5\), column 'x': cannot read 'oops'"):
        read(path, False)  # the error names the bad row, not the huge one
    rows, bad = read(path, True)  # the fast path, then record by record after row 2
    assert rows == expected and [(b.row, b.line, b.reason) for b in bad] == [(3, 5, "unparseable_number")]
    # The record path alone, from the first row, reads the huge field the same.
    kinds = {"x": "float", "n": "integer", "s": "string"}
    elements = list(_records_skipping_bad(str(path), ["x", "n", "s"], 0, None, 0, kinds))
    assert [r for e in elements if not isinstance(e, BadRecord) for r in e.to_pylist()] == expected


# --- pipes --------------------------------------------------------------------------------


@contextlib.contextmanager
def deadline(seconds):
    """Fails instead of hanging: opening a pipe nothing writes to blocks."""

    def expire(*_):
        raise TimeoutError(f"blocked for {seconds} s, e.g. opening a pipe")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_pipe_is_refused_before_the_job_saying_to_write_a_file(tmp_path):
    fifo = str(tmp_path / "data.csv")
    os.mkfifo(fifo)  # nothing writes to it: only its kind may be looked at
    message = r"data\.csv is not a regular file \(it is a pipe.*Write the data to a file first"
    with deadline(30), pytest.raises(InputDataError, match=message):
        run_analysis(SPEC, fifo, str(tmp_path / "b"))
    with deadline(30), pytest.raises(InputDataError, match=message):
        infer_features(fifo)


def test_process_substitution_on_the_command_line_is_one_clear_error(tmp_path):
    (tmp_path / "a.csv").write_text(csv_text(ROWS))
    (tmp_path / "f.json").write_text(json.dumps({"features": {"x": "float_normalized"}}))
    command = (f"{sys.executable} -m kdp_beam analyze --features f.json --format csv "
               "--input <(cat a.csv) --output out")
    done = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "kdp-beam: error: /dev/fd/" in done.stderr and "is not a regular file" in done.stderr
    assert not (tmp_path / "out").exists()


# --- relative globs -----------------------------------------------------------------------


def test_a_glob_without_a_directory_matches_in_the_current_directory(tmp_path, monkeypatch):
    for i in range(2):
        (tmp_path / f"part-{i}.csv").write_text(csv_text(ROWS[i::2]))
    monkeypatch.chdir(tmp_path)
    assert sorted(matched_paths("*.csv")) == ["./part-0.csv", "./part-1.csv"]
    assert sorted(matched_paths(["part-?.csv", "part-1.csv"])) == ["./part-0.csv", "./part-1.csv", "part-1.csv"]
    summary = run_analysis(SPEC, "*.csv", str(tmp_path / "b"))
    assert summary["rows_read"] == len(ROWS) and summary["files_read"] == 2
    assert set(infer_features("part-*.csv")["features"]) == {"x", "n", "s"}


# --- file:// URLs and names with glob characters ----------------------------------------


def test_file_urls_are_local_paths_for_analyze_and_infer(tmp_path):
    directory = tmp_path / "a dir"
    directory.mkdir()
    (directory / "base.csv").write_text(csv_text(ROWS))
    url = (directory / "base.csv").as_uri()  # file:///.../a%20dir/base.csv
    assert list(matched_paths(url)) == [str(directory / "base.csv")]
    assert list(matched_paths("file://localhost" + url.removeprefix("file://"))) == [str(directory / "base.csv")]
    summary = run_analysis(SPEC, url, str(tmp_path / "b"))
    assert summary["rows_read"] == len(ROWS) and load_bundle(str(tmp_path / "b")).row_count == len(ROWS)
    assert set(infer_features(url.replace("base", "b*"))["features"]) == {"x", "n", "s"}
    with pytest.raises(InputDataError, match="names a file on this machine, not on elsewhere"):
        list(matched_paths("file://elsewhere/data.csv"))


def test_an_existing_file_named_with_glob_characters_is_matched_literally(tmp_path, monkeypatch):
    for name in ("d[1].csv", "d1.csv", "what?.csv", "star*.csv"):
        (tmp_path / name).write_text(csv_text(ROWS[:3]))
    for name in ("d[1].csv", "what?.csv", "star*.csv"):
        assert list(matched_paths(str(tmp_path / name))) == [str(tmp_path / name)]
    monkeypatch.chdir(tmp_path)
    assert list(matched_paths("d[1].csv")) == ["./d[1].csv"]
    assert run_analysis(SPEC, "d[1].csv", str(tmp_path / "b"))["rows_read"] == 3
    assert sorted(matched_paths("d[1x].csv")) == ["./d1.csv"]  # not a file: still a glob
    with pytest.raises(InputDataError, match=r"no file matches .*'./e\[1\].csv'.*glob characters.*\[\[\]"):
        run_analysis(SPEC, "e[1].csv", str(tmp_path / "c"))
    with pytest.raises(InputDataError, match=r"no file matches .*nothing.csv'; check the path$"):
        run_analysis(SPEC, "nothing.csv", str(tmp_path / "c"))


# --- messages that say what to do ---------------------------------------------------------


@pytest.mark.parametrize("skip", [False, True])
def test_windows_1252_text_says_to_re_encode_it(tmp_path, skip):
    path = tmp_path / "w.csv"
    path.write_bytes(csv_text(ROWS[:3]).replace(",a\n", ",café\n").encode("cp1252"))
    with pytest.raises(InputDataError, match=r"w\.csv: row 1 \(line 2\), column '\w+': not valid UTF-8\. .*iconv -f cp1252"):
        infer_features(str(path))
    if not skip:
        with pytest.raises(InputDataError, match=r"row 1 \(line 2\), column '\w+': not valid UTF-8\. .*iconv -f cp1252"):
            run_analysis(SPEC, str(path), str(tmp_path / "b"))


def test_bytes_that_are_not_utf8_count_only_in_declared_columns_on_both_paths(tmp_path):
    # pyarrow's fast path does not read an undeclared column, so its bytes are not checked;
    # the record-by-record path (after a bad record in skip mode, or naming one) does the
    # same: the row is kept, and a later bad number is the record named.
    spec = FeatureSpec({"x": "float_normalized", "name": "string_categorical"})
    lines = [b"x,name,note"] + [b"%d.5,n%d,ok" % (i, i % 7) for i in range(300)]
    lines[100] = b"100.5,n2,caf\xe9"  # not UTF-8, in the undeclared column
    path = tmp_path / "d.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert run_analysis(spec, str(path), str(tmp_path / "a"))["rows_read"] == 300
    skipped = lines[:50] + [b"1.5,only-two"] + lines[50:]  # a wrong field count first
    path.write_bytes(b"\n".join(skipped) + b"\n")
    run_analysis(spec, str(path), str(tmp_path / "b"), on_bad_record="skip")
    bundle = load_bundle(str(tmp_path / "b"))
    assert bundle.row_count == 300 and bundle.bad_records["by_reason"] == {"wrong_field_count": 1}
    late = lines[:200] + [b"abc,n1,ok"] + lines[200:]  # an unparseable number after it
    path.write_bytes(b"\n".join(late) + b"\n")
    with pytest.raises(InputDataError, match=r"d\.csv: row 200 \(line 201\), column 'x'"):
        run_analysis(spec, str(path), str(tmp_path / "c"))
    declared = lines[:10] + [b"10.5,caf\xe9,ok"] + lines[11:]  # in a declared column: named
    path.write_bytes(b"\n".join(declared) + b"\n")
    with pytest.raises(InputDataError, match=r"row 10 \(line 11\), column 'name': not valid UTF-8"):
        run_analysis(spec, str(path), str(tmp_path / "d"))


@pytest.mark.parametrize("delimiter, named", [(";", "';'"), ("\t", "a tab")])
def test_a_file_with_another_delimiter_is_named_as_such(tmp_path, delimiter, named):
    path = tmp_path / "d.csv"
    path.write_text(csv_text(ROWS[:3]).replace(",", delimiter))
    with pytest.raises(InputDataError, match=rf"not in the CSV header .*seems to use {named} as its delimiter"):
        run_analysis(SPEC, str(path), str(tmp_path / "b"))
    path.write_text(csv_text(ROWS[:3]).replace("x,n,s", "x;y,z"))  # two fields: comma-separated
    with pytest.raises(InputDataError, match=r"not in the CSV header .*declarations\.$"):
        run_analysis(SPEC, str(path), str(tmp_path / "b"))
