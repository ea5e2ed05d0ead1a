"""Date parsing and calendar arithmetic shared by the analysis and the Keras layer.

One regular expression (RE2 syntax: pyarrow and TensorFlow both use RE2) decides what
parses, and one integer formula derives the calendar components, written with ``+ - * //
%`` only so it runs unchanged on numpy arrays (analysis) and int64 tensors (the model).
The analysis and the model therefore agree on every value, the unparseable ones included.
"""

import datetime
import re

from kdp_beam.errors import SpecError

PARTS = ("year", "month", "day", "hour", "minute", "second")
DEFAULTS = {"month": 1, "day": 1, "hour": 0, "minute": 0, "second": 0}

# ISO 8601 dates and timestamps: 2024-05-17, 2024-05-17T08:30, 2024-05-17 08:30:00.123Z,
# 2024-05-17T08:30:00+02:00. The wall-clock time is used as written (the offset is not
# applied): the calendar components describe the local time the data recorded.
ISO_PATTERN = (
    r"^(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
    r"(?:[T ](?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.\d{1,9})?)?"
    r"(?:Z|[+-]\d{2}:?\d{2})?)?$"
)
_DIRECTIVES = {
    "Y": r"(?P<year>\d{4})",
    "m": r"(?P<month>\d{1,2})",
    "d": r"(?P<day>\d{1,2})",
    "H": r"(?P<hour>\d{1,2})",
    "M": r"(?P<minute>\d{1,2})",
    "S": r"(?P<second>\d{1,2})",
}

# Cyclical components: (period, value at the start of the cycle).
CYCLES = {
    "month": (12, 1),
    "day": (31, 1),
    "day_of_week": (7, 0),
    "day_of_year": (366, 1),
    "hour": (24, 0),
}


def date_pattern(format=None):  # noqa: A002 - strftime's word
    """The anchored RE2 pattern, with named groups from PARTS, for a date format.

    `format` is None (ISO 8601) or a strftime-style string using %Y (required), %m, %d,
    %H, %M, %S and %%; other characters match themselves.
    """
    if format is None:
        return ISO_PATTERN
    if not isinstance(format, str):
        raise SpecError(f"date: format must be a string or null, got {format!r}")
    pieces, seen, i = [], set(), 0
    while i < len(format):
        char = format[i]
        if char != "%":
            pieces.append(re.escape(char))
            i += 1
            continue
        directive = format[i + 1 : i + 2]
        if directive == "%":
            pieces.append("%")
        elif directive in _DIRECTIVES and directive not in seen:
            pieces.append(_DIRECTIVES[directive])
            seen.add(directive)
        else:
            raise SpecError(
                f"date: format {format!r}: %{directive} is not supported (or repeated); "
                "use %Y %m %d %H %M %S %%"
            )
        i += 2
    if "Y" not in seen:
        raise SpecError(f"date: format {format!r} must contain %Y")
    return "^" + "".join(pieces) + "$"


def group_names(pattern):
    """The PARTS captured by a pattern, in the order of their groups."""
    return re.findall(r"\(\?P<(\w+)>", pattern)


def julian_day(year, month, day):
    """Julian Day Number of a proleptic Gregorian date (Fliegel & Van Flandern, 1968).

    Integer operators only: works elementwise on numpy int64 arrays and int64 tensors.
    """
    a = (14 - month) // 12
    y = year + 4800 - a
    m = month + 12 * a - 3
    return day + (153 * m + 2) // 5 + 365 * y + y // 4 - y // 100 + y // 400 - 32045


def is_valid(year, month, day, hour, minute, second):
    """Elementwise: the parts name a real date and time (Feb 30 or 25:00 do not)."""
    month_ok = (month >= 1) & (month <= 12)
    safe_month = (month - 1) % 12 + 1  # a real month even where month is wrong
    days_in_month = julian_day(year + safe_month // 12, safe_month % 12 + 1, 1 + 0 * day) - (
        julian_day(year, safe_month, 1 + 0 * day)
    )
    return (
        month_ok
        & (year >= 1)
        & (day >= 1)
        & (day <= days_in_month)
        & (hour < 24)
        & (minute < 60)
        & (second < 60)
    )


def components(year, month, day, hour):
    """{component: value} for every component in DATE_COMPONENTS (elementwise)."""
    jdn = julian_day(year, month, day)
    return {
        "year": year,
        "month": month,
        "day": day,
        "day_of_week": jdn % 7,  # Monday = 0, as datetime.date.weekday()
        "day_of_year": jdn - julian_day(year, 1 + 0 * month, 1 + 0 * day) + 1,
        "hour": hour,
    }


_EPOCH_JDN = 2440588  # 1970-01-01


def seconds_since_epoch(year, month, day, hour, minute, second):
    return (julian_day(year, month, day) - _EPOCH_JDN) * 86400 + hour * 3600 + minute * 60 + second


def iso_from_seconds(seconds):
    moment = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=int(seconds))
    return moment.isoformat()
