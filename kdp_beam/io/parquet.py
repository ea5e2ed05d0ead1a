"""ReadParquet: Parquet files as a stream of RecordBatches, split by row group."""

import contextlib

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from kdp_beam.columns import cast_column, column_types
from kdp_beam.errors import InputDataError
from kdp_beam.io.files import READ_METRICS, MatchInputFiles, ProgressLog

DEFAULT_BATCH_ROWS = 65536


class ReadParquet(beam.PTransform):
    """Reads the declared columns of Parquet files into RecordBatches.

    Each row group is a unit of work, so one large file is read by many workers. Columns
    are cast exactly to the declared type (int32 -> int64, float32 -> float64,
    dictionary/large strings -> string); a lossy or impossible cast, or a declared column
    missing from a file's schema, raises InputDataError naming the file and the column
    before any row of that file is read.
    """

    def __init__(self, file_pattern, spec, batch_rows=DEFAULT_BATCH_ROWS, on_bad_record="fail"):
        # Parquet is typed: it has no record-level errors to skip (on_bad_record accepted
        # for a uniform reader signature); schema errors fail in both modes.
        super().__init__()
        self.file_pattern = file_pattern
        self.spec = spec
        self.batch_rows = batch_rows

    def expand(self, pbegin):
        return (
            pbegin
            | "MatchFiles" >> MatchInputFiles(self.file_pattern)
            | "RowGroups" >> beam.ParDo(_ListRowGroups(self.spec))
            | "SpreadRowGroups" >> beam.Reshuffle()
            | "ReadRowGroup" >> beam.ParDo(_ReadRowGroup(self.spec, self.batch_rows))
        )


class _ListRowGroups(beam.DoFn):
    def __init__(self, spec):
        self._names = list(spec.features)

    def process(self, metadata):
        with FileSystems.open(metadata.path) as stream:
            parquet = open_parquet(stream, metadata.path)
            missing = [n for n in self._names if n not in parquet.schema_arrow.names]
            if missing:
                raise InputDataError(
                    f"{metadata.path}: declared column(s) {missing} are not in the Parquet "
                    f"schema {parquet.schema_arrow.names}. Fix the data or the declarations."
                )
            READ_METRICS.files.inc()
            for row_group in range(parquet.num_row_groups):
                yield metadata.path, row_group


class _ReadRowGroup(beam.DoFn):
    def __init__(self, spec, batch_rows):
        self._types = column_types(spec)
        self._batch_rows = batch_rows

    def process(self, path_and_row_group):
        path, row_group = path_and_row_group
        progress = ProgressLog(f"{path} (row group {row_group})")
        with FileSystems.open(path) as stream:
            batches = open_parquet(stream, path).iter_batches(
                batch_size=self._batch_rows, row_groups=[row_group], columns=list(self._types)
            )
            while True:
                with _damage_reported(f"{path} (row group {row_group})"):
                    batch = next(batches, None)
                if batch is None:
                    break
                columns = [
                    cast_column(batch.column(name), arrow_type, name, path)
                    for name, arrow_type in self._types.items()
                ]
                batch = pa.RecordBatch.from_arrays(columns, names=list(self._types))
                progress.add(batch)
                yield batch
        progress.done()


def open_parquet(stream, path):
    """pq.ParquetFile, or InputDataError naming the file when it is not readable Parquet."""
    with _damage_reported(path):
        return pq.ParquetFile(stream)


@contextlib.contextmanager
def _damage_reported(where):
    # A damaged file fails in both bad-record modes: the rows it holds cannot be kept.
    try:
        yield
    except (pa.ArrowInvalid, OSError) as e:
        raise InputDataError(
            f"{where}: not readable as Parquet ({' '.join(str(e).split())}). Re-write the "
            "file, or leave it out of the input pattern."
        ) from None
