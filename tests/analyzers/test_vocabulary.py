"""Vocabularies in exactly the order keras' lookup layers adapt them."""

import keras
import numpy as np
import pyarrow as pa
import pytest

from kdp_beam.analyzers import VocabularyAnalyzer, vocabulary as vocabulary_module


def vocabulary_of(batches, **kwargs):
    analyzer = VocabularyAnalyzer(**kwargs)
    accs = [analyzer.add_batch(analyzer.create_accumulator(), pa.array(b)) for b in batches]
    return analyzer.finalize(analyzer.merge_accumulators(accs[::-1]))


# Few distinct values and many rows: lots of count ties, which the tie-break decides.
rng = np.random.default_rng(7)
STRINGS = rng.choice(["b", "a", "c", "é", "", "A", "zz", "[UNK]", "a b"], 5000)
INTEGERS = rng.integers(-3, 12, 5000)


@pytest.mark.parametrize("max_tokens, num_oov", [(None, 1), (5, 1), (6, 2), (4, 0)])
def test_string_vocabulary_matches_keras_string_lookup(max_tokens, num_oov):
    layer = keras.layers.StringLookup(max_tokens=max_tokens, num_oov_indices=num_oov)
    layer.adapt(STRINGS.reshape(-1, 1))
    expected = layer.get_vocabulary(include_special_tokens=False)
    stats = vocabulary_of(
        np.array_split(STRINGS, 9),
        max_size=None if max_tokens is None else max_tokens - num_oov,
        excluded_tokens=["[UNK]"],
    )
    assert stats["vocabulary"] == expected
    assert stats["distinct_count"] == len(set(STRINGS))


@pytest.mark.parametrize("max_tokens", [None, 6])
def test_integer_vocabulary_matches_keras_integer_lookup(max_tokens):
    layer = keras.layers.IntegerLookup(max_tokens=max_tokens)
    layer.adapt(INTEGERS.reshape(-1, 1))
    expected = [int(t) for t in layer.get_vocabulary(include_special_tokens=False)]
    stats = vocabulary_of(
        np.array_split(INTEGERS, 4),
        max_size=None if max_tokens is None else max_tokens - 1,
        excluded_tokens=[-1],
    )
    assert stats["vocabulary"] == expected
    assert -1 not in stats["vocabulary"]


def test_counts_are_exact_and_folding_is_invisible(monkeypatch):
    monkeypatch.setattr(vocabulary_module, "_COMPACT_MIN_ROWS", 8)
    tokens = rng.integers(0, 500, 20_000).astype(str)
    stats = vocabulary_of(np.array_split(tokens, 40))
    values, counts = np.unique(tokens, return_counts=True)
    expected = dict(zip(values.tolist(), counts.tolist()))
    assert dict(zip(stats["vocabulary"], stats["vocabulary_counts"])) == expected
    assert stats["vocabulary_counts"] == sorted(stats["vocabulary_counts"], reverse=True)


def test_a_small_vocabularys_many_batches_wait_folded_in_few_tables():
    # 100 tokens, 1,000 batches: the buffered tables are folded every _COMPACT_TABLES, not
    # kept by the hundred until their rows reach _COMPACT_MIN_ROWS; the counts stay exact.
    analyzer = VocabularyAnalyzer()
    counts, most_waiting = vocabulary_module.TokenCounts(), 0
    batches = [rng.integers(0, 100, 500).astype(str) for _ in range(1000)]
    for batch in batches:
        counts.add(analyzer.token_table(pa.array(batch)))
        most_waiting = max(most_waiting, len(counts.tables))
    assert most_waiting <= vocabulary_module._COMPACT_TABLES + 1
    values, expected = np.unique(np.concatenate(batches), return_counts=True)
    table = counts.fold()
    assert dict(zip(table["token"].to_pylist(), table["count"].to_pylist())) == dict(zip(values.tolist(), expected.tolist()))


def test_nulls_are_not_tokens_and_empty_input_has_no_vocabulary():
    assert vocabulary_of([pa.array([None, "a", None])])["vocabulary"] == ["a"]
    assert vocabulary_of([pa.array([None], pa.string())])["vocabulary"] == []
