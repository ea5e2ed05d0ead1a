"""The vocabulary and token-state files' lines (kdp_beam.bundle.writer._vocabulary_bytes,
formatted column by column): the bytes json.dumps(row, ensure_ascii=False) writes per
row, on generated columns of every kind the files hold and others."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from kdp_beam.bundle.writer import _vocabulary_bytes


def per_row(columns):
    return "".join(json.dumps(list(row), ensure_ascii=False) + "\n" for row in zip(*columns)).encode()


ANY = st.one_of(
    st.text(), st.integers(), st.booleans(), st.floats(), st.none(), st.lists(st.integers(), max_size=3)
)
KINDS = [st.text(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(), ANY]


@st.composite
def tables(draw):
    rows = draw(st.integers(0, 20))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=4))
    return [draw(st.lists(kind, min_size=rows, max_size=rows)) for kind in kinds]


@settings(max_examples=300, deadline=None)
@given(tables())
def test_the_lines_are_json_dumps_of_each_row(columns):
    assert _vocabulary_bytes(columns) == per_row(columns)


def test_every_character_json_escapes_and_ints_beyond_float():
    tokens = [chr(c) for c in range(0x2FF)] + ['"', "\\", "\u2028", "\u2029", "\U0001F600", "a\x00b", "\x7f", "é\u0301"]
    counts = [2**64 + i if i % 2 else -i for i in range(len(tokens))]
    assert _vocabulary_bytes([tokens, counts]) == per_row([tokens, counts])
    assert _vocabulary_bytes([[True, False, 1], [1, 2, 3]]) == per_row([[True, False, 1], [1, 2, 3]])  # not ints
