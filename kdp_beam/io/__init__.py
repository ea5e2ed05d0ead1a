"""Readers: sharded files -> PCollection[pyarrow.RecordBatch] of the declared columns."""

from kdp_beam.errors import InputDataError
from kdp_beam.io.csv import ReadCsv
from kdp_beam.io.parquet import ReadParquet

READERS = {"csv": ReadCsv, "parquet": ReadParquet}
_EXTENSIONS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_COMPRESSION = (".gz", ".bz2", ".zst", ".deflate")


def infer_format(file_pattern):
    """"csv" or "parquet" from the pattern's extension (compression suffix ignored)."""
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


def ReadInput(file_pattern, spec, input_format=None):  # noqa: N802 - reads as a PTransform
    """The reader PTransform for the pattern's format (inferred from its extension)."""
    return READERS[input_format or infer_format(file_pattern)](file_pattern, spec)


__all__ = ["READERS", "ReadCsv", "ReadInput", "ReadParquet", "infer_format"]
