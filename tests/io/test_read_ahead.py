"""read_ahead: a reader's items in order from a thread, its error after them, and a
thread that is gone when the block is left, however early."""

import csv
import threading

import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from kdp_beam.io.read_ahead import read_ahead


def _threads():
    return [t for t in threading.enumerate() if t.name == "kdp_beam-read-ahead"]


def test_pyarrow_batches_arrive_in_order_as_read_without_it(tmp_path):
    path = tmp_path / "data.csv"
    rows = [[str(i), f"token{i % 7}", repr(i / 3)] for i in range(50_000)]
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([["id", "tok", "x"], *rows])

    def batches():
        return pa_csv.open_csv(path, read_options=pa_csv.ReadOptions(block_size=1 << 16))

    with read_ahead(batches) as ahead:
        read = [batch for batch in ahead]
    assert len(read) > 10  # many batches, so the thread did run ahead of the caller
    table = pa.Table.from_batches(read)
    assert table.column("id").to_pylist() == [int(r[0]) for r in rows]  # the csv module's
    assert table.column("tok").to_pylist() == [r[1] for r in rows]
    assert table.column("x").to_pylist() == [float(r[2]) for r in rows]
    assert not _threads()


def test_an_error_reaches_the_caller_after_the_items_before_it():
    def produce():
        yield from range(5)
        raise pa.ArrowInvalid("CSV parse error: row 6")

    got = []
    with pytest.raises(pa.ArrowInvalid, match="row 6"):
        with read_ahead(produce) as ahead:
            for item in ahead:
                got.append(item)
    assert got == [0, 1, 2, 3, 4]
    assert not _threads()


@pytest.mark.parametrize("depth", [1, 3])
def test_leaving_early_stops_the_thread_a_few_items_ahead(depth):
    made = []
    closed = threading.Event()

    def produce():
        try:
            for i in range(1_000_000):
                made.append(i)
                yield i
        finally:
            closed.set()  # the producer's own clean-up ran too

    with read_ahead(produce, depth=depth) as ahead:
        for item in ahead:
            if item == 10:
                break
    assert not _threads()  # joined on leaving: what it read from may be closed now
    assert closed.is_set()
    # At most `depth` items waiting and one being made beyond the caller's 11.
    assert 11 <= len(made) <= 11 + depth + 1


def test_an_error_of_the_caller_stops_the_thread():
    def produce():
        yield from range(1_000_000)

    with pytest.raises(ZeroDivisionError):
        with read_ahead(produce) as ahead:
            for item in ahead:
                1 / (5 - item)
    assert not _threads()


def test_json_lines_read_ahead_keeps_rows_and_bad_records_in_file_order(tmp_path):
    """The JSON Lines reader parses its blocks ahead: in skip mode the rows and the bad
    records of many small blocks arrive in the file's order, as json reads them; in fail
    mode the first bad line is the one named, however far ahead the thread read."""
    import json

    from kdp_beam.errors import InputDataError
    from kdp_beam.io.jsonl import _ReadJsonRange
    from kdp_beam.spec import FeatureSpec
    from tests.io.helpers import split_outputs

    path = tmp_path / "data.jsonl"
    lines = [json.dumps({"x": "bad" if i % 97 == 96 else i / 4, "t": f"tok{i % 5}"}) for i in range(3000)]
    path.write_text("\n".join(lines) + "\n")
    spec = FeatureSpec({"x": "float_normalized", "t": "string_categorical"})
    good = [json.loads(line) for line in lines if not isinstance(json.loads(line)["x"], str)]
    bad_lines = [i + 1 for i, line in enumerate(lines) if isinstance(json.loads(line)["x"], str)]

    batches, bad = split_outputs(_ReadJsonRange(spec, 512, "skip").process((str(path), 0, None)))
    assert pa.Table.from_batches(batches).to_pylist() == good
    assert [record.line for record in bad] == bad_lines
    with pytest.raises(InputDataError, match=f"line {bad_lines[0]}, key 'x'"):
        list(_ReadJsonRange(spec, 512, "fail").process((str(path), 0, None)))
    assert not _threads()
