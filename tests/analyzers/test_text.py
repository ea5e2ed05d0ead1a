"""Tokens and text statistics against keras TextVectorization on the same strings."""

import collections

import keras
import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from kdp_beam.analyzers.text import TextAnalyzer, tokenize

ALPHABET = st.sampled_from(list("abcAB  \t\n,.!-'é\u00a0_x[]\"#"))
TEXTS = st.lists(st.text(ALPHABET, max_size=20), min_size=1, max_size=30)


def keras_tokens(texts, standardize, split, ngrams):
    layer = keras.layers.TextVectorization(standardize=standardize, split=split, ngrams=ngrams)
    tokens = layer._preprocess(tf.constant(texts)[:, None] if split is None else tf.constant(texts))
    rows = tokens.to_list() if hasattr(tokens, "to_list") else tokens.numpy().tolist()
    return [[t.decode() for t in (row if isinstance(row, list) else [row])] for row in rows]


@pytest.mark.parametrize(
    "standardize, split, ngrams",
    [
        ("lower_and_strip_punctuation", "whitespace", None),
        ("lower", "whitespace", 2),
        ("strip_punctuation", "whitespace", (1, 3)),
        (None, "whitespace", (2,)),
        ("lower_and_strip_punctuation", None, None),
    ],
)
@settings(max_examples=40, deadline=None)
@given(texts=TEXTS)
def test_tokens_are_keras_tokens(texts, standardize, split, ngrams):
    tokens, rows = tokenize(pa.array(texts), standardize, split, ngrams)
    ours = [[] for _ in texts]
    for token, row in zip(tokens.to_pylist(), rows):
        ours[row].append(token)
    expected = keras_tokens(texts, standardize, split, ngrams)
    # n-grams come out grouped by width in both; compare as multisets per row.
    assert [sorted(r) for r in ours] == [sorted(r) for r in expected]


def test_vocabulary_and_document_counts_equal_keras_adapt():
    rng = np.random.default_rng(5)
    words = ["Alpha", "beta", "beta,", "GAMMA", "delta!", "eps", "zeta", "eta", "Theta", "ä"]
    texts = [" ".join(rng.choice(words, rng.integers(0, 9))) for _ in range(3000)]
    analyzer = TextAnalyzer(max_tokens=9, ngrams=2)  # keeps 8: all but the OOV token
    accs = []
    for start in range(0, len(texts), 700):  # batches, then a merge, as on workers
        acc = analyzer.create_accumulator()
        accs.append(analyzer.add_batch(acc, pa.array(texts[start : start + 700])))
    stats = analyzer.finalize(analyzer.merge_accumulators(accs))
    layer = keras.layers.TextVectorization(max_tokens=9, ngrams=2, output_mode="tf_idf")
    layer.adapt(np.array(texts))
    assert stats["vocabulary"] == layer.get_vocabulary(include_special_tokens=False)
    # Independent document frequencies.
    documents = collections.Counter()
    for row in keras_tokens(texts, "lower_and_strip_punctuation", "whitespace", 2):
        documents.update(set(row))
    assert stats["vocabulary_document_counts"] == [documents[t] for t in stats["vocabulary"]]
    assert stats["token_count"] == sum(len(row) for row in keras_tokens(texts, "lower_and_strip_punctuation", "whitespace", 2))
    idf = np.log(1 + len(texts) / (1 + np.array(stats["vocabulary_document_counts"])))
    np.testing.assert_allclose(layer._lookup_layer.idf_weights.numpy()[1:], idf, rtol=1e-6)
