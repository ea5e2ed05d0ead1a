"""Date parsing and statistics against Python's datetime (an independent calendar)."""

import datetime
import re

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdp_beam import dates
from kdp_beam.analyzers.dates import DateAnalyzer, parse_dates
from kdp_beam.errors import SpecError


@st.composite
def date_strings(draw):
    year = draw(st.integers(0, 9999))
    month, day = draw(st.integers(0, 13)), draw(st.integers(0, 32))
    text = f"{year:04d}-{month:02d}-{day:02d}"
    tail = draw(st.sampled_from(["", "T", " ", "x"]))
    if tail in ("T", " "):
        text += f"{tail}{draw(st.integers(0, 25)):02d}:{draw(st.integers(0, 61)):02d}"
        text += draw(st.sampled_from(["", ":07", ":59.123", ":60"]))
        text += draw(st.sampled_from(["", "Z", "+02:00", "-0530", "+2"]))
    elif tail:
        text += tail
    return text


def reference(text, format=None):  # noqa: A002
    """(datetime or None) by Python's re and datetime: independent of pyarrow and RE2."""
    if format is not None:
        try:
            return datetime.datetime.strptime(text, format)
        except ValueError:
            return None
    match = re.fullmatch(dates.ISO_PATTERN, text)
    if not match:
        return None
    parts = {k: int(v) if v else dates.DEFAULTS.get(k, 0) for k, v in match.groupdict().items()}
    try:
        return datetime.datetime(**parts)
    except ValueError:
        return None


def check_parse(texts, format=None):  # noqa: A002
    parts, valid = parse_dates(pa.array(texts), format)
    for i, text in enumerate(texts):
        expected = None if text is None else reference(text, format)
        assert bool(valid[i]) == (expected is not None), text
        if expected is not None:
            got = [int(parts[p][i]) for p in dates.PARTS]
            assert got == [getattr(expected, p) for p in dates.PARTS], text
            year, month, day, hour = got[:4]
            components = dates.components(*(np.array([v]) for v in (year, month, day, hour)))
            assert int(components["day_of_week"][0]) == expected.weekday()
            assert int(components["day_of_year"][0]) == expected.timetuple().tm_yday


@settings(max_examples=300, deadline=None)
@given(st.lists(date_strings(), min_size=1, max_size=20))
def test_iso_parsing_and_calendar_equal_python_datetime(texts):
    check_parse(texts + [None, ""])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 12), st.integers(1, 31), st.integers(1900, 2100), st.integers(0, 23)), min_size=1, max_size=10))
def test_strftime_format_equals_strptime(parts):
    texts = [f"{d}/{m}/{y} {h}h" for m, d, y, h in parts] + ["31/02/2020 1h", "1/1/20 1h"]
    check_parse(texts, "%d/%m/%Y %Hh")


def test_unsupported_formats_are_spec_errors():
    with pytest.raises(SpecError, match="must contain %Y"):
        dates.date_pattern("%m/%d")
    with pytest.raises(SpecError, match="%b is not supported"):
        dates.date_pattern("%d %b %Y")


def test_statistics_count_unparseable_and_describe_years():
    texts = ["2020-01-01", "2021-06-30T12:00:00", "bad", None, "2020-02-30", "2024-12-31 23:59:59"]
    analyzer = DateAnalyzer()
    first = analyzer.add_batch(analyzer.create_accumulator(), pa.array(texts[:3]))
    second = analyzer.add_batch(analyzer.create_accumulator(), pa.array(texts[3:]))
    stats = analyzer.finalize(analyzer.merge_accumulators([first, second]))
    years = np.array([2020, 2021, 2024], dtype=float)
    assert stats["unparseable_count"] == 2  # "bad" and February 30th; the null is missing
    assert stats["year_mean"] == pytest.approx(years.mean(), rel=1e-12)
    assert stats["year_variance"] == pytest.approx(years.var(), rel=1e-12)
    assert (stats["min_date"], stats["max_date"]) == ("2020-01-01T00:00:00", "2024-12-31T23:59:59")
