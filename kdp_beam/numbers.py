"""The one rule for reading a number from text, in every reader and cast of kdp_beam.

An integer is an optional "-" then ASCII decimal digits (leading zeros allowed), within
int64. A float is what pyarrow's decimal parser reads: an optional sign ("+" or "-"),
digits with an optional decimal point ("1.", ".5"), an optional exponent ("e"/"E", an
optional sign, digits); or nan, inf, infinity in any case with an optional sign ("NaN",
"-Infinity"; also C's "nan(chars)"); beyond float64's range a float is ±inf ("1e999").

Not numbers: hex ("0x10": pyarrow's integer parser takes it, and wraps "0xFFFFFFFFFFFFFFFF"
to -1), "+" on an integer, digit separators ("1_000", "1,000"), non-ASCII digits, an
exponent or a point in an integer ("1e3", "5.0"). CSV fields may have spaces and tabs
around the number (the CSV reader trims them); nothing else is trimmed.
"""

import re

import pyarrow as pa
import pyarrow.compute as pc

_INTEGER = "-?[0-9]+"
_PLAIN = {  # Spellings pyarrow reads as the type, checked without asking it.
    pa.int64(): re.compile("-?[0-9]{1,18}"),  # 18 digits cannot overflow
    pa.float64(): re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"),
}


def reads_as(text, arrow_type):
    """Whether one (trimmed) string is a number of the type by the rule."""
    if _PLAIN[arrow_type].fullmatch(text):
        return True
    if arrow_type == pa.int64() and not re.fullmatch(_INTEGER, text):
        return False
    try:
        pc.cast(pa.scalar(text), arrow_type)  # overflow; the float spellings
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def cast_text(text, arrow_type):
    """A string array as the numeric type by the rule, nulls kept; raises pa.ArrowInvalid
    naming the first value that breaks it. Vectorised: pyarrow's cast, and for integers
    a regex pass first when the text may hold hex (which pyarrow alone would take)."""
    if arrow_type == pa.int64() and _holds_hex(text):
        wrong = pc.invert(pc.match_substring_regex(text, f"^{_INTEGER}$"))
        if pc.any(wrong).as_py():  # nulls are neither
            bad = text.filter(wrong)[0].as_py()
            raise pa.ArrowInvalid(f"Failed to parse string: {bad!r} as an integer")
    return pc.cast(text, arrow_type)


def _holds_hex(text):
    """Whether the characters of a string array (or of the buffers it is a slice of) may
    hold a hex literal: a byte search, far cheaper than the regex."""
    chunks = text.chunks if isinstance(text, pa.ChunkedArray) else [text]
    return any(c.buffers()[2] is not None and holds_hex(c.buffers()[2].to_pybytes()) for c in chunks)


def holds_hex(data, before=b""):
    """Whether the bytes `before` + `data` hold "0x" or "0X". A plain search for "0x" is
    slow over digits (every "0" is a candidate): the rare byte x is searched for instead,
    then its neighbour checked, up to a few thousand times per call."""
    for x in (b"x", b"X"):
        at, checks = data.find(x), 0
        while at >= 0:
            if (data[at - 1 : at] if at else before) == b"0":
                return True
            checks += 1
            if checks == 4096:
                if b"0" + x in data:  # x everywhere: one plain search
                    return True
                break
            at = data.find(x, at + 1)
    return False
