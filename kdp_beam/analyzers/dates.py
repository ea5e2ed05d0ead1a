"""Date statistics: parse failures, the year's moments, the earliest and latest moment."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kdp_beam import dates
from kdp_beam.analyzers.moments import MomentsAnalyzer
from kdp_beam.slots import SlotsState


def parse_dates(column, format=None):  # noqa: A002
    """Vectorised parse of a string column: ({part: int64 array}, valid mask).

    Parts (PARTS) are given for every row, with defaults where the row does not parse;
    `valid` is True where the row matched the format and named a real date and time.
    Nulls are not valid.
    """
    pattern = dates.date_pattern(format)
    matched = pc.extract_regex(column, pattern)  # null where the row does not match
    matches = pc.is_valid(matched).to_numpy(zero_copy_only=False)
    parts = {}
    for name in dates.PARTS:
        if name in dates.group_names(pattern):
            text = pc.struct_field(matched, name).fill_null("")
            text = pc.if_else(pc.equal(text, ""), str(dates.DEFAULTS.get(name, 0)), text)
            parts[name] = pc.cast(text, pa.int64()).to_numpy(zero_copy_only=False)
        else:
            parts[name] = np.full(len(column), dates.DEFAULTS[name], np.int64)
    valid = matches & dates.is_valid(*(parts[p] for p in dates.PARTS))
    return parts, valid


class DateAccumulator(SlotsState):
    __slots__ = ("unparseable", "first", "last", "year")

    def __init__(self, year):
        self.unparseable = 0
        self.first = None
        self.last = None
        self.year = year



def _extreme(pick, a, b):
    return b if a is None else a if b is None else pick(a, b)


class DateAnalyzer:
    """Counts values that do not parse (``unparseable_count``; the model treats them as
    missing), the year's mean/variance/min/max (the year is normalised with them) and the
    earliest and latest moment (``min_date`` / ``max_date``, ISO 8601)."""

    def __init__(self, format=None):  # noqa: A002
        self.format = format
        self._year = MomentsAnalyzer()

    def create_accumulator(self):
        return DateAccumulator(self._year.create_accumulator())

    def add_batch(self, acc, column):
        parts, valid = parse_dates(column, self.format)
        acc.unparseable += int(len(column) - column.null_count - valid.sum())
        if valid.any():
            picked = {name: values[valid] for name, values in parts.items()}
            moments = dates.seconds_since_epoch(*(picked[p] for p in dates.PARTS))
            acc.first = _extreme(min, acc.first, int(moments.min()))
            acc.last = _extreme(max, acc.last, int(moments.max()))
            self._year.add_batch(acc.year, pa.array(picked["year"].astype(np.float64)))
        return acc

    def merge_accumulators(self, accs):
        accs = list(accs)
        merged = DateAccumulator(self._year.merge_accumulators([a.year for a in accs]))
        for acc in accs:
            merged.unparseable += acc.unparseable
            merged.first = _extreme(min, merged.first, acc.first)
            merged.last = _extreme(max, merged.last, acc.last)
        return merged

    def to_state(self, acc):
        return {
            "unparseable": acc.unparseable,
            "first": acc.first,
            "last": acc.last,
            "year": self._year.to_state(acc.year),
        }

    def from_state(self, state):
        acc = DateAccumulator(self._year.from_state(state["year"]))
        acc.unparseable, acc.first, acc.last = state["unparseable"], state["first"], state["last"]
        return acc

    def finalize(self, acc):
        year = self._year.finalize(acc.year)
        return {
            "unparseable_count": acc.unparseable,
            "min_date": None if acc.first is None else dates.iso_from_seconds(acc.first),
            "max_date": None if acc.last is None else dates.iso_from_seconds(acc.last),
            "year_mean": year["mean"],
            "year_variance": year["variance"],
            "year_min": year["min"],
            "year_max": year["max"],
        }
