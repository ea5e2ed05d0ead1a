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
