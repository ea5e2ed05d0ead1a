"""The keyed (sharded) token path gives exactly the in-process vocabularies."""

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.testing.util import assert_that

from kdp_beam.beam.keyed_vocabulary import CountTokens
from kdp_beam.analyzers import analyze_batches
from kdp_beam.analyzers.shards import token_shards
from kdp_beam.job import pipeline_options
from kdp_beam.spec import FeatureSpec

SPEC = FeatureSpec(
    {
        "user": {"type": "integer_categorical", "max_tokens": 50},
        "item": {"type": "string_categorical", "missing_token": "?"},  # keep all
        "words": {"type": "text", "max_tokens": 40, "ngrams": 2},
        "empty": "string_categorical",
    }
)


def batches(rows=20000, size=1500, seed=1):
    rng = np.random.default_rng(seed)
    users = rng.zipf(1.3, rows) % 5000  # skewed, many ties in the tail
    items = [None if i % 37 == 0 else f"item-{v}" for i, v in enumerate(rng.integers(0, 3000, rows))]
    words = [" ".join(f"w{v}" for v in rng.integers(0, 300, rng.integers(0, 6))) for _ in range(rows)]
    table = pa.table(
        {"user": users, "item": items, "words": words, "empty": pa.array([None] * rows, pa.string())}
    )
    return [b for b in table.to_batches(max_chunksize=size)]


def test_sharded_counts_equal_one_accumulator_with_tiny_shards_and_flushes():
    data = batches()
    expected = analyze_batches(SPEC, data)["features"]
    keys = ("vocabulary", "vocabulary_counts", "vocabulary_size", "distinct_count")

    def check(found):
        found = dict(found)
        assert sorted(found) == ["item", "user", "words"]  # "empty" has no tokens
        for name, stats in found.items():
            for key in keys:
                assert stats[key] == expected[name][key], (name, key)
        assert found["words"]["vocabulary_document_counts"] == expected["words"]["vocabulary_document_counts"]
        assert found["words"]["token_count"] == expected["words"]["token_count"]
        assert len(found["item"]["vocabulary"]) == expected["item"]["distinct_count"] > 3000 - 100

    with beam.Pipeline(options=pipeline_options([])) as pipeline:
        counted = (
            pipeline
            | beam.Create(data, reshuffle=True)
            | CountTokens(SPEC, shards=7, flush_rows=3000)
        )
        assert_that(counted, check)


def test_shards_are_stable_and_spread():
    tokens = pa.array([f"user-{i}" for i in range(70000)])
    shards = token_shards(tokens, 7)
    assert np.bincount(shards).min() > 9000  # 10,000 each when perfectly even
    np.testing.assert_array_equal(token_shards(tokens.slice(123, 1000), 7), shards[123:1123])
    # Pinned: the hash is not salted per process (workers must agree on every machine).
    assert token_shards(pa.array(["a", "b", "", "héllo"]), 16).tolist() == [6, 15, 0, 9]
    assert token_shards(pa.array([2**40, -1, 0], pa.int64()), 16).tolist() == [11, 12, 0]


def test_approximate_counting_keeps_its_stated_error_bound(tmp_path):
    from kdp_beam.bundle.loader import load_bundle
    from kdp_beam.job import run_analysis
    from tests.conftest import write_shards

    rng = np.random.default_rng(3)
    users = rng.zipf(1.2, 60000) % 20000
    table = pa.table({"user": users, "name": [f"n{u}" for u in users]})
    pattern = write_shards(table, tmp_path / "csv", 3)
    spec = FeatureSpec(
        {
            "user": {"type": "integer_categorical", "max_tokens": 21, "counting": "approximate"},
            "name": {"type": "string_categorical", "max_tokens": 21, "counting": "approximate"},
        }
    )
    run_analysis(spec, pattern, str(tmp_path / "bundle"))
    stats = load_bundle(str(tmp_path / "bundle")).features
    true = {int(k): v for k, v in zip(*np.unique(users, return_counts=True))}
    for name, key in (("user", int), ("name", lambda t: int(t[1:]))):
        found = stats[name]
        bound = found["vocabulary_count_error_bound"]
        assert found["vocabulary_approximate"] and found["distinct_count"] is None
        assert bound == -(-len(users) // (10 * 21))
        assert len(found["vocabulary"]) == 20
        for token, count in zip(found["vocabulary"], found["vocabulary_counts"]):
            assert true[key(token)] <= count <= true[key(token)] + bound
        kth = sorted(true.values(), reverse=True)[19]
        must_keep = {t for t, c in true.items() if c > kth + 2 * bound}
        assert must_keep <= {key(t) for t in found["vocabulary"]}
