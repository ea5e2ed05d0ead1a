"""Every feature of a spec analysed together, one RecordBatch at a time."""

import contextlib

import pyarrow.compute as pc

from kdp_beam.analyzers.labels import LabelAnalyzer, Label, label_contexts, read_label
from kdp_beam.analyzers.multivalent import (
    DocumentCounts,
    ValuesPerRowAnalyzer,
    takes_lists,
)
from kdp_beam.columns import blank_as_null, cast_column, column_kinds
from kdp_beam.errors import InputDataError, SpecError
from kdp_beam.feature_types.multivalent import is_multivalent


def feature_analyzers(feature, profile=False, label_kind=None):
    """The analyzers a declaration needs, keyed by a stable name, as its type says
    (`profile`: also the distribution sketch of numeric features, for reports;
    `label_kind`: the spec's, FeatureSpec.label_kind, given to label-aware analyzers).

    A multivalent feature's are its type's, fed every value of every row (add_batch), its
    exact vocabularies counting the rows holding each token too, and "values_per_row"
    (kdp_beam.analyzers.multivalent): the one place lists are told from single values
    (label-aware analyzers take the lists themselves: they count rows)."""
    analyzers = feature.kind.analyzers(feature.options, profile)
    if label_kind is not None:
        for analyzer in analyzers.values():
            if hasattr(analyzer, "bind_label"):
                analyzer.bind_label(label_kind)
    if not is_multivalent(feature.options):
        return analyzers
    found = {key: DocumentCounts(a) if is_keyed(a) and not takes_label(a) else a for key, a in analyzers.items()}
    found["values_per_row"] = ValuesPerRowAnalyzer()
    return found


def is_keyed(analyzer):
    """Whether its state grows with the number of distinct tokens (exact vocabularies,
    text): kdp_beam.beam.keyed_vocabulary counts those spread over workers by token."""
    return getattr(analyzer, "keyed", False)


def takes_label(analyzer):
    """Whether its verbs take the label (kdp_beam.analyzers.labels): add_batch and
    token_table a BatchLabel, finalize, shard_top and finalize_table its feature's Label
    or LabelContext (with_label gives it)."""
    return getattr(analyzer, "takes_label", False)


def with_label(analyzer, contexts, name):
    """The label argument of a keyed analyzer's shard_top / finalize / finalize_table:
    feature `name`'s LabelContext of `contexts` (labels.label_contexts) when it takes the
    label, else none."""
    return (contexts[name],) if takes_label(analyzer) else ()


def add_statistics(stats, found, name, key):
    """Adds the statistics `found` by the analyzer `key` of feature `name` to its `stats`.
    Raises SpecError when one is already there: two analyzers of a type (a plug-in's own
    and the counts or moments, say) giving one name would silently keep the last."""
    taken = sorted(set(found) & {*stats, "missing_count"})
    if taken:
        raise SpecError(
            f"feature {name!r}: its {stats.get('type')} type's analyzer {key!r} gives {taken}, "
            "which its other analyzers give too (or the bundle reserves: type, missing_count); "
            "give that statistic another name"
        )
    stats.update(found)


def missing_count(stats, kind):
    """Values the model treats as missing, by the causes its type counts (nulls, empty
    strings included, NaN, dates that do not parse: FeatureType.missing_causes)."""
    return sum(stats.get(key, 0) for key, _ in kind.missing_causes)


class DatasetAccumulator:
    """Rows seen, records left out ({reason: count}), per feature (in spec order) one
    accumulator per analyzer, and the label's (None without a label)."""

    __slots__ = ("row_count", "features", "bad_records", "label")

    def __init__(self, row_count, features, bad_records=None, label=None):
        self.row_count = row_count
        self.features = features
        self.bad_records = bad_records or {}
        self.label = label

    def __getstate__(self):
        return (self.row_count, self.features, self.bad_records, self.label)

    def __setstate__(self, state):
        self.row_count, self.features, self.bad_records, self.label = state


def token_analyzers(spec):
    """{feature name: its token-counting analyzer} (vocabularies and text)."""
    found = {}
    for name, feature in spec.features.items():
        for analyzer in feature_analyzers(feature, label_kind=spec.label_kind).values():
            if is_keyed(analyzer):
                found[name] = analyzer
    return found


def takes_dictionary(analyzer):
    """Whether its add_batch (or token_table) takes a dictionary-encoded string column as
    it is: said by its own class (``takes_dictionary = True``), not inherited, so that a
    subclass reading columns its own way gets plain strings unless it says so too."""
    return type(analyzer).__dict__.get("takes_dictionary", False)


def dictionary_features(spec):
    """The features whose string column the analysis takes dictionary-encoded (pyarrow's
    DictionaryArray, as the Parquet and CSV readers give it when asked: counting a dictionary's
    indices costs a fraction of hashing every value): one string per row, and every
    analyzer takes_dictionary (the counts and the exact vocabulary of a string
    categorical)."""
    kinds = column_kinds(spec)
    return frozenset(
        name
        for name, feature in spec.features.items()
        if kinds[name] == "string"
        and all(takes_dictionary(a) for a in feature_analyzers(feature, spec.profile, spec.label_kind).values())
    )


def declared_columns(batch, kinds, dictionaries=frozenset()):
    """(name, column) of each declared feature ({name: kind}, columns.column_kinds), read
    as its kind, with empty strings as nulls (a list's elements too, and its null rows as
    empty lists: columns.cast_list); those of `dictionaries` (dictionary_features) kept
    dictionary-encoded when they come so. Raises InputDataError when a batch lacks a
    declared column."""
    names = set(batch.schema.names)
    for name, kind in kinds.items():
        if name not in names:
            raise InputDataError(
                f"declared feature {name!r} is not a column of the input "
                f"(columns: {batch.schema.names})"
            )
        column = cast_column(batch.column(name), kind, name, "input batch", keep_dictionary=name in dictionaries)
        yield name, blank_as_null(column)


class DatasetAnalyzer:
    """The fused analyzer of a FeatureSpec: one add_batch feeds every feature.

    ``finalize`` returns ``{"row_count": n, "features": {name: {"type": ..., stats}}}``,
    and ``"label"`` (kdp_beam.analyzers.labels.LabelAnalyzer) when the spec has a label.
    Raises InputDataError when a batch lacks a declared column (or the label) or has the
    wrong type.

    Args:
        spec: the FeatureSpec.
        count_tokens: False leaves vocabularies and text out (token_analyzers), for
            the keyed path (kdp_beam.beam.keyed_vocabulary) to count them spread over workers.
    """

    def __init__(self, spec, count_tokens=True):
        self.spec = spec
        self._kinds = column_kinds(spec)
        self._dictionaries = dictionary_features(spec)
        self._plan = []
        self._multivalent = [is_multivalent(f.options) for f in spec.features.values()]
        self._label = None if spec.label is None else LabelAnalyzer(spec.label, spec.label_type)
        for name, feature in spec.features.items():
            analyzers = feature_analyzers(feature, spec.profile, spec.label_kind)
            if not count_tokens:
                analyzers = {k: a for k, a in analyzers.items() if not is_keyed(a)}
            self._plan.append((name, analyzers))

    def create_accumulator(self):
        return DatasetAccumulator(
            0,
            [[a.create_accumulator() for a in analyzers.values()] for _, analyzers in self._plan],
            label=None if self._label is None else self._label.create_accumulator(),
        )

    def add_batch(self, acc, batch):
        """Folds in a RecordBatch (records readers left out: add_bad_records)."""
        acc.row_count += batch.num_rows
        label = read_label(batch, self.spec)
        if label is not None:
            acc.label = self._label.add_batch(acc.label, label)
        columns = declared_columns(batch, self._kinds, self._dictionaries)
        for ((_, analyzers), accs), (_, column), multivalent in zip(
            zip(self._plan, acc.features), columns, self._multivalent
        ):
            values = pc.list_flatten(column) if multivalent else column  # every value of the lists
            for j, analyzer in enumerate(analyzers.values()):
                fed = column if multivalent and takes_lists(analyzer) else values
                given = (label,) if takes_label(analyzer) else ()
                accs[j] = analyzer.add_batch(accs[j], fed, *given)  # accumulators may be immutable
        return acc

    def compact(self, acc):
        """The accumulator made small to be sent (AnalyzerCombineFn.compact, when Beam
        encodes a worker's accumulator): each analyzer that has ``compact`` compacts its
        own (a quantile sketch: QuantilesAnalyzer.compact)."""
        for (_, analyzers), accs in zip(self._plan, acc.features):
            for j, analyzer in enumerate(analyzers.values()):
                if hasattr(analyzer, "compact"):
                    accs[j] = analyzer.compact(accs[j])
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
        label = None if self._label is None else self._label.merge_accumulators([acc.label for acc in accs])
        return DatasetAccumulator(sum(acc.row_count for acc in accs), merged, bad, label)

    def finalize(self, acc):
        """The statistics: the label's first (its type and classes shape the label-aware
        features'), then each feature's, its token counts last (they need its label totals:
        labels.label_contexts)."""
        state = self.to_state(acc)  # first: finalizing a quantile sketch freezes it
        statistics = {"row_count": acc.row_count, "bad_records": bad_record_counts(acc.bad_records)}
        label = None
        if self._label is not None:
            statistics["label"] = self._label.finalize(acc.label)
            label = Label(statistics["label"])
        features = statistics["features"] = {}
        for (name, analyzers), accs in zip(self._plan, acc.features):
            stats = features[name] = {"type": self.spec.features[name].type}
            with _naming_the_feature(name):
                for (key, analyzer), feature_acc in zip(analyzers.items(), accs):
                    if not is_keyed(analyzer):
                        given = (label,) if takes_label(analyzer) else ()
                        add_statistics(stats, analyzer.finalize(feature_acc, *given), name, key)
            stats["missing_count"] = missing_count(stats, self.spec.features[name].kind)
        contexts = label_contexts(self.spec, statistics) if label is not None else {}
        for (name, analyzers), accs in zip(self._plan, acc.features):
            with _naming_the_feature(name):
                for (key, analyzer), feature_acc in zip(analyzers.items(), accs):
                    if is_keyed(analyzer):
                        found = analyzer.finalize(feature_acc, *with_label(analyzer, contexts, name))
                        add_statistics(features[name], found, name, key)
        return {**statistics, "state": state}

    def to_state(self, acc):
        """The mergeable state as JSON-able data (no pickle), token counts excepted: those
        are tables, kept by the bundle in files of their own (kdp_beam.bundle.writer)."""
        label = {} if self._label is None else {"label": self._label.to_state(acc.label)}
        return {
            "row_count": acc.row_count,
            "bad_records": dict(acc.bad_records),
            **label,
            "features": {
                name: {
                    # An analyzer without to_state keeps no state: its bundles cannot merge.
                    key: analyzer.to_state(feature_acc) if hasattr(analyzer, "to_state") else None
                    for (key, analyzer), feature_acc in zip(analyzers.items(), accs)
                    if not is_keyed(analyzer)
                }
                for (name, analyzers), accs in zip(self._plan, acc.features)
            },
        }

    def from_state(self, state):
        """The accumulator of a to_state() (token analyzers start empty)."""
        features = []
        for name, analyzers in self._plan:
            saved = state["features"][name]
            stateless = [k for k, a in analyzers.items() if not is_keyed(a) and saved.get(k) is None]
            if stateless:
                raise ValueError(f"feature {name!r}: {stateless} kept no mergeable state")
            features.append(
                [
                    analyzer.create_accumulator() if is_keyed(analyzer) else analyzer.from_state(saved[key])
                    for key, analyzer in analyzers.items()
                ]
            )
        label = None if self._label is None else self._label.from_state(state["label"])
        return DatasetAccumulator(state["row_count"], features, dict(state["bad_records"]), label)


@contextlib.contextmanager
def _naming_the_feature(name):
    """An analyzer's InputDataError with the feature's name (analyzers know none)."""
    try:
        yield
    except InputDataError as error:
        raise InputDataError(f"feature {name!r}: {error}") from None


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
    return {
        **statistics,
        "bad_records": bad_record_counts(counts),
        "state": {**statistics["state"], "bad_records": counts},
    }


def bad_record_counts(by_reason):
    """The statistics' bad_records: {"count": total, "by_reason": {reason: count}, sorted}."""
    by_reason = dict(sorted(by_reason.items()))
    return {"count": sum(by_reason.values()), "by_reason": by_reason}
