"""AnalyzeFeatures: every feature's statistics in one pass over RecordBatches, on Beam.

Two consumers of the same batches (Beam fuses them, so the input is read once):

- one global combine of the fused DatasetAnalyzer: counts, moments, quantiles, dates,
  whose state is small whatever the data;
- a keyed path for vocabularies and text, whose state grows with the number of distinct
  tokens: each worker pre-aggregates token counts per bundle, sends each token to one of
  ``vocabulary_shards`` shards by a stable hash, the shards are combined per key on
  different workers, and only each shard's top tokens meet on one worker for the final
  ranking. No worker holds a whole large vocabulary (unless max_tokens is None: then the
  vocabulary is the whole list, which the bundle must hold).
"""

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.transforms.window import GlobalWindows

from kdp_beam.analyzers import DatasetAnalyzer
from kdp_beam.analyzers.dataset import declared_columns, token_analyzers
from kdp_beam.analyzers.shards import token_shards
from kdp_beam.analyzers.vocabulary import TokenCounts, keras_order
from kdp_beam.bundle.writer import write_token_state
from kdp_beam.bad_records import BadRecord
from kdp_beam.columns import column_kinds

DEFAULT_VOCABULARY_SHARDS = 32
# Token rows a worker buffers (summed per token) before sending them to their shards.
FLUSH_ROWS = 1 << 20


class AnalyzerCombineFn(beam.CombineFn):
    """Any kdp_beam analyzer as a Beam CombineFn whose input elements are whole batches.

    Beam has no batch API for combines (combiner lifting calls add_input per element), so
    each element is a RecordBatch and add_input reduces all of it, vectorised.
    """

    def __init__(self, analyzer):
        self._analyzer = analyzer

    def create_accumulator(self):
        return self._analyzer.create_accumulator()

    def add_input(self, accumulator, batch):
        return self._analyzer.add_batch(accumulator, batch)

    def merge_accumulators(self, accumulators):
        return self._analyzer.merge_accumulators(accumulators)

    def extract_output(self, accumulator):
        return self._analyzer.finalize(accumulator)


class AnalyzeFeatures(beam.PTransform):
    """PCollection[RecordBatch] -> a single statistics document for the spec.

    The output element is ``{"spec": spec JSON, "row_count": n, "features": {name:
    statistics}}``, what WriteArtifacts writes.

    Args:
        spec: the FeatureSpec.
        fanout: intermediate keys of the global combine, so thousands of bundles do not
            all merge on one worker (Beam's CombineGlobally.with_fanout). None lets Beam
            decide.
        vocabulary_shards: how many keys token counts are spread over.
        state_dir: the bundle directory, where each shard's full token counts are written
            (the mergeable state kdp-beam merge reads); None writes nothing.
    """

    def __init__(
        self, spec, fanout=None, vocabulary_shards=DEFAULT_VOCABULARY_SHARDS, state_dir=None
    ):
        super().__init__()
        self.spec = spec
        self.fanout = fanout
        self.vocabulary_shards = vocabulary_shards
        self.state_dir = state_dir

    def expand(self, batches):
        combine = beam.CombineGlobally(
            AnalyzerCombineFn(DatasetAnalyzer(self.spec, count_tokens=False))
        )
        if self.fanout:
            combine = combine.with_fanout(self.fanout)
        statistics = batches | "CombineStatistics" >> combine
        analyzers = token_analyzers(self.spec)
        if analyzers:
            summed = batches | "SumTokens" >> SumTokens(self.spec, self.vocabulary_shards)
            vocabularies = summed | "RankTokens" >> RankTokens(self.spec)
            state_files = []
            if self.state_dir is not None:  # each shard's full counts, written by its worker
                names = list(self.spec.features)
                state_files = summed | "WriteTokenState" >> beam.MapTuple(
                    lambda key, table: write_token_state(
                        self.state_dir, names.index(key[0]), key[0], key[1], table
                    )
                )
                state_files = beam.pvalue.AsList(state_files)
            statistics = statistics | "AttachVocabularies" >> beam.Map(
                _attach_vocabularies,
                analyzers=analyzers,
                vocabularies=beam.pvalue.AsDict(vocabularies),
                state_files=state_files,
            )
        spec_json = self.spec.to_json()
        return statistics | "AttachSpec" >> beam.Map(lambda stats: {"spec": spec_json, **stats})


def _attach_vocabularies(statistics, analyzers, vocabularies, state_files=()):
    for name, analyzer in analyzers.items():
        found = vocabularies.get(name) or analyzer.finalize_table(None, 0, 0)
        statistics["features"][name].update(found)
    statistics["state_files"] = list(state_files)  # (feature, file name, manifest entry)
    return statistics


class SumTokens(beam.PTransform):
    """PCollection[RecordBatch] -> PCollection[((feature name, shard), token-count table)]:
    each shard's exact counts, summed on the worker that got the shard."""

    def __init__(self, spec, shards=DEFAULT_VOCABULARY_SHARDS, flush_rows=FLUSH_ROWS):
        super().__init__()
        self.spec = spec
        self.shards = shards
        self.flush_rows = flush_rows

    def expand(self, batches):
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
    shard's top tokens, then one ranking per feature."""

    def __init__(self, spec):
        super().__init__()
        self.spec = spec

    def expand(self, summed):
        analyzers = token_analyzers(self.spec)
        return (
            summed
            | "ShardTop" >> beam.Map(_shard_top, analyzers=analyzers)
            | "GroupShards" >> beam.GroupByKey()
            | "Rank" >> beam.MapTuple(lambda name, tops: (name, _rank(analyzers[name], tops)))
        )


class CountTokens(SumTokens):
    """PCollection[RecordBatch] -> PCollection[(feature name, vocabulary statistics)] for
    every vocabulary and text feature that has tokens, counted exactly on any number of
    workers (see the module docstring): SumTokens, then RankTokens."""

    def expand(self, batches):
        return super().expand(batches) | "RankTokens" >> RankTokens(self.spec)


class _ShardTokenCounts(beam.DoFn):
    """Per bundle: token counts summed per feature, flushed as ((feature, shard), table)."""

    def __init__(self, spec, shards, flush_rows):
        self._spec = spec
        self._shards = shards
        self._flush_rows = flush_rows

    def setup(self):
        self._analyzers = token_analyzers(self._spec)
        all_types = column_kinds(self._spec)
        self._types = {name: all_types[name] for name in self._analyzers}

    def start_bundle(self):
        self._buffers = {name: TokenCounts() for name in self._analyzers}

    def process(self, batch):
        if not isinstance(batch, BadRecord):  # those are counted by the global combine
            for name, column in declared_columns(batch, self._types):
                table = self._analyzers[name].token_table(column)
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


def _shard_top(keyed, analyzers):
    """One shard's contribution: its top tokens (all the final ranking can need: a token
    lives in one shard only), its distinct tokens, its total count."""
    (name, _), table = keyed
    top = keras_order(table, analyzers[name].keep)
    return name, (top, table.num_rows, int(table["count"].to_numpy().sum()))


def _rank(analyzer, tops):
    tops = list(tops)
    table = pa.concat_tables([top for top, _, _ in tops])
    return analyzer.finalize_table(
        table, sum(distinct for _, distinct, _ in tops), sum(total for _, _, total in tops)
    )
