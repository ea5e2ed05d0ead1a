"""Exact token counts and the vocabulary keras StringLookup / IntegerLookup would adapt.

Token-counting analyzers (this one and TextAnalyzer) share one shape, so the same counts
can be kept in one accumulator (in-process analysis) or spread over workers by token
(kdp_beam.beam.keyed_vocabulary, for vocabularies of any size):

- ``token_table(column)``: one batch's counts, a table with a "token" column and one or
  more count columns ("count", and "document_count" where rows are counted: text, lists,
  given as ``vocabulary_document_counts``); label-aware vocabularies
  (kdp_beam.analyzers.label_tokens) also key their rows by the row's class and fold
  (KEY_COLUMNS), several rows per token;
- ``TokenCounts``: such tables folded together by summing per key;
- ``shard_top(table)`` and ``table_totals(table)``: the rows of the tokens a shard's table
  can contribute to the vocabulary (a token lives in one shard), its distinct tokens and
  the sum of "count" over all of them;
- ``finalize_table(table, distinct_count, total_count)``: the statistics from the folded
  counts, or from their top ``keep`` tokens (ranks never need more) with those totals;
- ``state_schema``: the table's columns, as the bundle keeps it (state/tokens/).
"""

import base64

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Buffered per-batch counts are folded together once they outgrow the folded table by this
# factor (and this many rows), so folding costs amortised O(rows), never O(batches x vocab);
# or once this many tables wait and they outgrow it at all: a small vocabulary's tables
# (~3.6 KB each for 100 tokens) would otherwise wait by the hundred per feature.
_COMPACT_FACTOR = 2
_COMPACT_MIN_ROWS = 1 << 16
_COMPACT_TABLES = 64
# The columns that key a token table's rows (a token, its rows' class and fold); every other
# column is a count, summed per key.
KEY_COLUMNS = ("token", "label", "fold")


class TokenCounts:
    """(token, counts...) tables not yet folded together, and the size of the folded part."""

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
        if self.buffered_rows > max(_COMPACT_FACTOR * self.folded_rows, _COMPACT_MIN_ROWS) or (
            len(self.tables) > _COMPACT_TABLES and self.buffered_rows > self.folded_rows
        ):
            self.fold()

    def fold(self):
        """One table with one row per distinct key (vectorised hash aggregation), its
        columns in their order."""
        if len(self.tables) > 1:
            names = self.tables[0].column_names
            keys = [name for name in names if name in KEY_COLUMNS]
            summed = pa.concat_tables(self.tables).group_by(keys).aggregate(
                [(name, "sum") for name in names if name not in keys]
            )
            self.tables = [pa.table({n: summed[n if n in keys else f"{n}_sum"] for n in names})]
        self.folded_rows = self.tables[0].num_rows if self.tables else 0
        self.buffered_rows = 0
        return self.tables[0] if self.tables else None

    @classmethod
    def merged(cls, accs):
        merged = cls()
        for acc in accs:
            for table in acc.tables:
                merged.add(table)
        return merged


def document_counts(tokens, rows):
    """The (token, count, document_count) table of `tokens` and `rows` (numpy: the row
    each token is in): each distinct non-null token's occurrences and the distinct rows
    holding it. Vectorised: tokens as dictionary indices, each (row, index) pair as one
    integer key, sorted (quick: rows come in order) and each run of equal keys counted once."""
    if tokens.null_count:
        valid = pc.is_valid(tokens)
        tokens, rows = tokens.filter(valid), rows[valid.to_numpy(zero_copy_only=False)]
    encoded = pc.dictionary_encode(tokens)
    index = encoded.indices.to_numpy()
    distinct = len(encoded.dictionary)
    # Keys below rows x tokens; int32 where they fit (a batch's usually do) sorts twice as fast.
    bound = (int(rows.max()) + 1) * distinct if rows.size else 0
    pairs = rows.astype(np.int32 if bound < 2**31 else np.int64) * distinct
    pairs += index
    pairs.sort()
    first = np.ones(pairs.size, dtype=bool)
    np.not_equal(pairs[1:], pairs[:-1], out=first[1:])
    return pa.table(
        {
            "token": encoded.dictionary,
            "count": np.bincount(index, minlength=distinct).astype(np.int64),
            "document_count": np.bincount(pairs[first] % distinct, minlength=distinct).astype(np.int64),
        }
    )


def keras_order(table, keep=None):
    """Rows by descending count, ties by descending token (keras IndexLookup's order:
    ``np.lexsort((tokens, counts))[::-1]``, bytewise for strings), the first `keep`."""
    order = pc.sort_indices(table, sort_keys=[("count", "descending"), ("token", "descending")])
    # take, not slice: a slice keeps (and pickles) the whole table's buffers.
    return table.take(order if keep is None else order.slice(0, keep))


class TokenTableAnalyzer:
    """The four verbs of a token-counting analyzer, from its ``token_table(column)`` and
    ``finalize_table(table, distinct_count, total_count)``: per-batch tables summed per
    token (TokenCounts)."""

    keyed = True  # its state grows with the vocabulary: counted spread over workers by token

    def create_accumulator(self):
        return TokenCounts()

    def add_batch(self, acc, column):
        table = self.token_table(column)
        if table.num_rows:
            acc.add(table)
        return acc

    def merge_accumulators(self, accs):
        return TokenCounts.merged(accs)

    def finalize(self, acc):
        table = acc.fold()
        if table is None:
            return self.finalize_table(None, 0, 0)
        return self.finalize_table(table, *self.table_totals(table))

    def table_totals(self, table):
        """(distinct tokens, sum of "count") of a folded table: one row per token."""
        return table.num_rows, int(table["count"].to_numpy().sum())

    def shard_top(self, table):
        """The rows of a shard's folded table the vocabulary can need: its top `keep`."""
        return keras_order(table, self.keep)

    @property
    def state_schema(self):
        """The columns of its token table (the bundle's state/tokens/ files)."""
        return self.token_table(self.empty_column()).schema


class VocabularyAnalyzer(TokenTableAnalyzer):
    """Exact counts of every distinct non-null value; the vocabulary in Keras' order.

    Keras' IndexLookup.adapt sorts by descending count and breaks ties by descending token,
    drops its OOV token, then keeps ``max_tokens - num_oov_indices`` tokens. This analyzer
    does the same, so the layer built from the bundle encodes exactly as an adapted one.

    Args:
        max_size: tokens to keep (None keeps all).
        excluded_tokens: tokens never put in the vocabulary (the layer's OOV token).
        missing_token: what a missing value counts as; None leaves missing values out
            (the model maps them to the OOV index).
        token_type: the Arrow type of the tokens.
    """

    takes_dictionary = True  # token_table counts a dictionary-encoded column's indices

    def __init__(self, max_size=None, excluded_tokens=(), missing_token=None, token_type=pa.string()):
        self.token_type = token_type
        self.max_size = max_size
        self.excluded_tokens = tuple(excluded_tokens)
        self.missing_token = missing_token

    @property
    def keep(self):
        """Rows of the ranked counts finalize_table can need (excluded tokens included)."""
        return None if self.max_size is None else self.max_size + len(self.excluded_tokens)

    def token_table(self, column):
        if pa.types.is_dictionary(column.type):
            return self._dictionary_token_table(column)
        if self.missing_token is not None and column.null_count:
            column = column.fill_null(self.missing_token)
        counted = pc.value_counts(column.drop_null())
        return pa.Table.from_arrays(
            [counted.field("values"), counted.field("counts")], ["token", "count"]
        )

    def _dictionary_token_table(self, column):
        """token_table of a DictionaryArray of strings (kdp_beam.columns.string_dictionary):
        its indices counted, the entries no row holds left out, the missing rows as
        missing_token, a token the dictionary holds twice (Arrow allows it) summed."""
        indices = column.indices.drop_null().to_numpy(zero_copy_only=False)
        counts = np.bincount(indices, minlength=len(column.dictionary))
        held = np.flatnonzero(counts)
        tokens, counts = column.dictionary.take(pa.array(held)), counts[held].astype(np.int64)
        if self.missing_token is not None and column.null_count:
            tokens = pa.concat_arrays([tokens, pa.array([self.missing_token], tokens.type)])
            counts = np.append(counts, column.null_count)
        table = pa.Table.from_arrays([tokens, pa.array(counts)], ["token", "count"])
        if pc.count_distinct(tokens).as_py() < len(tokens):
            summed = table.group_by("token").aggregate([("count", "sum")])
            table = pa.Table.from_arrays([summed["token"], summed["count_sum"]], ["token", "count"])
        return table

    def empty_column(self):
        """A column of no value, as token_table takes them."""
        return pa.array([], self.token_type)

    def finalize_table(self, table, distinct_count, total_count):
        """Statistics from folded counts: all of them, or at least their top `keep` rows."""
        if table is None:
            table = self.token_table(self.empty_column())
        if self.excluded_tokens:
            excluded = pa.array(self.excluded_tokens, table["token"].type)
            table = table.filter(pc.invert(pc.is_in(table["token"], value_set=excluded)))
        table = keras_order(table, self.max_size)
        found = {
            "vocabulary": table["token"].to_pylist(),
            "vocabulary_counts": table["count"].to_pylist(),
            "vocabulary_size": table.num_rows,
            "distinct_count": distinct_count,
        }
        if "document_count" in table.column_names:  # counted per row (text, lists)
            found["vocabulary_document_counts"] = table["document_count"].to_pylist()
        return {**found, **self._extra(table, total_count)}

    def _extra(self, table, total_count):
        return {}


class _Sketch:
    """A Misra-Gries sketch and the number of values it has seen; pickled through the
    sketch's own serialisation."""

    __slots__ = ("sketch", "total")

    def __init__(self, sketch, total=0):
        self.sketch = sketch
        self.total = total

    def __getstate__(self):
        return (self.sketch.Serialize(), self.total)

    def __setstate__(self, state):
        from tfx_bsl.sketches import MisraGriesSketch

        self.sketch, self.total = MisraGriesSketch.Deserialize(state[0]), state[1]


class ApproximateVocabularyAnalyzer(VocabularyAnalyzer):
    """The top tokens by approximate counts, in memory bounded by ``buckets`` counters
    (tfx_bsl's mergeable Misra-Gries sketch), for vocabularies too large to count.

    Each count is an overestimate by at most ``total / buckets`` (tfx_bsl adds back what
    Misra-Gries subtracted; recorded in the bundle as ``vocabulary_count_error_bound``),
    so a token whose true count exceeds the k-th largest by more than twice that bound is
    always kept. ``distinct_count`` is unknown (null).
    """

    keyed = False  # bounded state: in the global combine

    def __init__(self, max_size, buckets, excluded_tokens=(), missing_token=None, token_type=pa.string()):
        super().__init__(max_size, excluded_tokens, missing_token, token_type)
        self.buckets = buckets

    def create_accumulator(self):
        from tfx_bsl.sketches import MisraGriesSketch

        return _Sketch(MisraGriesSketch(self.buckets))

    def add_batch(self, acc, column):
        if self.missing_token is not None and column.null_count:
            column = column.fill_null(self.missing_token)
        values = column.drop_null()
        if len(values):
            acc.sketch.AddValues(values)
            acc.total += len(values)
        return acc

    def merge_accumulators(self, accs):
        merged = self.create_accumulator()
        for acc in accs:
            merged.sketch.Merge(acc.sketch)
            merged.total += acc.total
        return merged

    def to_state(self, acc):
        return {"sketch": base64.b64encode(acc.sketch.Serialize()).decode("ascii"), "total": acc.total}

    def from_state(self, state):
        from tfx_bsl.sketches import MisraGriesSketch

        return _Sketch(MisraGriesSketch.Deserialize(base64.b64decode(state["sketch"])), state["total"])

    def finalize(self, acc):
        estimate = acc.sketch.Estimate()
        tokens = estimate.field("values")
        if self.token_type == pa.string():
            tokens = tokens.cast(pa.string())
        else:  # the sketch keeps integers as their decimal text
            tokens = tokens.cast(pa.string()).cast(self.token_type)
        table = pa.table({"token": tokens, "count": estimate.field("counts").cast(pa.int64())})
        stats = self.finalize_table(table, None, acc.total)
        stats["vocabulary_approximate"] = True
        stats["vocabulary_count_error_bound"] = -(-acc.total // self.buckets)
        return stats
