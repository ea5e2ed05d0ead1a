"""AnalyzeFeatures: every feature's statistics in one pass over RecordBatches, on Beam.

Two consumers of the same batches (Beam fuses them, so the input is read once):

- one global combine of the fused DatasetAnalyzer: counts, moments, quantiles, dates,
  whose state is small whatever the data;
- the keyed path for vocabularies and text (kdp_beam.beam.keyed_vocabulary), whose state
  grows with the number of distinct tokens, spread over ``vocabulary_shards`` keys.
"""

import apache_beam as beam

from kdp_beam.analyzers import DatasetAnalyzer
from kdp_beam.analyzers.dataset import token_analyzers
from kdp_beam.beam.keyed_vocabulary import DEFAULT_VOCABULARY_SHARDS, RankTokens, SumTokens
from kdp_beam.bundle.writer import write_token_state


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
