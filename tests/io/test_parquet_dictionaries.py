"""String columns read dictionary-encoded from Parquet (ReadParquet's `dictionaries`, which
kdp-beam analyze asks for its dictionary_features): the same statistics, to the byte, as
reading every value, and the counts Python's Counter gives, on odd-but-valid columns."""

import collections
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from kdp_beam.analyzers.dataset import dictionary_features
from kdp_beam.analyzers.vocabulary import VocabularyAnalyzer
from kdp_beam.columns import blank_as_null, cast_column
from kdp_beam.io.parquet import ReadParquet, _ReadRowGroup
from kdp_beam.job import run_analysis
from kdp_beam.spec import FeatureSpec
from tests.io.helpers import analysed, keras_vocabulary

ROWS = 30_000
SPEC = FeatureSpec(
    {
        "zipf": "string_categorical",
        "blanks": {"type": "string_categorical", "missing_token": "[missing]"},
        "wide": {"type": "string_categorical", "max_tokens": 50},
        "large": "string_categorical",
        "categorical": "string_categorical",  # dictionary-typed in the file (pandas' category)
        "bytes": "string_categorical",
        "many": "string_categorical",  # more distinct values than a dictionary page holds
        "hashed": {"type": "string_hashed", "num_bins": 8},
        "approximate": {"type": "string_categorical", "counting": "approximate", "max_tokens": 20},
        "words": "text",
        "x": "float_normalized",
    }
)


def columns(rows=ROWS, seed=3):
    rng = np.random.default_rng(seed)
    zipf = [f"tok-{v}" for v in rng.zipf(1.4, rows) % 200]
    blanks = [None if i % 11 == 0 else "" if i % 7 == 0 else "[missing]" if i % 13 == 0 else f"é-{v}" for i, v in enumerate(rng.integers(0, 30, rows))]
    wide = ["w" * int(v) + str(v % 7) for v in rng.integers(1, 3000, rows)]  # fields of up to 3 KB
    many = [f"id-{v:09d}" for v in rng.integers(0, 10**9, rows)]
    words = [" ".join(f"w{v}" for v in rng.integers(0, 40, 3)) for _ in range(rows)]
    return {
        "zipf": pa.array(zipf),
        "blanks": pa.array(blanks),
        "wide": pa.array(wide),
        "large": pa.array(zipf[::-1], pa.large_string()),
        "categorical": pa.array(blanks[::-1]).dictionary_encode(),
        "bytes": pa.array([t.encode() for t in zipf], pa.binary()),
        "many": pa.array(many),
        "hashed": pa.array(zipf),
        "approximate": pa.array(zipf),
        "words": pa.array(words).dictionary_encode(),
        "x": pa.array(rng.normal(size=rows)),
    }


@pytest.fixture(scope="module")
def parquet_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dictionaries")
    data = columns()
    half = ROWS // 2
    for part, rows in enumerate((slice(0, half), slice(half, ROWS))):
        table = pa.table({name: column[rows] for name, column in data.items()})
        # Small row groups and dictionary pages: many dictionaries, and fall-backs to plain.
        pq.write_table(table, folder / f"part-{part}.parquet", row_group_size=4000, dictionary_pagesize_limit=1 << 14)
    return str(folder / "part-*.parquet"), data


def test_which_features_are_read_dictionary_encoded():
    assert dictionary_features(SPEC) == {"zipf", "blanks", "wide", "large", "categorical", "bytes", "many", "hashed"}
    labelled = FeatureSpec(
        {
            "a": "string_categorical",
            "b": {"type": "string_categorical", "output_mode": "target"},
            "c": {"type": "string_categorical", "multivalent": True},
            "d": "integer_categorical",
        },
        label="label",
    )
    assert dictionary_features(labelled) == {"a"}


def test_the_reader_gives_them_encoded_and_the_others_decoded(parquet_files):
    pattern, _ = parquet_files
    reader = _ReadRowGroup(SPEC, 3000, dictionaries=dictionary_features(SPEC))
    batch = next(iter(reader.process((pattern.replace("*", "1"), 2))))
    encoded = {field.name for field in batch.schema if pa.types.is_dictionary(field.type)}
    # The text feature's dictionary decoded; bytes decoded too, as their UTF-8 is checked.
    assert encoded == dictionary_features(SPEC) - {"bytes"}
    assert {batch.schema.field(name).type.value_type for name in encoded} == {pa.string()}


def statistics(pattern, dictionaries, path):
    return analysed(ReadParquet(pattern, SPEC, batch_rows=3000, dictionaries=dictionaries), SPEC, path)


def test_the_statistics_equal_reading_every_value(parquet_files, tmp_path):
    pattern, data = parquet_files
    encoded = statistics(pattern, dictionary_features(SPEC), tmp_path / "encoded.json")
    plain = statistics(pattern, (), tmp_path / "plain.json")
    for document in (encoded, plain):  # tfx_bsl's Misra-Gries sketch serialises its items
        del document["state"]["features"]["approximate"]  # in an order of its own each run
    assert json.dumps(encoded, sort_keys=True) == json.dumps(plain, sort_keys=True)
    features = encoded["features"]
    for name in ("zipf", "wide", "large", "bytes", "many"):
        values = [v.decode() if isinstance(v, bytes) else v for v in data[name].to_pylist()]
        tokens, counts = keras_vocabulary(values, SPEC.features[name].options["max_tokens"])
        assert features[name]["vocabulary"] == tokens, name
        assert features[name]["vocabulary_counts"] == counts, name
    # "" and null are missing; missing_token counts them, and the rows that hold it.
    blanks = collections.Counter(v or "[missing]" for v in data["blanks"].to_pylist())
    assert dict(zip(features["blanks"]["vocabulary"], features["blanks"]["vocabulary_counts"])) == blanks
    missing = sum(1 for v in data["categorical"].to_pylist() if not v)
    assert features["categorical"]["missing_count"] == missing
    assert sum(features["categorical"]["vocabulary_counts"]) == ROWS - missing


def test_kdp_beam_analyze_reads_them_so_and_writes_the_same_bundle(parquet_files, tmp_path):
    pattern, _ = parquet_files
    run_analysis(SPEC, pattern, str(tmp_path / "bundle"))
    with open(tmp_path / "bundle" / "statistics.json") as f:
        written = json.load(f)
    plain = statistics(pattern, (), tmp_path / "plain.json")
    assert written["features"]["many"]["vocabulary_size"] == plain["features"]["many"]["vocabulary_size"] > ROWS - 10


TOKENS = VocabularyAnalyzer(missing_token="m")


@pytest.mark.parametrize(
    "indices, dictionary",
    [
        ([0, 1, 1, None, 3, 0], ["a", "", "b", "unused"]),
        ([0, 1, 2, 2, None], ["a", "a", "m"]),  # a token twice; missing_token held too
        ([], ["a"]),
        ([None, None], ["a"]),
        ([0, 0], [""]),
    ],
)
def test_a_dictionary_s_tokens_equal_its_decoded_values(indices, dictionary):
    column = pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()), pa.array(dictionary))
    encoded = blank_as_null(column)
    decoded = blank_as_null(column.cast(pa.string()))
    assert encoded.cast(pa.string()).to_pylist() == decoded.to_pylist()
    assert encoded.null_count == decoded.null_count

    def rows(table):
        return sorted(zip(table["token"].to_pylist(), table["count"].to_pylist()))

    assert rows(TOKENS.token_table(encoded)) == rows(TOKENS.token_table(decoded))
    assert TOKENS.token_table(encoded).schema == TOKENS.token_table(decoded).schema


def test_a_dictionary_holding_a_null_is_decoded():
    """Rows pointing at a null entry are missing, but not counted as nulls by Arrow: such a
    column is read as its values."""
    column = pa.DictionaryArray.from_arrays(pa.array([0, 1, 1], pa.int32()), pa.array(["a", None]))
    cast = cast_column(column, "string", "f", "here", keep_dictionary=True)
    assert cast.type == pa.string() and cast.null_count == 2
    large = pa.DictionaryArray.from_arrays(pa.array([0, 0], pa.int32()), pa.array(["a"], pa.large_string()))
    kept = cast_column(large, "string", "f", "here", keep_dictionary=True)
    assert kept.type == pa.dictionary(pa.int32(), pa.string()) and pc.equal(kept.cast(pa.string()), "a").to_pylist() == [True, True]
