"""Token and document frequencies of free text, tokenised as keras TextVectorization does."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kdp_beam.analyzers.vocabulary import TokenCounts, VocabularyAnalyzer

# TextVectorization's punctuation (ASCII only, as tf.strings.lower is ASCII only).
STRIP_PUNCTUATION = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'
# The padding (mask) and OOV tokens TextVectorization reserves ahead of its vocabulary.
MASK_TOKEN, OOV_TOKEN = "", "[UNK]"


def ngram_widths(ngrams):
    """TextVectorization's reading of `ngrams`: None, n (1..n) or a list of widths."""
    if ngrams is None:
        return None
    return list(range(1, ngrams + 1)) if isinstance(ngrams, int) else list(ngrams)


def tokenize(column, standardize="lower_and_strip_punctuation", split="whitespace", ngrams=None):
    """Tokens of a string column, vectorised: (tokens, row index of each token).

    Same tokens as TextVectorization's standardize / split / ngrams: ASCII lowercasing,
    its punctuation regex, runs of ASCII whitespace as one separator, n-grams joined by a
    space. Null rows have no tokens.
    """
    text = column
    if standardize in ("lower", "lower_and_strip_punctuation"):
        text = pc.ascii_lower(text)
    if standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
        text = pc.replace_substring_regex(text, STRIP_PUNCTUATION, "")
    if split is None:
        tokens = text.drop_null()
        rows = pc.indices_nonzero(pc.is_valid(text)).to_numpy()
        widths = ngram_widths(ngrams)
        if widths is not None and 1 not in widths:  # one token per row: no longer n-grams
            return pa.array([], pa.string()), np.zeros(0, np.int64)
        return tokens, rows
    pieces = pc.ascii_split_whitespace(text)
    words = pc.list_flatten(pieces)
    rows = pc.list_parent_indices(pieces).to_numpy()
    keep = pc.not_equal(words, "")  # split leaves "" at leading/trailing whitespace
    words, rows = words.filter(keep), rows[keep.to_numpy(zero_copy_only=False)]
    widths = ngram_widths(ngrams)
    if widths is None:
        return words, rows
    grams, gram_rows = [], []
    for width in widths:
        if width > len(words):
            continue
        last = len(words) - width + 1
        same_row = rows[: last] == rows[width - 1 :]
        joined = words.slice(0, last) if width == 1 else pc.binary_join_element_wise(
            *[words.slice(offset, last) for offset in range(width)], " "
        )
        grams.append(joined.filter(pa.array(same_row)))
        gram_rows.append(rows[:last][same_row])
    if not grams:
        return pa.array([], pa.string()), np.zeros(0, np.int64)
    return pa.concat_arrays(grams), np.concatenate(gram_rows)


class TextAccumulator:
    __slots__ = ("documents", "tokens", "token_counts", "document_counts")

    def __init__(self):
        self.documents = 0
        self.tokens = 0
        self.token_counts = TokenCounts()
        self.document_counts = TokenCounts()

    def __getstate__(self):
        return tuple(getattr(self, s) for s in self.__slots__)

    def __setstate__(self, state):
        for slot, value in zip(self.__slots__, state):
            setattr(self, slot, value)


class TextAnalyzer:
    """TextVectorization's adapt() statistics: the vocabulary by token count (Keras'
    order and tie-break, padding and OOV tokens excluded) and every kept token's document
    frequency, for tf_idf's ``log(1 + N / (1 + df))``.

    Keeps ``max_tokens - 1`` tokens: TextVectorization reserves the OOV index in every
    output mode and the padding index only in "int" mode, where the builder uses the
    first ``max_tokens - 2`` (the ranking does not depend on the mode).

    Every row is a document, as in Keras (empty and missing texts included).
    """

    def __init__(self, max_tokens=None, standardize="lower_and_strip_punctuation", split="whitespace", ngrams=None):
        self.standardize = standardize
        self.split = split
        self.ngrams = ngrams
        self._vocabulary = VocabularyAnalyzer(
            max_size=None if max_tokens is None else max_tokens - 1,
            excluded_tokens=(MASK_TOKEN, OOV_TOKEN),
        )

    def create_accumulator(self):
        return TextAccumulator()

    def add_batch(self, acc, column):
        acc.documents += len(column)
        tokens, rows = tokenize(column, self.standardize, self.split, self.ngrams)
        acc.tokens += len(tokens)
        if len(tokens):
            self._vocabulary.add_batch(acc.token_counts, tokens)
            pairs = pa.table({"row": rows, "token": tokens}).group_by(["row", "token"]).aggregate([])
            self._vocabulary.add_batch(acc.document_counts, pairs["token"])
        return acc

    def merge_accumulators(self, accs):
        accs = list(accs)
        merged = TextAccumulator()
        merged.documents = sum(a.documents for a in accs)
        merged.tokens = sum(a.tokens for a in accs)
        merged.token_counts = self._vocabulary.merge_accumulators([a.token_counts for a in accs])
        merged.document_counts = self._vocabulary.merge_accumulators(
            [a.document_counts for a in accs]
        )
        return merged

    def finalize(self, acc):
        stats = self._vocabulary.finalize(acc.token_counts)
        document_counts = acc.document_counts.fold()
        if stats["vocabulary"]:
            lookup = pc.index_in(pa.array(stats["vocabulary"], pa.string()), document_counts["token"])
            stats["vocabulary_document_counts"] = document_counts["count"].take(lookup).to_pylist()
        else:
            stats["vocabulary_document_counts"] = []
        stats["document_count"] = acc.documents
        stats["token_count"] = acc.tokens
        return stats
