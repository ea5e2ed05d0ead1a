"""JSON Lines is one object per line: pyarrow's fast reading, which takes any stream of
objects, is kept only when it cannot have joined or split lines. An object spread over two
lines and two objects on one line, in the same block, must not cancel out in the counts."""

import json

import numpy as np
import pytest

from kdp_beam.errors import InputDataError
from kdp_beam.io.jsonl import _ReadJsonRange
from kdp_beam.spec import FeatureSpec
from tests.io.helpers import split_outputs

SPEC = FeatureSpec({"x": "float_normalized", "c": "string_categorical"})


def oracle(lines):
    """(rows, bad line numbers) by Python's json, line by line."""
    rows, bad = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            bad.append(number)
            continue
        if isinstance(value, dict):
            rows.append({"x": value.get("x"), "c": value.get("c")})
        else:
            bad.append(number)
    return rows, bad


def read(path, mode):
    return split_outputs(_ReadJsonRange(SPEC, 1 << 20, mode).process((str(path), 0, None)))


CANCELLING = ['{"x": 1, "c": "a"}{"x": 2, "c": "b"}', '{"x": 3, "n":', '{"y": 2}, "c": "z"}', '{"x": 4, "c": "d"}']


def test_a_spread_object_and_two_on_a_line_do_not_cancel_out(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_text("\n".join(CANCELLING) + "\n")
    batches, bad = read(path, "skip")
    assert [row for b in batches for row in b.to_pylist()] == [{"x": 4.0, "c": "d"}]
    assert [record.line for record in bad] == [1, 2, 3] == oracle(CANCELLING)[1]
    with pytest.raises(InputDataError, match="line 1"):
        read(path, "fail")


@pytest.mark.parametrize("seed", range(6))
def test_generated_mixes_read_as_json_reads_them_line_by_line(tmp_path, seed):
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(400):
        kind = rng.integers(0, 10)
        if kind == 0:
            lines += ['{"x": %d, "n":' % i, '{"y": 2}, "c": "z%d"}' % i]  # spread over two lines
        elif kind == 1:
            lines.append('{"x": %d, "c": "a"}  {"x": 1, "c": "b"}' % i)  # two on one line
        elif kind == 2:
            lines.append('{"x": %d, "c": "t"}\r' % i)  # CRLF
        elif kind == 3:
            lines.append("   ")
        else:
            lines.append(json.dumps({"x": i / 2, "c": f"t{i % 3}"}))
    path = tmp_path / "g.jsonl"
    path.write_bytes(("\n".join(lines)).encode())  # the last line without its line end
    rows, bad_lines = oracle([line.rstrip("\r") for line in lines])
    batches, bad = read(path, "skip")
    got = [row for b in batches for row in b.to_pylist()]
    assert got == [{"x": float(r["x"]), "c": r["c"]} for r in rows]
    assert [record.line for record in bad] == bad_lines
