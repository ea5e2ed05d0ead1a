"""Token and document frequencies of free text, tokenised as keras TextVectorization does."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kdp_beam.analyzers.vocabulary import VocabularyAnalyzer, document_counts

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


class TextAnalyzer(VocabularyAnalyzer):
    """TextVectorization's adapt() statistics: the vocabulary by token count (Keras'
    order and tie-break, padding and OOV tokens excluded) and every kept token's document
    frequency, for tf_idf's ``log(1 + N / (1 + df))`` where N is the feature's ``count``
    (every row is a document, as in Keras, empty and missing texts included).

    Keeps ``max_tokens - 1`` tokens: TextVectorization reserves the OOV index in every
    output mode and the padding index only in "int" mode, where the builder uses the
    first ``max_tokens - 2`` (the ranking does not depend on the mode).
    """

    def __init__(
        self,
        max_tokens=None,
        standardize="lower_and_strip_punctuation",
        split="whitespace",
        ngrams=None,
    ):
        super().__init__(
            max_size=None if max_tokens is None else max_tokens - 1,
            excluded_tokens=(MASK_TOKEN, OOV_TOKEN),
        )
        self.standardize = standardize
        self.split = split
        self.ngrams = ngrams

    def token_table(self, column):
        """(token, count, document_count): occurrences, and rows containing the token."""
        return document_counts(*tokenize(column, self.standardize, self.split, self.ngrams))

    def _extra(self, table, total_count):
        return {"token_count": total_count}
