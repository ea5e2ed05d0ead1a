"""AnalyzeFeatures: every feature's statistics in one Beam combine over RecordBatches."""

import apache_beam as beam

from kdp_beam.analyzers import DatasetAnalyzer


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

    All features are analysed by one fused combine, so the input is consumed once whatever
    the number of features. The output element is
    ``{"spec": spec JSON, "row_count": n, "features": {name: statistics}}``, what
    WriteArtifacts writes.

    Args:
        spec: the FeatureSpec.
        fanout: intermediate combine keys, so thousands of bundles do not all merge on one
            worker (Beam's CombineGlobally.with_fanout). None lets Beam decide.
    """

    def __init__(self, spec, fanout=None):
        super().__init__()
        self.spec = spec
        self.fanout = fanout

    def expand(self, batches):
        combine = beam.CombineGlobally(AnalyzerCombineFn(DatasetAnalyzer(self.spec)))
        if self.fanout:
            combine = combine.with_fanout(self.fanout)
        spec_json = self.spec.to_json()
        return (
            batches
            | "CombineStatistics" >> combine
            | "AttachSpec" >> beam.Map(lambda stats: {"spec": spec_json, **stats})
        )
