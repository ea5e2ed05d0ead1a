"""Categories by vocabulary: string_categorical and integer_categorical (keras'
FeatureSpace types). The vocabulary is the pass's exact token counts in keras' order
(spread over workers by token), or with ``counting: "approximate"`` the top max_tokens of
a bounded Misra-Gries sketch (docs/scaling.md). A missing value counts, and encodes, as
`missing_token` (None: the OOV index)."""

from kdp_beam.errors import SpecError
from kdp_beam.feature_types import label_aware, multivalent
from kdp_beam.feature_types.base import FeatureType
from kdp_beam.feature_types.options import (
    MAX_ENCODED_WIDTH,
    MAX_INT64,
    ONE_HOT_OR_INT,
    integer,
    one_of,
    shown,
    width,
)
from kdp_beam.feature_types.registry import register_type

MAX_APPROXIMATE_TOKENS = 2**24  # counting "approximate" keeps APPROXIMATE_BUCKETS_PER_TOKEN
# Misra-Gries counters per token; tfx_bsl's sketch aborts the process beyond about 2**28.
APPROXIMATE_BUCKETS_PER_TOKEN = 10
COUNTING = ("exact", "approximate")
VOCABULARY_COLUMNS = ("vocabulary", "vocabulary_counts")
# A list's exact vocabulary also counts the rows holding each token.
MULTIVALENT_VOCABULARY_COLUMNS = (*VOCABULARY_COLUMNS, "vocabulary_document_counts")
# A label-aware vocabulary's statistics per token (docs/bundle-format.md), and per fold.
LABEL_COLUMNS = ("vocabulary_label_counts", "vocabulary_label_sums")
FOLD_COLUMNS = ("vocabulary_fold_label_counts", "vocabulary_fold_label_sums")


class CategoricalType(FeatureType):
    """A lookup of a vocabulary: the options, the vocabulary's analysis and checks, the
    keras lookup layer, the report's bar chart."""

    options = {
        "max_tokens": None,
        "num_oov_indices": 1,
        "output_mode": "one_hot",
        "missing_token": None,
        "counting": "exact",
        **multivalent.OPTIONS,
        **label_aware.OPTIONS,
    }
    keras_arguments = ("max_tokens", "num_oov_indices", "output_mode")
    encoding_options = ("output_mode", *multivalent.ENCODING_OPTIONS, *label_aware.ENCODING_OPTIONS)
    oov_token = None  # what keras' lookup drops from an adapted vocabulary
    lookup_layer = None  # the keras.layers class name

    def validate(self, options):
        multivalent.validate(options)
        if label_aware.is_target(options):
            if options["sequence_length"] is not None:
                raise SpecError("output_mode 'target' averages a list's values into one encoding: leave out sequence_length")
        else:
            multivalent.validate_output_mode(options, ONE_HOT_OR_INT)
        if multivalent.is_multivalent(options) and options["missing_token"] is not None:
            raise SpecError("a list's missing values are left out of its encoding: missing_token applies to one value per row")
        oov = options["num_oov_indices"] = integer(
            options["num_oov_indices"], "num_oov_indices", 0, MAX_ENCODED_WIDTH
        )
        one_of(options["counting"], "counting", COUNTING)
        max_tokens = options["max_tokens"]
        if options["counting"] == "approximate" and max_tokens is None:
            raise SpecError("counting 'approximate' keeps the top max_tokens; set max_tokens")
        if max_tokens is not None:
            high, why = width("max_tokens", options["output_mode"])
            if options["counting"] == "approximate" and high > MAX_APPROXIMATE_TOKENS:
                high, why = MAX_APPROXIMATE_TOKENS, " (the approximate count's sketch size)"
            options["max_tokens"] = integer(
                max_tokens, f"max_tokens (which counts the {oov} OOV indices; null: every token)",
                oov + 1, high, why,
            )
        options["missing_token"] = self.valid_missing_token(options["missing_token"])
        return label_aware.validate(options)

    def crossable(self, options):
        # A target encoding's preprocessor is its lookup too: a cross takes the index.
        return not multivalent.is_multivalent(options)

    def analyzers(self, options, profile=False):
        from kdp_beam.analyzers.vocabulary import ApproximateVocabularyAnalyzer, VocabularyAnalyzer
        from kdp_beam.columns import ARROW_TYPES

        found = super().analyzers(options, profile)
        max_tokens = options["max_tokens"]
        vocabulary = dict(
            max_size=None if max_tokens is None else max_tokens - options["num_oov_indices"],
            excluded_tokens=[self.oov_token],
            missing_token=options["missing_token"],
            token_type=ARROW_TYPES[self.column_kind(options)],
        )
        if options["counting"] == "approximate":  # bounded state: in the global combine
            found["approximate_vocabulary"] = ApproximateVocabularyAnalyzer(
                buckets=APPROXIMATE_BUCKETS_PER_TOKEN * max_tokens, **vocabulary
            )
        elif label_aware.needs_label(options):  # exact, with each token's label statistics
            from kdp_beam.analyzers.label_tokens import LabelVocabularyAnalyzer
            from kdp_beam.analyzers.labels import LabelTotalsAnalyzer

            found["label_totals"] = LabelTotalsAnalyzer(options["missing_token"])
            found["vocabulary"] = LabelVocabularyAnalyzer(
                VocabularyAnalyzer(**vocabulary), options["rank_by"], options["folds"],
                multivalent.is_multivalent(options),
            )
        else:
            found["vocabulary"] = VocabularyAnalyzer(**vocabulary)
        return found

    def vocabulary_columns(self, options):
        columns = VOCABULARY_COLUMNS
        if multivalent.is_multivalent(options) and options["counting"] == "exact":
            columns = MULTIVALENT_VOCABULARY_COLUMNS
        if label_aware.needs_label(options):
            columns += LABEL_COLUMNS
            if options["rank_by"] == "mutual_information":
                columns += ("vocabulary_scores",)
            if options["folds"] is not None:
                columns += FOLD_COLUMNS
        return columns

    def check_statistics(self, stats, options, profile=False):
        from kdp_beam.bundle import checks

        super().check_statistics(stats, options, profile)
        by_count = options["rank_by"] != "mutual_information"  # else by score: check_label_vocabulary
        counts = checks.check_vocabulary(
            stats, self.valid_tokens, (self.oov_token,), options["max_tokens"], options["num_oov_indices"], by_count
        )
        if options["counting"] == "approximate":
            checks.check_approximate(stats, counts)
            return
        checks.check_distinct(stats, len(counts))
        if multivalent.is_multivalent(options):
            checks.check_rows_holding_tokens(stats, counts)
        if label_aware.needs_label(options):
            from kdp_beam.bundle.label_checks import check_label_vocabulary

            check_label_vocabulary(stats, counts, options)
        counted = stats.get("count")
        if options["missing_token"] is None:  # missing values are not counted as a token
            counted -= stats.get("null_count")
        if sum(counts) > counted:
            stats.fail("vocabulary_counts", f"add up to {sum(counts)}, more than the {counted} values")

    def keras_feature(self, feature_space, name, options):
        if label_aware.is_target(options):  # one value or a list: the lookup's index, encoded
            from kdp_beam.builder.target import keras_feature

            return keras_feature(self, feature_space, name, options)
        if multivalent.is_multivalent(options):
            from kdp_beam.builder.multivalent import keras_feature

            return keras_feature(self, feature_space, name, options)
        return self.keras_own(feature_space, name, options, self.dtype, missing_token=options["missing_token"])

    def from_keras(self, feature):
        import keras

        p = feature.preprocessor
        if type(p) is not getattr(keras.layers, self.lookup_layer):
            return None
        return {
            "max_tokens": p.max_tokens,
            "num_oov_indices": p.num_oov_indices,
            "output_mode": feature.output_mode,
            "missing_token": getattr(feature, "missing_token", None),
            "counting": "exact",
            **multivalent.OPTIONS,
            **label_aware.OPTIONS,
        }

    def set_statistics(self, preprocessor, stats, options):
        from kdp_beam.builder.vocabularies import no_value_vocabulary

        vocabulary = list(stats["vocabulary"]) or no_value_vocabulary(options["num_oov_indices"], self.dtype)
        if multivalent.is_multivalent(options):
            from kdp_beam.builder.multivalent import check_vocabulary

            check_vocabulary(vocabulary, self, options)
        preprocessor.set_vocabulary(vocabulary)
        # Saved in the layer's JSON config rather than keras' newline-separated asset file,
        # so tokens with newlines or empty tokens survive .keras save/load.
        preprocessor.input_vocabulary = vocabulary

    def summary(self, stats, options):
        if stats["distinct_count"] is None:  # approximate counting
            bound = stats["vocabulary_count_error_bound"]
            return f"{stats['vocabulary_size']:,} kept, counts within -{bound:,}"
        line = f"{stats['distinct_count']:,} distinct, {stats['vocabulary_size']:,} kept"
        if not label_aware.needs_label(options):
            return line
        if options["rank_by"] == "mutual_information":
            line += " by mutual information"
        folds = f", {options['folds']} folds" if options["folds"] is not None else ""
        return f"{line}; label in {stats['label_rows']:,} rows{folds}"

    def report_section(self, stats, options):
        from kdp_beam.tools import report_parts

        counted_missing = options["missing_token"] is not None
        denominator = stats["count"] - (0 if counted_missing else stats["null_count"])
        details, chart = report_parts.vocabulary_section(stats, denominator, "values")
        if label_aware.needs_label(options):  # the label per top value, beside the prior
            label_rows, table = report_parts.label_by_value(stats)
            details += label_rows + table
        return details, chart


@register_type
class IntegerCategorical(CategoricalType):
    """Integer IDs by vocabulary, read as int64 (IDs above 2**31 keep their identity)."""

    name = "integer_categorical"
    options = {**CategoricalType.options, **multivalent.INTEGER_OPTIONS}
    oov_token = -1
    lookup_layer = "IntegerLookup"
    dtype = "int64"
    infer_rank = 30
    max_inferred = 100  # distinct values (and at most 5% of the values) infer makes categories

    def column_kind(self, options):
        return "integer"

    @staticmethod
    def valid_missing_token(token):
        if token is None:
            return None
        return integer(token, "missing_token (null: the OOV index)", -MAX_INT64 - 1, MAX_INT64)

    @staticmethod
    def valid_tokens(stats, tokens):
        from kdp_beam.bundle.checks import INT64_RANGE

        low, high = INT64_RANGE
        bad = [t for t in tokens if type(t) is not int or not low <= t <= high]
        if bad:
            stats.fail("vocabulary", f"has the token {bad[0]!r:.80}, not a 64-bit integer")

    def propose(self, sample):
        import pyarrow as pa

        if pa.types.is_integer(sample.kind) and sample.distinct <= min(self.max_inferred, 0.05 * sample.n):
            return self.name, f"integers, {sample.share}: few values, one-hot categories"
        return None


@register_type
class StringCategorical(CategoricalType):
    """Strings by vocabulary (booleans read as "true" / "false")."""

    name = "string_categorical"
    oov_token = "[UNK]"
    lookup_layer = "StringLookup"
    dtype = "string"
    infer_rank = 40
    max_inferred = 1000  # distinct values infer makes categories; more are hashed

    def column_kind(self, options):
        return "string"

    @staticmethod
    def valid_missing_token(token):
        if token is not None and not isinstance(token, str):
            raise SpecError(f"missing_token must be a string or null, got {shown(token)}")
        return token

    @staticmethod
    def valid_tokens(stats, tokens):
        from kdp_beam.bundle.checks import check_string_tokens

        check_string_tokens(stats, tokens)

    def missing_fill(self, options, feature):
        if options["missing_token"] is None:
            return None
        return options["missing_token"], False

    def propose(self, sample):
        import pyarrow as pa

        if pa.types.is_boolean(sample.kind):
            return self.name, f"true/false, {sample.share}: categories, read as text"
        if sample.text is not None and sample.distinct <= self.max_inferred:
            return self.name, f"{sample.what}, {sample.share}: categories"
        return None
