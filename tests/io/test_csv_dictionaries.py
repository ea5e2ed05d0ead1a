"""String columns read dictionary-encoded from CSV (ReadCsv's `dictionaries`, which kdp-beam
analyze asks for its dictionary_features): the same statistics, to the byte, as reading
every value, and the counts Python's csv module and Counter give, on odd-but-valid text
(quoted commas and newlines, "NA" and "null" as tokens, empty fields, long fields, many
distinct values, byte ranges, a gzip file, skip mode's record-by-record re-read)."""

import collections
import csv
import gzip
import json

import numpy as np
import pyarrow as pa
import pytest

from kdp_beam.analyzers.dataset import dictionary_features
from kdp_beam.bundle.loader import load_bundle
from kdp_beam.io.csv import ReadCsv, _ReadCsvRange
from kdp_beam.job import run_analysis
from kdp_beam.spec import FeatureSpec
from tests.io.helpers import analysed, keras_vocabulary

ROWS = 12_000
SPEC = FeatureSpec(
    {
        "zipf": "string_categorical",
        "odd": {"type": "string_categorical", "missing_token": "[missing]"},
        "wide": {"type": "string_categorical", "max_tokens": 40},
        "many": "string_categorical",
        "hashed": {"type": "string_hashed", "num_bins": 8},
        "words": "text",
        "x": "float_normalized",
    }
)
ODD = ["NA", "null", "", "a,b", 'say "hi"', "é", " padded ", "N/A", "-", "0x1F"]


def rows(seed, newlines):
    rng = np.random.default_rng(seed)
    odd = ODD + (["two\nlines", "cr\r\nlf"] if newlines else [])
    for i in range(ROWS):
        yield {
            "zipf": f"tok-{rng.zipf(1.4) % 150}",
            "odd": odd[int(rng.integers(0, len(odd)))],
            "wide": "w" * int(rng.integers(1, 4000)) + str(i % 7),  # fields of up to 4 KB
            "many": f"id-{int(rng.integers(0, 10**9)):09d}",
            "hashed": f"h{int(rng.integers(0, 50))}",
            "words": " ".join(f"w{v}" for v in rng.integers(0, 30, 3)),
            "x": repr(float(rng.normal())),
        }


def write_csv(path, records, opener=open):
    with opener(path, "wt", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(SPEC.features))
        writer.writeheader()
        writer.writerows(records)


@pytest.fixture(scope="module")
def csv_files(tmp_path_factory):
    """A plain file cut into byte ranges (no newline in a value, as splitting needs), and a
    gzip file (read whole) whose values hold newlines."""
    folder = tmp_path_factory.mktemp("csv_dictionaries")
    write_csv(folder / "part-0.csv", list(rows(1, newlines=False)))
    write_csv(folder / "part-1.csv.gz", list(rows(2, newlines=True)), gzip.open)
    return str(folder / "part-*")


def python_csv_records(pattern):
    """Every record, by Python's csv module."""
    records = []
    for path, opener in ((pattern.replace("*", "0.csv"), open), (pattern.replace("*", "1.csv.gz"), gzip.open)):
        with opener(path, "rt", newline="", encoding="utf-8") as f:
            records.extend(csv.DictReader(f))
    return records


def statistics(pattern, dictionaries, path, on_bad_record="fail"):
    read = ReadCsv(pattern, SPEC, block_size=1 << 15, split_size=200_000, on_bad_record=on_bad_record,
                   dictionaries=dictionaries)
    return analysed(read, SPEC, path)


def test_the_reader_gives_them_encoded_each_batch_its_own_dictionary(csv_files):
    assert dictionary_features(SPEC) == {"zipf", "odd", "wide", "many", "hashed"}
    reader = _ReadCsvRange(SPEC, 1 << 15, dictionaries=dictionary_features(SPEC))
    batches = list(reader.process((csv_files.replace("*", "0.csv"), 0, None)))
    assert len(batches) > 10
    for batch in batches:
        encoded = {field.name for field in batch.schema if pa.types.is_dictionary(field.type)}
        assert encoded == dictionary_features(SPEC)
        assert batch.column("zipf").type == pa.dictionary(pa.int32(), pa.string())
        # a batch's dictionary holds its own values only, not every batch's before it
        assert len(batch.column("many").dictionary) <= batch.num_rows


def assert_counts_are_pythons(features, records):
    for name in ("zipf", "wide", "many"):
        tokens, counts = keras_vocabulary([r[name] for r in records], SPEC.features[name].options["max_tokens"])
        assert features[name]["vocabulary"] == tokens, name
        assert features[name]["vocabulary_counts"] == counts, name
    # "" is missing (missing_token counts it); "NA" and "null" are tokens of a string column.
    odd = collections.Counter(r["odd"] or "[missing]" for r in records)
    assert dict(zip(features["odd"]["vocabulary"], features["odd"]["vocabulary_counts"])) == odd


def test_the_statistics_equal_reading_every_value_and_pythons_counts(csv_files, tmp_path):
    encoded = statistics(csv_files, dictionary_features(SPEC), tmp_path / "encoded.json")
    plain = statistics(csv_files, (), tmp_path / "plain.json")
    assert json.dumps(encoded, sort_keys=True) == json.dumps(plain, sort_keys=True)
    assert encoded["row_count"] == 2 * ROWS
    assert_counts_are_pythons(encoded["features"], python_csv_records(csv_files))


def test_skip_modes_record_by_record_reread_mixes_plain_batches_in(csv_files, tmp_path):
    # A bad record in the middle of a range: that range is re-read by Python's csv module
    # after the rows emitted, its batches plain strings, the others dictionary-encoded.
    good = list(rows(3, newlines=False))
    folder = tmp_path / "data"
    folder.mkdir()
    write_csv(folder / "part-0.csv", good)
    text = (folder / "part-0.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    middle = len(text) // 2
    text.insert(middle, "only,three,fields\n")
    (folder / "part-0.csv").write_text("".join(text), encoding="utf-8")
    pattern = str(folder / "part-*.csv")
    encoded = statistics(pattern, dictionary_features(SPEC), tmp_path / "encoded.json", "skip")
    plain = statistics(pattern, (), tmp_path / "plain.json", "skip")
    assert json.dumps(encoded, sort_keys=True) == json.dumps(plain, sort_keys=True)
    assert encoded["row_count"] == ROWS and encoded["bad_records"]["count"] == 1
    assert_counts_are_pythons(encoded["features"], good)


def test_kdp_beam_analyze_reads_them_so_and_writes_the_same_statistics(csv_files, tmp_path):
    run_analysis(SPEC, csv_files, str(tmp_path / "bundle"), input_format="csv", split_size=200_000)
    written = load_bundle(str(tmp_path / "bundle")).features  # vocabularies read from their files
    plain = statistics(csv_files, (), tmp_path / "plain.json")
    for name in dictionary_features(SPEC):  # (the float's sums depend on the batches' sizes)
        assert {k: v for k, v in written[name].items() if k != "vocabulary_file"} == plain["features"][name], name
