"""One rule for numbers as text (kdp_beam.numbers), wherever they are read: pyarrow's fast
CSV path, the record-by-record path (skip mode, error locating) and the cast of string
columns (in-memory data, kdp_beam.columns) all agree with an independent reading of it."""

import math
import re

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kdp_beam.columns import cast_column, reads_as_number
from kdp_beam.errors import InputDataError
from kdp_beam.io.csv import NULL_VALUES, _ReadCsvRange, _typed_batch
from kdp_beam.numbers import holds_hex
from kdp_beam.spec import FeatureSpec
from tests.io.helpers import split_outputs

NUMBERISH = st.text(alphabet=list("0123456789.eE+-_ \tnaifINFAxX٣\r,\"()"), max_size=8)
ODD = [
    " 6", "6\t", "+5", "1_000", "٣", "1e999", "-.5e-3", "nan", " NA", "9" * 19, "-0", "00012",
    "0x10", "0X1f", " 0x10 ", "-0x10", "0xFFFFFFFFFFFFFFFF", "0x1p3", "1e308", "1e309", "4.9e-324",
    "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
    "18446744073709551616", "nan(1)", "NaN", "-nan", "+inf", "Infinity", "-INFINITY", "1.", ".5",
    "1e", "1E+5", "1.5e-7", "1,5", "1 2", "",
]
TYPES = st.sampled_from([pa.float64(), pa.int64()])
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SPECIAL = re.compile(r"[+-]?(?:nan(?:\([0-9A-Za-z_]*\))?|inf|infinity)", re.IGNORECASE)


def rule(text, arrow_type):
    """The documented rule (kdp_beam/numbers.py), written independently: (is a number,
    its value)."""
    if arrow_type == pa.int64():
        if re.fullmatch(r"-?[0-9]+", text) and -(2**63) <= int(text) < 2**63:
            return True, int(text)
        return False, None
    if _DECIMAL.fullmatch(text):
        return True, float(text)
    if _SPECIAL.fullmatch(text):
        return True, float(text.split("(")[0])
    return False, None


def csv_rule(field, arrow_type):
    """The rule for a CSV field: NULL_VALUES are null, spaces and tabs trimmed."""
    return (True, None) if field in NULL_VALUES else rule(field.strip(" \t"), arrow_type)


def same(got, expected):
    return got == expected or (isinstance(got, float) and math.isnan(got) and math.isnan(expected))


@given(value=NUMBERISH | st.sampled_from(ODD), arrow_type=TYPES)
def test_the_record_path_follows_the_rule_and_in_memory_text_is_refused(value, arrow_type):
    accepted, expected = csv_rule(value, arrow_type)
    assert reads_as_number(value, arrow_type) == accepted
    kind = "float" if arrow_type == pa.float64() else "integer"
    if accepted:
        got = _typed_batch([[value]], {"x": kind}).column(0)[0].as_py()
        assert same(got, expected)
    # In memory (adapt, a Parquet string column), text is never read as a number
    # (kdp_beam.columns.read_problem): the one rule there is to refuse it.
    with pytest.raises(InputDataError, match="is string, which cannot be read as an? (float|integer) feature"):
        cast_column(pa.array([value]), kind, "x", "test")


def quoted(value):
    return '"' + value.replace('"', '""') + '"'


def read_csv(path, arrow_type, skip, block_size=1 << 20):
    """(values, bad records) read by the CSV reader's DoFn (fast path first), or the
    InputDataError it raised."""
    spec = FeatureSpec({"x": "float_normalized" if arrow_type == pa.float64() else "integer_categorical",
                        "s": "string_categorical"})
    try:
        elements = list(_ReadCsvRange(spec, block_size, "skip" if skip else "fail").process((str(path), 0, None)))
    except InputDataError as e:
        return e
    batches, bad = split_outputs(elements)
    return [v for batch in batches for v in batch.column("x").to_pylist()], bad


@given(values=st.lists(NUMBERISH | st.sampled_from(ODD), min_size=1, max_size=6), arrow_type=TYPES,
       skip=st.booleans())
def test_the_fast_path_follows_the_rule(tmp_path_factory, values, arrow_type, skip):
    path = tmp_path_factory.mktemp("numbers") / "f.csv"
    path.write_text("x,s\n" + "".join(f"{quoted(v)},a\n" for v in values), encoding="utf-8")
    judged = [csv_rule(v, arrow_type) for v in values]
    outcome = read_csv(path, arrow_type, skip)
    if not skip and not all(ok for ok, _ in judged):
        first = next(v for v, (ok, _) in zip(values, judged) if not ok)
        assert isinstance(outcome, InputDataError) and repr(first)[:50] in str(outcome)
        return
    got, bad = outcome
    assert [b.record[0] for b in bad] == [v for v, (ok, _) in zip(values, judged) if not ok]
    assert all(b.reason == "unparseable_number" for b in bad)
    expected = [value for ok, value in judged if ok]
    assert len(got) == len(expected) and all(same(g, e) for g, e in zip(got, expected))


@pytest.mark.parametrize("skip", [False, True])
def test_hex_in_an_integer_column_is_refused_after_batches_already_read(tmp_path, skip):
    """pyarrow's integer parser takes 0x10 as 16 and 0xFFFFFFFFFFFFFFFF as -1; kdp_beam
    refuses both, also when they come after whole batches of good rows."""
    rows = [str(i) for i in range(300)]
    rows[150], rows[250] = "0x10", "0xFFFFFFFFFFFFFFFF"
    path = tmp_path / "f.csv"
    path.write_text("x,s\n" + "".join(f"{v},a\n" for v in rows), encoding="utf-8")
    outcome = read_csv(path, pa.int64(), skip, block_size=256)
    if not skip:
        assert isinstance(outcome, InputDataError)
        assert "row 151 (line 152), column 'x': cannot read '0x10' as an integer" in str(outcome)
        return
    got, bad = outcome
    assert [(b.row, b.record[0], b.reason) for b in bad] == [
        (151, "0x10", "unparseable_number"), (251, "0xFFFFFFFFFFFFFFFF", "unparseable_number")
    ]
    assert got == [int(v) for v in rows if not v.startswith("0x")]


def test_hex_in_a_string_column_leaves_integers_read_right(tmp_path):
    """Bytes "0x" anywhere make the reader check integer columns as text: same values."""
    lines = [f"{i},{'0xdeadbeef' if i % 7 == 0 else 'b'}\n" for i in range(-200, 300)]
    path = tmp_path / "f.csv"
    path.write_text("x,s\n" + "".join(lines), encoding="utf-8")
    got, bad = read_csv(path, pa.int64(), skip=False, block_size=256)
    assert not bad and got == list(range(-200, 300))


@given(data=st.lists(st.sampled_from([b"0", b"x", b"X", b"1", b","]), max_size=40).map(b"".join),
       before=st.sampled_from([b"", b"0", b"1"]), dense=st.booleans())
def test_the_byte_search_for_hex_finds_every_0x(data, before, dense):
    data = b"x" * 5000 + data if dense else data  # past the search's few thousand checks
    assert holds_hex(data, before) == any(h in before + data for h in (b"0x", b"0X"))
