"""text: free text tokenised as keras TextVectorization does, its vocabulary (and document
frequencies, for tf_idf) from the pass (an extension beyond keras.utils.FeatureSpace)."""

from kdp_beam.errors import SpecError
from kdp_beam.feature_types.base import FeatureType
from kdp_beam.feature_types.options import MAX_ENCODED_WIDTH, integer, one_of, width
from kdp_beam.feature_types.registry import register_type

OUTPUT_MODES = ("int", "multi_hot", "count", "tf_idf")
STANDARDIZE = (None, "lower_and_strip_punctuation", "lower", "strip_punctuation")
SPLIT = (None, "whitespace")
MAX_NGRAM = 16  # n-gram width: each width is one more pass over every row's words.
RESERVED_TOKENS = ("", "[UNK]")  # TextVectorization's padding and OOV tokens
VOCABULARY_COLUMNS = ("vocabulary", "vocabulary_counts", "vocabulary_document_counts")


@register_type
class Text(FeatureType):
    """Free text: "multi_hot", "count" or "tf_idf" give max_tokens-wide floats; "int"
    gives token indices padded to sequence_length (use output_mode="dict")."""

    name = "text"
    options = {
        "max_tokens": None,
        "output_mode": "multi_hot",
        "ngrams": None,
        "sequence_length": None,
        "standardize": "lower_and_strip_punctuation",
        "split": "whitespace",
    }
    encoding_options = ("output_mode", "sequence_length")
    infer_rank = 20

    def validate(self, options):
        one_of(options["output_mode"], "output_mode", OUTPUT_MODES)
        max_tokens, ngrams, length = options["max_tokens"], options["ngrams"], options["sequence_length"]
        if max_tokens is not None:
            options["max_tokens"] = integer(
                max_tokens, "max_tokens (null: every token)", 3, *width("max_tokens", options["output_mode"])
            )
        if isinstance(ngrams, (list, tuple)):
            if not ngrams:
                raise SpecError("ngrams must be null, an integer or a non-empty list of widths")
            options["ngrams"] = [integer(n, "each of ngrams", 1, MAX_NGRAM) for n in ngrams]
        elif ngrams is not None:
            options["ngrams"] = integer(ngrams, "ngrams (null, an integer or a list)", 1, MAX_NGRAM)
        if options["output_mode"] == "int":
            options["sequence_length"] = integer(
                length, "sequence_length", 1, MAX_ENCODED_WIDTH,
                " (output_mode 'int' needs it: the feature space needs a fixed width)",
            )
        elif length is not None:
            raise SpecError("sequence_length applies only to output_mode 'int'")
        one_of(options["standardize"], "standardize", STANDARDIZE)
        one_of(options["split"], "split", SPLIT)
        return options

    def column_kind(self, options):
        return "string"

    def analyzers(self, options, profile=False):
        from kdp_beam.analyzers.text import TextAnalyzer

        found = super().analyzers(options, profile)
        found["text"] = TextAnalyzer(
            options["max_tokens"], options["standardize"], options["split"], options["ngrams"]
        )
        return found

    def vocabulary_columns(self, options):
        return VOCABULARY_COLUMNS

    def check_statistics(self, stats, options, profile=False):
        from kdp_beam.bundle import checks

        super().check_statistics(stats, options, profile)
        counts = checks.check_vocabulary(stats, checks.check_string_tokens, RESERVED_TOKENS, options["max_tokens"], 1)
        checks.check_document_counts(stats, counts)

    def keras_feature(self, feature_space, name, options):
        from kdp_beam.builder.layers import TextVectorization

        ngrams = options["ngrams"]
        preprocessor = TextVectorization(
            max_tokens=options["max_tokens"],
            standardize=options["standardize"],
            split=options["split"],
            ngrams=tuple(ngrams) if isinstance(ngrams, list) else ngrams,
            output_mode=options["output_mode"],
            output_sequence_length=options["sequence_length"],
            name=f"{name}_preprocessor",
        )
        mode = "int" if options["output_mode"] == "int" else "float"
        return feature_space.feature("string", preprocessor, mode, declaration={"type": self.name, **options})

    def from_keras(self, feature):
        import keras

        p = feature.preprocessor
        if not isinstance(p, keras.layers.TextVectorization):
            return None
        from kdp_beam.builder.keras_internals import text_vectorization_options

        if p.get_config()["vocabulary"] is not None:
            return None  # constructed with its vocabulary: keras' FeatureSpace leaves it as it is
        config = text_vectorization_options(p)
        standardize, split, ngrams = config["standardize"], config["split"], config["ngrams"]
        if not (standardize in STANDARDIZE and split in SPLIT):
            return None  # custom tokenisation (a callable, "character"): adapted the keras way
        return {
            "max_tokens": config["max_tokens"],
            "output_mode": config["output_mode"],
            "ngrams": list(ngrams) if isinstance(ngrams, (list, tuple)) else ngrams,
            "sequence_length": config["output_sequence_length"],
            "standardize": standardize,
            "split": split,
        }

    def set_statistics(self, preprocessor, stats, options):
        from kdp_beam.builder.keras_internals import with_vocabulary
        from kdp_beam.builder.layers import idf_weights
        from kdp_beam.builder.vocabularies import no_value_vocabulary

        output_mode, max_tokens = options["output_mode"], options["max_tokens"]
        # The bundle keeps max_tokens - 1 tokens; "int" mode also reserves padding.
        reserved = 2 if output_mode == "int" else 1
        size = None if max_tokens is None else max_tokens - reserved
        vocabulary = list(stats["vocabulary"][:size])
        weights = None
        if output_mode == "tf_idf":
            document_counts = stats["vocabulary_document_counts"][:size] if vocabulary else [0]
            weights = idf_weights(document_counts, stats["count"])  # every row is a document
        # Constructed with its vocabulary, which keras then keeps in the layer's config (not
        # its newline-separated asset file: tokens with newlines survive .keras save/load).
        return with_vocabulary(preprocessor, vocabulary or no_value_vocabulary(1, "string"), weights)

    def summary(self, stats, options):
        return f"{stats['distinct_count']:,} distinct, {stats['vocabulary_size']:,} kept"

    def report_section(self, stats, options):
        from kdp_beam.tools import report_parts

        per_document = stats["token_count"] / stats["count"] if stats["count"] else 0
        extra = [("tokens", stats["token_count"]), ("tokens per document", f"{per_document:.2f}")]
        return report_parts.vocabulary_section(stats, stats.get("token_count") or 0, "tokens", extra)

    def propose(self, sample):
        if sample.text is None:
            return None
        words = sample.words_per_value
        if words >= 3 and sample.distinct > 0.5 * sample.n:
            return (
                {"type": self.name, "max_tokens": 10_000, "output_mode": "tf_idf"},
                f"{words:.1f} words per value, {sample.share}: free text",
            )
        return None
