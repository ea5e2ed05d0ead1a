"""Readers: data -> pyarrow RecordBatches of the declared columns, for the analyzers.

- Beam readers of sharded files (local, gs://, s3://): ``ReadCsv`` and ``ReadJsonLines``
  (byte ranges, kdp_beam.io.ranges), ``ReadParquet`` (row groups), ``ReadTFRecord`` (whole
  files), and ``ReadInput``, which picks one by the files' extension. Each returns
  ``{"batches": PCollection[RecordBatch], "bad_records": PCollection[BadRecord]}`` (the
  records a skip-mode read left out, a tagged output); what they share is in
  kdp_beam.io.files (``Reader``).
- kdp_beam.io.memory: in-memory data (tf.data, a dict of arrays, pandas) for
  ``FeatureSpace.adapt``; it imports no Beam, and TensorFlow only for a tf.data.Dataset.

The Beam readers are imported on first use (as in kdp_beam's own namespace), so that the
builder can read in-memory data without importing Beam.
"""

import importlib

from kdp_beam.errors import InputDataError

_READER_MODULES = {
    "ReadCsv": "kdp_beam.io.csv",
    "ReadJsonLines": "kdp_beam.io.jsonl",
    "ReadParquet": "kdp_beam.io.parquet",
    "ReadTFRecord": "kdp_beam.io.tfrecord",
}
_FORMATS = {"csv": "ReadCsv", "parquet": "ReadParquet", "tfrecord": "ReadTFRecord", "jsonl": "ReadJsonLines"}
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


def _reader(name):
    return getattr(importlib.import_module(_READER_MODULES[name]), name)


def __getattr__(name):
    if name in _READER_MODULES:
        return _reader(name)
    if name == "READERS":  # {format name: reader PTransform class}
        return {input_format: _reader(reader) for input_format, reader in _FORMATS.items()}
    raise AttributeError(f"module 'kdp_beam.io' has no attribute {name!r}")


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
        f"pass --format with one of {sorted(_FORMATS)}"
    )


def ReadInput(file_pattern, spec, input_format=None, **options):  # noqa: N802 - a PTransform
    """The reader PTransform for the pattern's format (inferred from its extension);
    `options` go to the reader (e.g. split_size for CSV; columns: {column: read kind} to
    read instead of the spec's, as a transform reads its features and kept columns)."""
    return _reader(_FORMATS[input_format or infer_format(file_pattern)])(file_pattern, spec, **options)


__all__ = [
    "READERS",
    "ReadCsv",
    "ReadInput",
    "ReadJsonLines",
    "ReadParquet",
    "ReadTFRecord",
    "infer_format",
]
