"""Every feature of a spec analysed together, one RecordBatch at a time."""

from kdp_beam.analyzers.counts import CountAnalyzer
from kdp_beam.analyzers.dates import DateAnalyzer
from kdp_beam.analyzers.moments import MomentsAnalyzer
from kdp_beam.analyzers.quantiles import ProfileAnalyzer, QuantilesAnalyzer
from kdp_beam.analyzers.text import TextAnalyzer
from kdp_beam.analyzers.vocabulary import ApproximateVocabularyAnalyzer, VocabularyAnalyzer
from kdp_beam.columns import ARROW_TYPES, blank_as_null, cast_column, column_kinds
from kdp_beam.errors import InputDataError
from kdp_beam.spec import OOV_TOKENS


TOKEN_ANALYZERS = ("vocabulary", "text")  # analyzers whose state grows with the vocabulary
APPROXIMATE_BUCKETS_PER_TOKEN = 10  # Misra-Gries counters per kept token


def feature_analyzers(feature, profile=False):
    """The analyzers a declaration needs, keyed by a stable name (`profile`: also the
    distribution sketch of numeric features, for reports)."""
    analyzers = {"counts": CountAnalyzer()}
    if feature.column_kind != "string":
        analyzers["moments"] = MomentsAnalyzer()
        if profile:
            analyzers["profile"] = ProfileAnalyzer()
    options = feature.options
    if feature.type == "float_discretized" and options["bin_boundaries"] is None:
        analyzers["quantiles"] = QuantilesAnalyzer(options["num_bins"])
    if feature.type in OOV_TOKENS:
        max_tokens = options["max_tokens"]
        vocabulary = dict(
            max_size=None if max_tokens is None else max_tokens - options["num_oov_indices"],
            excluded_tokens=[OOV_TOKENS[feature.type]],
            missing_token=options["missing_token"],
            token_type=ARROW_TYPES[feature.column_kind],
        )
        if options["counting"] == "approximate":  # bounded state: in the global combine
            analyzers["approximate_vocabulary"] = ApproximateVocabularyAnalyzer(
                buckets=APPROXIMATE_BUCKETS_PER_TOKEN * max_tokens, **vocabulary
            )
        else:
            analyzers["vocabulary"] = VocabularyAnalyzer(**vocabulary)
    if feature.type == "text":
        analyzers["text"] = TextAnalyzer(
            options["max_tokens"], options["standardize"], options["split"], options["ngrams"]
        )
    if feature.type == "date":
        analyzers["date"] = DateAnalyzer(options["format"])
    if feature.type == "custom":
        from kdp_beam.plugins import create_statistic

        analyzers["custom"] = create_statistic(options["statistic"], options["options"])
    return analyzers


def missing_count(stats):
    """Values the model treats as missing: nulls (empty strings included), NaN, and dates
    that do not parse."""
    return stats["null_count"] + stats.get("nan_count", 0) + stats.get("unparseable_count", 0)


class DatasetAccumulator:
    """Rows seen, records left out ({reason: count}), and per feature (in spec order) one
    accumulator per analyzer."""

    __slots__ = ("row_count", "features", "bad_records")

    def __init__(self, row_count, features, bad_records=None):
        self.row_count = row_count
        self.features = features
        self.bad_records = bad_records or {}

    def __getstate__(self):
        return (self.row_count, self.features, self.bad_records)

    def __setstate__(self, state):
        self.row_count, self.features, self.bad_records = state


def token_analyzers(spec):
    """{feature name: its token-counting analyzer} (vocabularies and text)."""
    found = {}
    for name, feature in spec.features.items():
        for key, analyzer in feature_analyzers(feature).items():
            if key in TOKEN_ANALYZERS:
                found[name] = analyzer
    return found


def declared_columns(batch, kinds):
    """(name, column) of each declared feature ({name: kind}, columns.column_kinds), read
    as its kind, with empty strings as nulls. Raises InputDataError when a batch lacks a
    declared column."""
    names = set(batch.schema.names)
    for name, kind in kinds.items():
        if name not in names:
            raise InputDataError(
                f"declared feature {name!r} is not a column of the input "
                f"(columns: {batch.schema.names})"
            )
        yield name, blank_as_null(cast_column(batch.column(name), kind, name, "input batch"))


class DatasetAnalyzer:
    """The fused analyzer of a FeatureSpec: one add_batch feeds every feature.

    ``finalize`` returns ``{"row_count": n, "features": {name: {"type": ..., stats}}}``.
    Raises InputDataError when a batch lacks a declared column or has the wrong type.

    Args:
        spec: the FeatureSpec.
        count_tokens: False leaves vocabularies and text out (token_analyzers), for
            the keyed path (kdp_beam.beam.keyed_vocabulary) to count them spread over workers.
    """

    def __init__(self, spec, count_tokens=True):
        self.spec = spec
        self._kinds = column_kinds(spec)
        self._plan = []
        for name, feature in spec.features.items():
            analyzers = feature_analyzers(feature, spec.profile)
            if not count_tokens:
                analyzers = {k: a for k, a in analyzers.items() if k not in TOKEN_ANALYZERS}
            self._plan.append((name, analyzers))

    def create_accumulator(self):
        return DatasetAccumulator(
            0,
            [[a.create_accumulator() for a in analyzers.values()] for _, analyzers in self._plan],
        )

    def add_batch(self, acc, batch):
        """Folds in a RecordBatch (records readers left out: add_bad_records)."""
        acc.row_count += batch.num_rows
        columns = declared_columns(batch, self._kinds)
        for ((name, analyzers), accs), (_, column) in zip(zip(self._plan, acc.features), columns):
            for j, analyzer in enumerate(analyzers.values()):
                accs[j] = analyzer.add_batch(accs[j], column)  # accumulators may be immutable
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
        bad = {}
        for acc in accs:
            for reason, count in acc.bad_records.items():
                bad[reason] = bad.get(reason, 0) + count
        return DatasetAccumulator(sum(acc.row_count for acc in accs), merged, bad)

    def finalize(self, acc):
        state = self.to_state(acc)  # first: finalizing a quantile sketch freezes it
        features = {}
        for (name, analyzers), accs in zip(self._plan, acc.features):
            stats = {"type": self.spec.features[name].type}
            try:
                for analyzer, feature_acc in zip(analyzers.values(), accs):
                    stats.update(analyzer.finalize(feature_acc))
            except InputDataError as error:  # an analyzer knows no feature names
                raise InputDataError(f"feature {name!r}: {error}") from None
            stats["missing_count"] = missing_count(stats)
            features[name] = stats
        bad = dict(sorted(acc.bad_records.items()))
        return {
            "row_count": acc.row_count,
            "bad_records": {"count": sum(bad.values()), "by_reason": bad},
            "features": features,
            "state": state,
        }

    def to_state(self, acc):
        """The mergeable state as JSON-able data (no pickle), token counts excepted: those
        are tables, kept by the bundle in files of their own (kdp_beam.bundle.writer)."""
        return {
            "row_count": acc.row_count,
            "bad_records": dict(acc.bad_records),
            "features": {
                name: {
                    # A plug-in without to_state keeps no state: its bundles cannot merge.
                    key: analyzer.to_state(feature_acc) if hasattr(analyzer, "to_state") else None
                    for (key, analyzer), feature_acc in zip(analyzers.items(), accs)
                    if key not in TOKEN_ANALYZERS
                }
                for (name, analyzers), accs in zip(self._plan, acc.features)
            },
        }

    def from_state(self, state):
        """The accumulator of a to_state() (token analyzers start empty)."""
        features = []
        for name, analyzers in self._plan:
            saved = state["features"][name]
            stateless = [k for k, a in analyzers.items() if k not in TOKEN_ANALYZERS and saved.get(k) is None]
            if stateless:
                raise ValueError(f"feature {name!r}: {stateless} kept no mergeable state")
            features.append(
                [
                    analyzer.create_accumulator() if key in TOKEN_ANALYZERS else analyzer.from_state(saved[key])
                    for key, analyzer in analyzers.items()
                ]
            )
        return DatasetAccumulator(state["row_count"], features, dict(state["bad_records"]))


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


def add_bad_records(statistics, by_reason):
    """DatasetAnalyzer.finalize's statistics with the records readers left out, counted
    beside the batches ({reason: count}: kdp_beam.beam.analyze counts the readers' tagged
    output), added to its counts and to its mergeable state (which kdp-beam merge adds up)."""
    counts = dict(statistics["state"]["bad_records"])
    for reason, count in by_reason.items():
        counts[reason] = counts.get(reason, 0) + count
    bad = dict(sorted(counts.items()))
    return {
        **statistics,
        "bad_records": {"count": sum(bad.values()), "by_reason": bad},
        "state": {**statistics["state"], "bad_records": counts},
    }
