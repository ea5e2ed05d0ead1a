"""The keyed vocabulary path: vocabularies and text counted exactly on any number of workers.

Token state grows with the number of distinct tokens, so it does not go through the global
combine: each worker pre-aggregates token counts per bundle, sends each token to one of
``shards`` shards by a stable hash (kdp_beam.analyzers.shards), the shards are combined
per key on different workers, and only each shard's top tokens meet on one worker for the
final ranking. No worker holds a whole large vocabulary (unless max_tokens is None: then
the vocabulary is the whole list, which the bundle must hold).

Label-aware vocabularies (kdp_beam.analyzers.label_tokens) ride on the same path, their
tables keyed also by class and fold. Their shard tops and ranking need the label's
finalized statistics and each feature's label totals (the N of mutual information), which
the global combine gives: RankTokens takes them as a side input (``contexts``), one small
dict. A side input rather than a join into the shards' GroupByKey: the shards then need
not wait for, nor carry, the global statistics, and the shape stays that of every other
vocabulary. Beam's Dask runner would compute the read again for that side input; it also
drops finish_bundle's output, which this path already needs, so it runs neither.
"""

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.pvalue import PCollection
from apache_beam.transforms.window import GlobalWindows

from kdp_beam.analyzers.dataset import (
    declared_columns,
    dictionary_features,
    takes_label,
    token_analyzers,
    with_label,
)
from kdp_beam.analyzers.labels import read_label
from kdp_beam.analyzers.shards import token_shards
from kdp_beam.analyzers.vocabulary import TokenCounts
from kdp_beam.columns import column_kinds

DEFAULT_VOCABULARY_SHARDS = 32
# Token rows a worker buffers (summed per token) before sending them to their shards.
FLUSH_ROWS = 1 << 20

ShardKey = tuple[str, int]  # (feature name, shard)


class SumTokens(beam.PTransform):
    """PCollection[RecordBatch] -> PCollection[((feature name, shard), token-count table)]:
    each shard's exact counts, summed on the worker that got the shard."""

    def __init__(self, spec, shards=DEFAULT_VOCABULARY_SHARDS, flush_rows=FLUSH_ROWS):
        super().__init__()
        self.spec = spec
        self.shards = shards
        self.flush_rows = flush_rows

    def expand(
        self, batches: PCollection[pa.RecordBatch]
    ) -> PCollection[tuple[ShardKey, pa.Table]]:
        return (
            batches
            | "ShardTokenCounts"
            >> beam.ParDo(_ShardTokenCounts(self.spec, self.shards, self.flush_rows))
            # A plain GroupByKey, not a lifted combine: workers already summed per bundle,
            # and a lifted combine would hold every shard's counts again in the read stage.
            | "GroupPerShard" >> beam.GroupByKey()
            | "SumPerShard" >> beam.MapTuple(lambda key, tables: (key, TokenCounts(tables).fold()))
        )


class RankTokens(beam.PTransform):
    """SumTokens' output -> PCollection[(feature name, vocabulary statistics)]: each
    shard's top tokens, then one ranking per feature.

    `contexts`: with label-aware features, their label contexts
    (kdp_beam.analyzers.labels.label_contexts of the global statistics) as a side input
    (beam.pvalue.AsSingleton)."""

    def __init__(self, spec, contexts=None):
        super().__init__()
        self.spec = spec
        self.contexts = contexts

    def expand(
        self, summed: PCollection[tuple[ShardKey, pa.Table]]
    ) -> PCollection[tuple[str, dict]]:
        analyzers = token_analyzers(self.spec)
        label = {} if self.contexts is None else {"contexts": self.contexts}
        return (
            summed
            | "ShardTop" >> beam.Map(_shard_top, analyzers=analyzers, **label)
            | "GroupShards" >> beam.GroupByKey()
            | "Rank" >> beam.Map(_rank, analyzers=analyzers, **label)
        )


class CountTokens(SumTokens):
    """PCollection[RecordBatch] -> PCollection[(feature name, vocabulary statistics)] for
    every vocabulary and text feature that has tokens, counted exactly on any number of
    workers (see the module docstring): SumTokens, then RankTokens."""

    def expand(self, batches: PCollection[pa.RecordBatch]) -> PCollection[tuple[str, dict]]:
        return super().expand(batches) | "RankTokens" >> RankTokens(self.spec)


class _ShardTokenCounts(beam.DoFn):
    """Per bundle: token counts summed per feature, flushed as ((feature, shard), table).

    The rest of a bundle is flushed from finish_bundle, output of the Beam model that the
    FnApiRunner, Flink, Spark and Dataflow deliver (Beam's Dask runner drops it). Kept
    because the shape without it costs more: splitting each batch's counts into shards for a
    lifted CombinePerKey measured twice this path's CPU (0.45-0.48 vs 0.22-0.24 CPU-s on
    the 64 batches of 1M rows x 10 categorical features, ~4% of the job), and the runner's
    per-bundle table would grow with the bundle's distinct tokens, not stop at flush_rows.
    """

    def __init__(self, spec, shards, flush_rows):
        self._spec = spec
        self._shards = shards
        self._flush_rows = flush_rows

    def setup(self):
        self._analyzers = token_analyzers(self._spec)
        all_types = column_kinds(self._spec)
        self._types = {name: all_types[name] for name in self._analyzers}
        self._dictionaries = dictionary_features(self._spec)
        self._labelled = any(takes_label(a) for a in self._analyzers.values())

    def start_bundle(self):
        self._buffers = {name: TokenCounts() for name in self._analyzers}

    def process(self, batch):
        label = read_label(batch, self._spec) if self._labelled else None
        for name, column in declared_columns(batch, self._types, self._dictionaries):
            analyzer = self._analyzers[name]
            table = analyzer.token_table(column, label) if takes_label(analyzer) else analyzer.token_table(column)
            if table.num_rows:
                self._buffers[name].add(table)
        buffered = sum(b.folded_rows + b.buffered_rows for b in self._buffers.values())
        if buffered > self._flush_rows:
            yield from self._flush()

    def finish_bundle(self):
        for element in self._flush():
            yield GlobalWindows.windowed_value(element)

    def _flush(self):
        for name, buffer in self._buffers.items():
            table = buffer.fold()
            if table is None:
                continue
            shard = token_shards(table["token"].combine_chunks(), self._shards)
            order = np.argsort(shard, kind="stable")
            bounds = np.searchsorted(shard[order], np.arange(self._shards + 1))
            for key, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
                if stop > start:
                    # take, not slice: a slice would carry (and pickle) the whole table.
                    yield (name, key), table.take(order[start:stop])
        self._buffers = {name: TokenCounts() for name in self._analyzers}


def _shard_top(keyed, analyzers, contexts=None):
    """One shard's contribution: its top tokens (all the final ranking can need: a token
    lives in one shard only), its distinct tokens, its total count."""
    (name, _), table = keyed
    analyzer = analyzers[name]
    top = analyzer.shard_top(table, *with_label(analyzer, contexts, name))
    return name, (top, *analyzer.table_totals(table))


def _rank(grouped, analyzers, contexts=None):
    name, tops = grouped
    analyzer = analyzers[name]
    tops = list(tops)
    table = pa.concat_tables([top for top, _, _ in tops])
    return name, analyzer.finalize_table(
        table,
        sum(distinct for _, distinct, _ in tops),
        sum(total for _, _, total in tops),
        *with_label(analyzer, contexts, name),
    )
