"""AnalyzeFeatures: every feature's statistics in one pass over RecordBatches, on Beam.

Two consumers of the same batches (Beam fuses them, so the input is read once):

- one global combine of the fused DatasetAnalyzer: counts, moments, quantiles, dates,
  whose state is small whatever the data;
- the keyed path for vocabularies and text (kdp_beam.beam.keyed_vocabulary), whose state
  grows with the number of distinct tokens, spread over ``vocabulary_shards`` keys (the
  label-aware ones ranked with the combine's label statistics, a side input).

Their results, and the bad records counted per reason, meet in one join into the
statistics document.
"""

import apache_beam as beam
import pyarrow as pa

from kdp_beam.analyzers import DatasetAnalyzer
from kdp_beam.analyzers.dataset import add_bad_records, add_statistics, takes_label, token_analyzers, with_label
from kdp_beam.analyzers.labels import label_contexts
from kdp_beam.bad_records import BadRecord
from kdp_beam.beam.join import JoinParts
from kdp_beam.beam.keyed_vocabulary import DEFAULT_VOCABULARY_SHARDS, RankTokens, SumTokens
from kdp_beam.bundle.writer import write_token_state
from kdp_beam.io.files import BAD_RECORDS, BATCHES


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

    def compact(self, accumulator):
        # Beam calls it before a worker's accumulator is encoded (after the lifted combine).
        compact = getattr(self._analyzer, "compact", None)
        return accumulator if compact is None else compact(accumulator)

    def extract_output(self, accumulator):
        return self._analyzer.finalize(accumulator)


@beam.typehints.with_input_types(**{BATCHES: pa.RecordBatch, BAD_RECORDS: BadRecord})
@beam.typehints.with_output_types(dict)
class AnalyzeFeatures(beam.PTransform):
    """A reader's outputs, or a PCollection of RecordBatches -> the statistics document.

    The input: what the readers return, ``{"batches": PCollection[RecordBatch],
    "bad_records": PCollection[BadRecord]}`` (kdp_beam.io.files.Reader), so that ``p |
    ReadCsv(...) | AnalyzeFeatures(spec)`` counts the records a skip-mode read left out,
    per reason; or a PCollection[RecordBatch] alone (batches of your own: nothing left
    out). The single output element is ``{"spec": spec JSON, "row_count": n,
    "bad_records": {"count", "by_reason"}, "features": {name: statistics}, "state": the
    mergeable state, "state_files": token state written}`` (and ``"label"``, the label's
    statistics, when the spec has one), what WriteArtifacts writes.

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

    def type_check_inputs(self, pvalueish):
        # Beam's check of the hints above, a PCollection alone checked as a reader's batches.
        super().type_check_inputs(_as_read_outputs(pvalueish))

    def expand(self, read):
        read = _as_read_outputs(read)
        batches = read[BATCHES]
        combine_fn = AnalyzerCombineFn(DatasetAnalyzer(self.spec, count_tokens=False))
        combine = beam.CombinePerKey(combine_fn)
        if self.fanout:
            combine = combine.with_hot_key_fanout(self.fanout)
        # The parts of the document meet in one join, not as side inputs (JoinParts says
        # why); a CombineGlobally would take its default for no rows from a side input, so
        # the seed gives the join its one key whatever the input.
        statistics = (
            batches
            | "KeyBatches" >> beam.Map(lambda batch: (None, batch))
            | "CombineStatistics" >> combine
            | "Statistics" >> beam.Values()
        )
        parts = {
            "seed": batches.pipeline | "Seed" >> beam.Create([None], reshuffle=False),
            "statistics": statistics,
        }
        analyzers = token_analyzers(self.spec)
        if analyzers:
            summed = batches | "SumTokens" >> SumTokens(self.spec, self.vocabulary_shards)
            contexts = None
            if any(takes_label(a) for a in analyzers.values()):  # the label's, from the combine
                spec = self.spec
                contexts = beam.pvalue.AsSingleton(
                    statistics | "LabelContexts" >> beam.Map(lambda s: label_contexts(spec, s))
                )
            parts["vocabularies"] = summed | "RankTokens" >> RankTokens(self.spec, contexts)
            if self.state_dir is not None:  # each shard's full counts, written by its worker
                state_dir, names = self.state_dir, list(self.spec.features)
                parts["state_files"] = summed | "WriteTokenState" >> beam.MapTuple(
                    lambda key, table: write_token_state(
                        state_dir, names.index(key[0]), key[0], key[1], table
                    )
                )
        if BAD_RECORDS in read:
            parts["bad_records"] = (
                read[BAD_RECORDS]
                | "Reasons" >> beam.Map(lambda record: record.reason).with_output_types(str)
                | "CountPerReason" >> beam.combiners.Count.PerElement()
            )
        return (
            parts
            | "Join" >> JoinParts()
            | "Assemble"
            >> beam.Map(
                _statistics_document,
                combine_fn=combine_fn,
                analyzers=analyzers,
                spec=self.spec,
            )
        )


def _as_read_outputs(read):
    """AnalyzeFeatures' input as a reader's outputs: {"batches": ..., maybe "bad_records"}."""
    if isinstance(read, beam.PCollection):
        return {BATCHES: read}
    if isinstance(read, dict) and BATCHES in read and set(read) <= {BATCHES, BAD_RECORDS}:
        return read
    raise TypeError(
        f"AnalyzeFeatures takes a PCollection of pyarrow RecordBatches, or a reader's outputs "
        f'{{"{BATCHES}": ..., "{BAD_RECORDS}": ...}}; got {read!r:.200}'
    )


def _statistics_document(parts, combine_fn, analyzers, spec):
    """The joined parts as one document: the combined statistics (those of no batches when
    there was none), each token feature's vocabulary, the token state written, the bad
    records counted per reason."""
    [statistics] = parts["statistics"] or [combine_fn.apply([])]
    vocabularies = dict(parts.get("vocabularies", ()))
    contexts = label_contexts(spec, statistics) if spec.label is not None else {}
    for name, analyzer in analyzers.items():
        found = vocabularies.get(name) or analyzer.finalize_table(None, 0, 0, *with_label(analyzer, contexts, name))
        add_statistics(statistics["features"][name], found, name, type(analyzer).__name__)
    if analyzers:
        statistics["state_files"] = list(parts.get("state_files", ()))  # (feature, file name, entry)
    statistics = add_bad_records(statistics, dict(parts.get("bad_records", ())))
    return {"spec": spec.to_json(), **statistics}
