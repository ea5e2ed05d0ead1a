"""Exact token counts and the vocabulary keras StringLookup / IntegerLookup would adapt."""

import pyarrow as pa
import pyarrow.compute as pc

# Buffered per-batch counts are folded together once they outgrow the folded table by this
# factor (and this many rows), so folding costs amortised O(rows), never O(batches x vocab).
_COMPACT_FACTOR = 2
_COMPACT_MIN_ROWS = 1 << 16


class TokenCounts:
    """(token, count) tables not yet folded together, and the size of the folded part."""

    __slots__ = ("tables", "folded_rows", "buffered_rows")

    def __init__(self, tables=(), folded_rows=0, buffered_rows=0):
        self.tables = list(tables)
        self.folded_rows = folded_rows
        self.buffered_rows = buffered_rows

    def __getstate__(self):
        return (self.tables, self.folded_rows, self.buffered_rows)

    def __setstate__(self, state):
        self.tables, self.folded_rows, self.buffered_rows = state

    def add(self, table):
        self.tables.append(table)
        self.buffered_rows += table.num_rows
        if self.buffered_rows > max(_COMPACT_FACTOR * self.folded_rows, _COMPACT_MIN_ROWS):
            self.fold()

    def fold(self):
        """One table with one row per distinct token (vectorised hash aggregation)."""
        if len(self.tables) > 1:
            summed = pa.concat_tables(self.tables).group_by("token").aggregate(
                [("count", "sum")]
            )
            self.tables = [summed.rename_columns(["token", "count"])]
        self.folded_rows = self.tables[0].num_rows if self.tables else 0
        self.buffered_rows = 0
        return self.tables[0] if self.tables else None


class VocabularyAnalyzer:
    """Exact counts of every distinct non-null value; the vocabulary in Keras' order.

    Keras' IndexLookup.adapt sorts by descending count and breaks ties by descending token
    (``np.lexsort((tokens, counts))[::-1]``: bytewise for strings, numeric for integers),
    drops its OOV token, then keeps ``max_tokens - num_oov_indices`` tokens. This analyzer
    does the same, so the layer built from the bundle encodes exactly as an adapted one.

    Args:
        max_size: tokens to keep (None keeps all).
        excluded_tokens: tokens never put in the vocabulary (the layer's OOV token).
        missing_token: what a missing value counts as; None leaves missing values out
            (the model maps them to the OOV index).
    """

    def __init__(self, max_size=None, excluded_tokens=(), missing_token=None):
        self.max_size = max_size
        self.excluded_tokens = tuple(excluded_tokens)
        self.missing_token = missing_token

    def create_accumulator(self):
        return TokenCounts()

    def add_batch(self, acc, column):
        if self.missing_token is not None and column.null_count:
            column = column.fill_null(self.missing_token)
        counted = pc.value_counts(column.drop_null())
        if len(counted):
            acc.add(
                pa.Table.from_arrays(
                    [counted.field("values"), counted.field("counts")], ["token", "count"]
                )
            )
        return acc

    def merge_accumulators(self, accs):
        merged = TokenCounts()
        for acc in accs:
            for table in acc.tables:
                merged.add(table)
        return merged

    def finalize(self, acc):
        table = acc.fold()
        if table is None:
            return {
                "vocabulary": [],
                "vocabulary_counts": [],
                "vocabulary_size": 0,
                "distinct_count": 0,
            }
        distinct_count = table.num_rows
        if self.excluded_tokens:
            excluded = pa.array(self.excluded_tokens, table["token"].type)
            table = table.filter(pc.invert(pc.is_in(table["token"], value_set=excluded)))
        table = table.sort_by([("count", "descending"), ("token", "descending")])
        if self.max_size is not None:
            table = table.slice(0, self.max_size)
        return {
            "vocabulary": table["token"].to_pylist(),
            "vocabulary_counts": table["count"].to_pylist(),
            "vocabulary_size": table.num_rows,
            "distinct_count": distinct_count,
        }
