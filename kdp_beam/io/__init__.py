"""Readers: sharded files -> PCollection[pyarrow.RecordBatch] of the declared columns."""

from kdp_beam.errors import InputDataError
from kdp_beam.io.csv import ReadCsv
from kdp_beam.io.jsonl import ReadJsonLines
from kdp_beam.io.parquet import ReadParquet
from kdp_beam.io.tfrecord import ReadTFRecord

READERS = {"csv": ReadCsv, "parquet": ReadParquet, "tfrecord": ReadTFRecord, "jsonl": ReadJsonLines}
_EXTENSIONS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".tfrecord": "tfrecord",
    ".tfrecords": "tfrecord",
    ".tfr": "tfrecord",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
_COMPRESSION = (".gz", ".bz2", ".zst", ".zstd", ".deflate", ".xz", ".lzma")  # as Beam detects them


def infer_format(file_pattern):
    """The format name (a READERS key) from the pattern's extension, compression suffix
    ignored."""
    path = file_pattern if isinstance(file_pattern, str) else file_pattern[0]
    name = path.lower()
    for suffix in _COMPRESSION:
        name = name.removesuffix(suffix)
    for extension, input_format in _EXTENSIONS.items():
        if name.endswith(extension):
            return input_format
    raise InputDataError(
        f"cannot tell the format of {path!r} from its extension; "
        f"pass --format with one of {sorted(READERS)}"
    )


def ReadInput(file_pattern, spec, input_format=None, **options):  # noqa: N802 - a PTransform
    """The reader PTransform for the pattern's format (inferred from its extension);
    `options` go to the reader (e.g. split_size for CSV)."""
    return READERS[input_format or infer_format(file_pattern)](file_pattern, spec, **options)


__all__ = [
    "READERS",
    "ReadCsv",
    "ReadInput",
    "ReadJsonLines",
    "ReadParquet",
    "ReadTFRecord",
    "infer_format",
]
