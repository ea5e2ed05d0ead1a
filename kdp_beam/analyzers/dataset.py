"""Every feature of a spec analysed together, one RecordBatch at a time."""

from kdp_beam.analyzers.counts import CountAnalyzer
from kdp_beam.analyzers.dates import DateAnalyzer
from kdp_beam.analyzers.moments import MomentsAnalyzer
from kdp_beam.analyzers.quantiles import QuantilesAnalyzer
from kdp_beam.analyzers.text import TextAnalyzer
from kdp_beam.analyzers.vocabulary import VocabularyAnalyzer
from kdp_beam.columns import blank_as_null, cast_column, column_types
from kdp_beam.errors import InputDataError
from kdp_beam.spec import OOV_TOKENS


def feature_analyzers(feature):
    """The analyzers a declaration needs, keyed by a stable name."""
    analyzers = {"counts": CountAnalyzer()}
    if feature.column_kind != "string":
        analyzers["moments"] = MomentsAnalyzer()
    options = feature.options
    if feature.type == "float_discretized" and options["bin_boundaries"] is None:
        analyzers["quantiles"] = QuantilesAnalyzer(options["num_bins"])
    if feature.type in OOV_TOKENS:
        max_tokens = options["max_tokens"]
        analyzers["vocabulary"] = VocabularyAnalyzer(
            max_size=None if max_tokens is None else max_tokens - options["num_oov_indices"],
            excluded_tokens=[OOV_TOKENS[feature.type]],
            missing_token=options["missing_token"],
        )
    if feature.type == "text":
        analyzers["text"] = TextAnalyzer(
            options["max_tokens"], options["standardize"], options["split"], options["ngrams"]
        )
    if feature.type == "date":
        analyzers["date"] = DateAnalyzer(options["format"])
    return analyzers


def missing_count(stats):
    """Values the model treats as missing: nulls (empty strings included), NaN, and dates
    that do not parse."""
    return stats["null_count"] + stats.get("nan_count", 0) + stats.get("unparseable_count", 0)


class DatasetAccumulator:
    """Rows seen, and per feature (in spec order) one accumulator per analyzer."""

    __slots__ = ("row_count", "features")

    def __init__(self, row_count, features):
        self.row_count = row_count
        self.features = features

    def __getstate__(self):
        return (self.row_count, self.features)

    def __setstate__(self, state):
        self.row_count, self.features = state


class DatasetAnalyzer:
    """The fused analyzer of a FeatureSpec: one add_batch feeds every feature.

    ``finalize`` returns ``{"row_count": n, "features": {name: {"type": ..., stats}}}``.
    Raises InputDataError when a batch lacks a declared column or has the wrong type.
    """

    def __init__(self, spec):
        self.spec = spec
        self._types = column_types(spec)
        self._plan = [(name, feature_analyzers(f)) for name, f in spec.features.items()]

    def create_accumulator(self):
        return DatasetAccumulator(
            0,
            [[a.create_accumulator() for a in analyzers.values()] for _, analyzers in self._plan],
        )

    def add_batch(self, acc, batch):
        acc.row_count += batch.num_rows
        names = set(batch.schema.names)
        for (name, analyzers), accs in zip(self._plan, acc.features):
            if name not in names:
                raise InputDataError(
                    f"declared feature {name!r} is not a column of the input "
                    f"(columns: {batch.schema.names})"
                )
            column = blank_as_null(
                cast_column(batch.column(name), self._types[name], name, "input batch")
            )
            for analyzer, feature_acc in zip(analyzers.values(), accs):
                analyzer.add_batch(feature_acc, column)
        return acc

    def merge_accumulators(self, accs):
        accs = list(accs)
        merged = []
        for i, (_, analyzers) in enumerate(self._plan):
            merged.append(
                [
                    analyzer.merge_accumulators([acc.features[i][j] for acc in accs])
                    for j, analyzer in enumerate(analyzers.values())
                ]
            )
        return DatasetAccumulator(sum(acc.row_count for acc in accs), merged)

    def finalize(self, acc):
        features = {}
        for (name, analyzers), accs in zip(self._plan, acc.features):
            stats = {"type": self.spec.features[name].type}
            for analyzer, feature_acc in zip(analyzers.values(), accs):
                stats.update(analyzer.finalize(feature_acc))
            stats["missing_count"] = missing_count(stats)
            features[name] = stats
        return {"row_count": acc.row_count, "features": features}


def analyze_batches(spec, batches):
    """Statistics of an iterable of RecordBatches, in this process: one pass, no Beam.

    The same analyzers as the Beam pipeline, so the same statistics (floating values to
    rounding of the merge order).
    """
    analyzer = DatasetAnalyzer(spec)
    acc = analyzer.create_accumulator()
    for batch in batches:
        acc = analyzer.add_batch(acc, batch)
    return analyzer.finalize(acc)
