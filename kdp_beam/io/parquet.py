"""ReadParquet: Parquet files as a stream of RecordBatches, split by row group."""

import collections
import contextlib
import functools

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.pvalue import PBegin, TaggedOutput

from kdp_beam import bad_records
from kdp_beam.bad_records import BadRecord
from kdp_beam.columns import (
    UnreadableValue,
    cast_column,
    check_readable,
    element_kind,
    kinds_read,
    unreadable_rows,
)
from kdp_beam.errors import InputDataError
from kdp_beam.io.files import BAD_RECORDS, READ_METRICS, MatchInputFiles, ProgressLog, Reader
from kdp_beam.io.read_ahead import read_ahead

DEFAULT_BATCH_ROWS = 65536


class ReadParquet(Reader):
    """Reads the declared columns of Parquet files into RecordBatches.

    Each row group is a unit of work, so one large file is read by many workers. Every
    file's schema is checked before any of its rows is read (check_schema: a declared
    column missing, named twice, or of a type its feature cannot read raises
    InputDataError naming the file and the column), and columns are converted by the one
    rule of kdp_beam.columns (int32 -> int64, float32 -> float64, dictionary/large strings
    -> string, booleans -> "true"/"false", timestamps and dates -> ISO 8601 text for a
    date feature, type null -> missing). The spec's label and fold key are read beside the
    features (kdp_beam.columns.read_kinds): a class label of text, bytes, booleans,
    integers or floats as its text (NaN and "" missing), a regression label as a float.
    A file that cannot be read raises InputDataError saying whether the storage failed
    (retry) or the bytes are not valid Parquet.

    A multivalent feature reads a list column, or a string column split on its separator
    (kdp_beam.columns.cast_list). Parquet is typed: its one record-level error is a value
    of such a string that is not a number (a multivalent number feature), which raises
    InputDataError naming the file, row (1-based in the file) and column, or under
    ``on_bad_record="skip"`` is a BadRecord (its ``record`` {column: field}). Schema
    errors fail in both modes.

    The outputs are a Reader's (kdp_beam.io.files): ``{"batches": RecordBatches,
    "bad_records": BadRecords}``.

    ``dictionaries``: string columns to give dictionary-encoded (pyarrow's DictionaryArray
    of string, the file's dictionary pages as they are, not each value decoded), for
    consumers that take them: kdp-beam analyze asks for its
    kdp_beam.analyzers.dataset.dictionary_features.
    """

    def __init__(
        self, file_pattern, spec, batch_rows=DEFAULT_BATCH_ROWS, on_bad_record="fail", columns=None, dictionaries=()
    ):
        super().__init__()
        bad_records.check_policy(on_bad_record)
        self.file_pattern = file_pattern
        self.spec = spec
        self.columns = columns  # {column: read kind}; None: the spec's (kdp_beam.columns.kinds_read)
        self.batch_rows = batch_rows
        self.on_bad_record = on_bad_record
        self.dictionaries = frozenset(dictionaries)

    def expand(self, pbegin: PBegin):
        row_groups = (
            pbegin
            | "MatchFiles" >> MatchInputFiles(self.file_pattern)
            | "RowGroups" >> beam.ParDo(_ListRowGroups(self.spec, self.columns))
            | "SpreadRowGroups" >> beam.Reshuffle()
        )
        read_row_group = _ReadRowGroup(self.spec, self.batch_rows, self.on_bad_record, self.columns, self.dictionaries)
        return self._read(row_groups, "ReadRowGroup", read_row_group)


class _ListRowGroups(beam.DoFn):
    def __init__(self, spec, columns=None):
        self._kinds = kinds_read(spec, columns)

    def process(self, metadata):
        with parquet_file(metadata.path) as parquet:
            check_schema(parquet.schema_arrow, self._kinds, metadata.path)
            row_groups = parquet.num_row_groups
        READ_METRICS.files.inc()
        for row_group in range(row_groups):
            yield metadata.path, row_group


class _ReadRowGroup(beam.DoFn):
    def __init__(self, spec, batch_rows, on_bad_record="fail", columns=None, dictionaries=frozenset()):
        self._kinds = kinds_read(spec, columns)
        self._batch_rows = batch_rows
        self._skip = on_bad_record == "skip"
        # pyarrow reads only text (and bytes) columns as dictionaries; the others as they are.
        self._dictionaries = sorted(dictionaries & set(self._kinds))

    def process(self, path_and_row_group):
        path, row_group = path_and_row_group
        where = f"{path} (row group {row_group})"
        with parquet_file(path, where, self._dictionaries) as parquet:
            row = sum(parquet.metadata.row_group(i).num_rows for i in range(row_group))  # rows before
            progress = ProgressLog(path, row_group=row_group, rows_before=row)
            decode = functools.partial(
                parquet.iter_batches, batch_size=self._batch_rows, row_groups=[row_group], columns=list(self._kinds)
            )
            with read_ahead(decode) as batches:
                for batch in batches:
                    typed, bad = self._typed(batch, path, row, where)
                    for record in bad:
                        yield TaggedOutput(BAD_RECORDS, record)
                    row += batch.num_rows
                    progress.left_out += len(bad)
                    yield progress.add(typed)
        progress.done()

    def _typed(self, batch, path, first_row, where):
        """(the batch's declared columns as their kinds, BadRecords of the rows left out),
        or InputDataError naming the file's row of an unreadable value in fail mode."""
        try:
            return self._cast(batch, where), []
        except UnreadableValue as error:
            if not self._skip:
                raise InputDataError(error.message(where, first_row + error.row + 1)) from None
        bad, left_out = [], np.zeros(batch.num_rows, dtype=bool)
        for name, kind in self._kinds.items():
            column = batch.column(name)
            if element_kind(kind) is None:
                continue
            rows = unreadable_rows(column, kind) & ~left_out
            for index in np.flatnonzero(rows):
                field = column[int(index)].as_py()
                try:
                    cast_column(pa.array([field]), kind, name, where)
                except UnreadableValue as error:
                    detail = error.detail
                row = first_row + int(index) + 1
                bad.append(BadRecord(path, bad_records.UNPARSEABLE_NUMBER, detail, {name: field}, row=row, column=name))
            left_out |= rows
        return self._cast(batch.filter(pa.array(~left_out)), where), bad

    def _cast(self, batch, where):
        columns = [
            cast_column(batch.column(name), kind, name, where, keep_dictionary=name in self._dictionaries)
            for name, kind in self._kinds.items()
        ]
        return pa.RecordBatch.from_arrays(columns, names=list(self._kinds))


def check_schema(schema, kinds, path):
    """Raises InputDataError naming the file and the column when a declared column
    ({name: kind}, kdp_beam.columns.read_kinds: the features, label and fold key) is
    missing from a Parquet schema, is named twice in it, or has a type its kind cannot
    read: the same check, with the same message, on the launcher (kdp_beam.io.preflight)
    and on the workers for every file."""
    names = collections.Counter(schema.names)
    missing = [name for name in kinds if name not in names]
    if missing:
        raise InputDataError(
            f"{path}: declared column(s) {missing} are not in the Parquet schema "
            f"{schema.names}. Fix the data or the declarations."
        )
    for name, kind in kinds.items():
        if names[name] > 1:
            raise InputDataError(
                f"{path}: column {name!r} appears {names[name]} times in the Parquet schema, "
                "so which one to read cannot be told. Re-write the file with one column of "
                "that name (rename the others), or leave it out of the input pattern."
            )
        check_readable(schema.field(name).type, kind, name, path)


def open_parquet(stream, path):
    """pq.ParquetFile of an open stream, or InputDataError naming the file when its bytes
    are not valid Parquet (for reading a schema or a sample; readers use parquet_file)."""
    try:
        return pq.ParquetFile(stream)
    except (pa.ArrowException, OSError) as e:
        raise InputDataError(_not_parquet(path, e)) from None


@contextlib.contextmanager
def parquet_file(path, where=None, read_dictionary=None):
    """The pq.ParquetFile of `path` (its `read_dictionary` columns read dictionary-encoded,
    as pyarrow's argument), open for the with block, in which a failure to read
    the file raises InputDataError naming `where` (default: the path) and saying which it
    was: the storage failed to deliver the bytes (an I/O error: check access, run again),
    or the bytes are not valid Parquet (re-write the file). Errors of the block's own
    (InputDataError from a check) pass unchanged."""
    where = where or path
    stream = None
    try:
        with FileSystems.open(path) as raw:
            stream = _WatchedStream(raw)
            yield pq.ParquetFile(stream, read_dictionary=read_dictionary or None)
    except Exception as e:
        if stream is None or stream.error is not None:  # opening or reading failed
            cause = e if stream is None else stream.error
            message = " ".join(f"{type(cause).__name__}: {cause}".split())
            raise InputDataError(
                f"{where}: could not be read ({message}). Check that the file exists and is "
                "readable (permissions, credentials, network) and run again: the file itself "
                "may be fine."
            ) from None
        if isinstance(e, (pa.ArrowException, OSError)):
            raise InputDataError(_not_parquet(where, e)) from None
        raise


def _not_parquet(where, error):
    # A damaged file fails in both bad-record modes: the rows it holds cannot be kept.
    return (
        f"{where}: not valid Parquet ({' '.join(str(error).split())}). Re-write the file, or "
        "leave it out of the input pattern."
    )


class _WatchedStream:
    """A file stream that keeps the exception its own reads raised (pyarrow passes it on,
    or reports a failure of its own after it), so that a failed read is told apart from
    bytes that are not Parquet: both may reach the caller as an OSError."""

    def __init__(self, stream):
        self._stream = stream
        self.error = None

    def _watched(self, method, *args):
        try:
            return method(*args)
        except Exception as e:
            self.error = e
            raise

    def read(self, size=-1):
        return self._watched(self._stream.read, size)

    def seek(self, offset, whence=0):
        return self._watched(self._stream.seek, offset, whence)

    def tell(self):
        return self._watched(self._stream.tell)

    def __getattr__(self, name):  # closed, seekable, readable, ...
        return getattr(self._stream, name)
