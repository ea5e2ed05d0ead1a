"""The statistics of a multivalent feature: a list of values per row.

One rule for every type (kdp_beam.analyzers.dataset's feature_analyzers and
DatasetAnalyzer.add_batch apply it, so no type spells it):
the type's own analyzers see every value of every row, flattened (null elements
included, so ``count`` is the number of values and ``null_count`` the missing ones); its
exact vocabularies also count the rows holding each token (``vocabulary_document_counts``);
and ``ValuesPerRowAnalyzer`` describes the lists' lengths. All of it vectorised with
pyarrow's list kernels and numpy, never a Python loop over rows.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kdp_beam.analyzers.quantiles import ProfileAnalyzer
from kdp_beam.analyzers.vocabulary import TokenTableAnalyzer, document_counts
from kdp_beam.columns import list_lengths
from kdp_beam.slots import SlotsState


class ValuesPerRowAccumulator(SlotsState):
    """Rows, rows without values, values, the shortest and longest list, and a sketch of
    the lengths."""

    __slots__ = ("rows", "empty_count", "values", "min", "max", "sketch")

    def __init__(self, sketch):
        self.rows = self.empty_count = self.values = 0
        self.min = self.max = None  # no row yet
        self.sketch = sketch


class ValuesPerRowAnalyzer:
    """How many values the rows hold: ``empty_count`` (rows with none), the
    ``min_values_per_row`` / ``max_values_per_row``, ``mean_values_per_row`` (values /
    rows, an empty row counting 0), and the lengths' distribution as the profile's 21
    points (min, 5%, ..., max) ``values_per_row_quantiles``, within
    ``values_per_row_epsilon`` in rank. A missing element is a value (the row holds a
    missing value); a null row holds none."""

    def __init__(self):
        self._lengths = ProfileAnalyzer()

    def create_accumulator(self):
        return ValuesPerRowAccumulator(self._lengths.create_accumulator())

    def add_batch(self, acc, column):
        counted = list_lengths(column)
        if not counted.size:
            return acc
        low, high = int(counted.min()), int(counted.max())
        acc.rows += counted.size
        acc.values += int(counted.sum(dtype=np.int64))
        acc.empty_count += int(np.count_nonzero(counted == 0))
        acc.min = low if acc.min is None else min(acc.min, low)
        acc.max = high if acc.max is None else max(acc.max, high)
        acc.sketch = self._lengths.add_counts(acc.sketch, *np.unique(counted, return_counts=True))
        return acc

    def merge_accumulators(self, accs):
        accs = list(accs)
        merged = self.create_accumulator()
        merged.sketch = self._lengths.merge_accumulators([acc.sketch for acc in accs])
        for acc in accs:
            merged.rows += acc.rows
            merged.values += acc.values
            merged.empty_count += acc.empty_count
            for bound, pick in (("min", min), ("max", max)):
                theirs, ours = getattr(acc, bound), getattr(merged, bound)
                if theirs is not None:
                    setattr(merged, bound, theirs if ours is None else pick(ours, theirs))
        return merged

    def to_state(self, acc):
        return {
            **{slot: getattr(acc, slot) for slot in ("rows", "empty_count", "values", "min", "max")},
            "sketch": self._lengths.to_state(acc.sketch),
        }

    def from_state(self, state):
        acc = ValuesPerRowAccumulator(self._lengths.from_state(state["sketch"]))
        for slot in ("rows", "empty_count", "values", "min", "max"):
            setattr(acc, slot, state[slot])
        return acc

    def finalize(self, acc):
        profile = self._lengths.finalize(acc.sketch)
        return {
            "empty_count": acc.empty_count,
            "min_values_per_row": acc.min,
            "max_values_per_row": acc.max,
            "mean_values_per_row": acc.values / acc.rows if acc.rows else None,
            # Lengths are integers, and the sketch's points are values it was given.
            "values_per_row_quantiles": [int(q) for q in profile["profile_quantiles"]],
            "values_per_row_epsilon": profile["profile_epsilon"],
        }


class DocumentCounts(TokenTableAnalyzer):
    """A token-counting analyzer (kdp_beam.analyzers.vocabulary's shape) of list columns:
    each token's occurrences, as the analyzer counts a column of one value per row, and the
    rows holding it (``document_count``, ``vocabulary_document_counts`` in the statistics).
    Both add up exactly over batches and over the keyed path's shards: a row is in one
    batch, a token in one shard."""

    def __init__(self, analyzer):
        self.analyzer = analyzer

    @property
    def keep(self):
        return self.analyzer.keep

    def token_table(self, column):
        """(token, count, document_count) of a list column as columns.cast_list gives it
        (declared_columns does)."""
        return document_counts(pc.list_flatten(column), pc.list_parent_indices(column).to_numpy())

    def empty_column(self):
        return pa.array([], pa.list_(self.analyzer.token_type))

    def finalize_table(self, table, distinct_count, total_count):
        if table is None:  # no token: no documents either, in the same columns
            table = self.token_table(self.empty_column())
        return self.analyzer.finalize_table(table, distinct_count, total_count)


def takes_lists(analyzer):
    """Whether an analyzer of a multivalent feature is fed the list column itself (it
    needs the rows), not the flattened values: these, and one saying so (``takes_lists``:
    the label-aware ones count rows)."""
    return isinstance(analyzer, (DocumentCounts, ValuesPerRowAnalyzer)) or getattr(analyzer, "takes_lists", False)
