"""A range's records, its bounds, quote count and hex flag: MappedRange (a local
uncompressed file, memory-mapped) and RecordRange (a stream: compressed or remote files)
against each other and against the definition, computed here from the bytes: a record
starts at byte 0 or after a newline, and a range owns the records that start in it."""

import collections
import csv
import gzip
import os
import random

import pyarrow as pa
import pytest

from kdp_beam.bundle.loader import load_bundle
from kdp_beam.errors import InputDataError
from kdp_beam.io.files import open_input
from kdp_beam.io.ranges import MappedRange, RecordRange, open_range
from kdp_beam.job import run_analysis
from kdp_beam.spec import FeatureSpec


def expected(data, start, end):
    """(first, next, owns_nothing, owned bytes) of [start, end) by the definition."""
    starts = [0] + [i + 1 for i, byte in enumerate(data) if byte == ord("\n")]
    first = min((s for s in starts if s >= start), default=len(data))
    nothing = start > 0 and (first == len(data) or (end is not None and first >= end))
    following = None if end is None or nothing else min((s for s in starts if s >= end), default=None)
    stop = len(data) if following is None else following
    return first, following, nothing, b"" if nothing else data[first:stop]


def streamed(stream):
    chunks = []
    while chunk := stream.source.read(1 << 10):
        chunks.append(bytes(chunk))
    return b"".join(chunks)


def documents(seed):
    """Odd-but-valid CSV bytes: quoted newlines, CRLF and lone CR, blank lines, a BOM, a
    stray quote, hex-looking text, a record longer than a range, no final newline."""
    rng = random.Random(seed)
    fields = ['"a\nb"', "0x1F", '5"', '""', "", "x" * 300, '"q""uote"', "\r", "0", "X", "\ufeffé"]
    lines = []
    for _ in range(rng.randint(0, 40)):
        lines.append(",".join(rng.choice(fields) for _ in range(rng.randint(1, 4))))
    text = rng.choice(["\n", "\r\n"]).join(lines) + rng.choice(["", "\n", "\r\n", "\n\n"])
    return text.encode("utf-8")


@pytest.mark.parametrize("seed", range(40))
def test_mapped_and_streamed_ranges_own_the_records_that_start_in_them(tmp_path, seed):
    data = documents(seed)
    path = tmp_path / "data.csv"
    path.write_bytes(data)
    size = len(data)
    for split in sorted({7, 64, 301, max(size, 1)} | ({1, 2} if size < 600 else set())):
        bounds = [(s, min(s + split, size)) for s in range(0, size, split)] or [(0, None)]
        owned = b""
        for start, end in bounds + [(0, None)]:
            first, following, nothing, mine = expected(data, start, end)
            mapped = MappedRange(str(path), start, end, watch_hex=True, count_quotes=True)
            with open(path, "rb") as raw:
                stream = RecordRange(raw, start, end, watch_hex=True, count_quotes=True, keep_bom=True)
                got_stream = b"" if stream.owns_nothing else streamed(stream)
            got_mapped = b"" if mapped.owns_nothing else streamed(mapped)
            where = (seed, split, start, end)
            assert (mapped.first, mapped.next, mapped.owns_nothing) == (first, following, nothing), where
            if not nothing:
                assert (stream.first, stream.next) == (first, following), where
            assert stream.owns_nothing == nothing, where
            # pyarrow would drop a leading byte order mark: given from the newline before.
            given = b"\n" + mine if start and mine.startswith(b"\xef\xbb\xbf") else mine
            assert got_mapped == got_stream == given, where
            assert mapped.quotes == stream.quotes == mine.count(b'"'), where
            assert mapped.hex == stream.hex == (b"0x" in mine or b"0X" in mine), where
            mapped.close()
            if end is not None:
                owned += mine
        if bounds[0][1] is not None:
            assert owned == data, (seed, split)  # the ranges together: every byte once


def test_open_range_maps_local_uncompressed_files_and_streams_the_others(tmp_path):
    data = b'a,b\n1,"x\ny"\n2,z\n'
    plain, packed = tmp_path / "d.csv", tmp_path / "d.csv.gz"
    plain.write_bytes(data)
    packed.write_bytes(gzip.compress(data))
    with open_range(str(plain), 0, None, count_quotes=True) as mapped:
        assert isinstance(mapped, MappedRange) and isinstance(mapped.source, pa.NativeFile)
        assert streamed(mapped) == data and mapped.quotes == 2
    with open_range(str(packed), 0, None, count_quotes=True) as stream:
        assert isinstance(stream, RecordRange)
        assert streamed(stream) == data and stream.quotes == 2
    with open_input(str(packed)) as raw:  # what the stream decompresses
        assert raw.read() == data


def test_a_closed_map_leaves_the_bytes_given_out_readable(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"a\n1\n2\n")
    with open_range(str(path), 2, 4) as mapped:
        source = mapped.source
    assert source.read() == b"1\n"  # pyarrow's reader may still hold it after the range


@pytest.mark.parametrize("start", [0, 5, 9, 15])
def test_a_file_shorter_than_its_range_is_an_error_not_fewer_rows(tmp_path, start):
    path = tmp_path / "d.csv"
    path.write_bytes(b"a,b\n1,2\n3,4\n")  # 12 bytes; the ranges were cut when it had 20
    with pytest.raises(InputDataError, match=r"d.csv changed while it was read \(it is now 12 bytes"):
        MappedRange(str(path), start, 20)
    with open(path, "rb") as raw, pytest.raises(InputDataError, match="changed while it was read"):
        stream = RecordRange(raw, start, 20, path=str(path))
        streamed(stream)


@pytest.mark.parametrize("cut", [1, 100])  # within the last page: past it, SIGBUS
def test_a_file_cut_while_its_range_is_read_is_an_error_not_nul_bytes(tmp_path, cut):
    # A map reads the tail of a cut file's last page as NUL bytes, not SIGBUS.
    path = tmp_path / "d.csv"
    path.write_bytes(b"a,b\n" + b"1234,5678\n" * 1000)
    with pytest.raises(InputDataError, match=r"d.csv changed while it was read \(its size, modification time"):
        with open_range(str(path), 0, None, count_quotes=True) as mapped:
            os.truncate(path, path.stat().st_size - cut)
            assert b"\0" in streamed(mapped)[-cut:]  # what would have been read


def test_a_file_rewritten_while_its_range_is_read_is_an_error(tmp_path):
    path, other = tmp_path / "d.csv", tmp_path / "new.csv"
    path.write_bytes(b"a\n1\n")
    other.write_bytes(b"a\n2\n")
    with pytest.raises(InputDataError, match="changed while it was read"):
        with open_range(str(path), 0, None):
            os.replace(other, path)  # same size: another inode


def test_a_file_that_says_it_is_empty_is_streamed_not_mapped():
    with open_range("/proc/self/status", 0, None) as stream:  # size 0, content
        assert isinstance(stream, RecordRange) and b"Name:" in streamed(stream)


def test_a_value_starting_with_u_feff_keeps_it_at_any_split(tmp_path):
    # pyarrow drops a byte order mark at the start of what it reads: at a range's start it
    # would have dropped the value's first character.
    values = ["\ufeffz" if i % 3 else "z" for i in range(200)]
    path = tmp_path / "d.csv"
    path.write_text("c,x\n" + "".join(f"{v},{i}\n" for i, v in enumerate(values)), encoding="utf-8")
    with open(path, newline="", encoding="utf-8-sig") as f:
        expected = collections.Counter(row["c"] for row in csv.DictReader(f))
    spec = FeatureSpec({"c": "string_categorical", "x": "float_normalized"})
    for split in (0, 5, 7, 13, 64):
        run_analysis(spec, str(path), str(tmp_path / f"b{split}"), split_size=split)
        stats = load_bundle(str(tmp_path / f"b{split}")).features["c"]
        assert dict(zip(stats["vocabulary"], stats["vocabulary_counts"])) == expected, split
