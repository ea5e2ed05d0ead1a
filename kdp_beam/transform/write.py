"""Shard writers: encoded RecordBatches -> TFRecord (tf.Example) or Parquet files.

``WriteShards`` is a DoFn that appends each incoming batch to the shard file it has open,
rolls to a new file past MAX_SHARD_BYTES or MAX_SHARD_ROWS, and emits one record per
finished file, ``{"path": "data/part-...", "rows", "bytes", "crc32c", "null_counts"}``
(path relative to the output directory; null_counts per column, for the manifest's
schema). Files are named by a uuid drawn per bundle, so a retried bundle never overwrites
a file another attempt wrote: its files are orphans, which the manifest step deletes
(kdp_beam.transform.manifest.write_manifest). Writes go through Beam's FileSystems (local,
gs://, s3://), each byte checksummed on its way out (CRC-32C, the checksum GCS and S3 keep
per object, hardware-accelerated: sha256 would cost more CPU than serialising the rows):
no file is read back.

TFRecord: kdp_beam.transform.examples serialises and frames a whole batch at once
(fixed-width float32 columns laid out with numpy, the others by tfx_bsl's
RecordBatchToExamples, which takes list columns of float32, int64 and binary only:
`example_columns` converts the others, a float64 keep column to float32 since tf.Example
has no doubles), written as one buffer. Parquet: the
fixed-size lists as they are, compressed with zstd (one-hot floats are mostly zeros, which
zstd shrinks several times more than snappy for about the same read speed), one row group
per batch.
"""

import uuid

import apache_beam as beam
import google_crc32c
import numpy as np
import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue

from kdp_beam.bad_records import BadRecord
from kdp_beam.beam.join import JoinParts
from kdp_beam.bundle.layout import DEAD_LETTERS, join
from kdp_beam.errors import BundleError
from kdp_beam.transform.manifest import DATA, schema_entries, write_manifest

FORMATS = ("tfrecord", "parquet")
# A shard is closed once it holds this many bytes or rows (whichever comes first): big
# enough that opening files costs nothing against reading them, small enough that a
# training job's readers (num_parallel_reads) and a retried bundle have work to split.
MAX_SHARD_BYTES = 256 << 20
MAX_SHARD_ROWS = 1_000_000
PARQUET_COMPRESSION = "zstd"
_EXTENSIONS = {"tfrecord": ".tfrecord", "parquet": ".parquet"}


def check_format(file_format):
    if file_format not in FORMATS:
        raise BundleError(f"the output format must be one of {', '.join(FORMATS)}, not {file_format!r}")


def _missing_value(kind):
    """What a missing kept value is written as in tf.Example, whose features parse as
    present or absent but never as null: NaN for floats, "" for text (as the model reads
    them); None for integers, which have no such value (an empty list, which
    transformed_dataset refuses, naming the column)."""
    if pa.types.is_floating(kind):
        return float("nan")
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return ""
    return None


def example_columns(batch):
    """The batch's columns as RecordBatchToExamples takes them: list<float32 | int64 |
    binary> (fixed-size lists re-viewed as lists, scalars as lists of one, a missing
    scalar as _missing_value says). Only offsets are made; values are cast only when their type
    differs (float64 -> float32, int32 -> int64, string -> binary)."""
    columns = []
    for column in batch.columns:
        if pa.types.is_fixed_size_list(column.type):
            width = column.type.list_size
            # Every slot, a null list's too (flatten() drops those, and the offsets would run
            # past the values): the mask below says which lists are null.
            values = column.values.slice(column.offset * width, len(column) * width)
            offsets = pa.array(np.arange(0, len(column) * width + 1, width, dtype=np.int32))
            mask = column.is_null() if column.null_count else None
        else:
            values, mask = column, None
            if column.null_count and _missing_value(column.type) is not None:
                values = column.fill_null(_missing_value(column.type))
            offsets = pa.array(np.arange(len(column) + 1, dtype=np.int32))
            if values.null_count:  # a missing integer: an empty list, which no reader takes silently
                valid = np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=np.int32)
                offsets = pa.array(np.concatenate([[0], np.cumsum(valid)]).astype(np.int32))
                values = values.drop_null()
        columns.append(pa.ListArray.from_arrays(offsets, _example_values(values), mask=mask))
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _example_values(values):
    kind = values.type
    if pa.types.is_floating(kind):
        return values.cast(pa.float32())
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        return values.cast(pa.int64())
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return values.cast(pa.binary())
    return values


class _HashingSink:
    """A writable file that counts and checksums (CRC-32C) what passes through it (pyarrow
    writes Parquet into any object with write/tell/flush/close)."""

    def __init__(self, file):
        self._file = file
        self.bytes = 0
        self.crc32c = 0

    def write(self, data):
        data = data if isinstance(data, bytes) else bytes(data)  # (google_crc32c takes bytes only)
        self._file.write(data)
        self.bytes += len(data)
        self.crc32c = google_crc32c.extend(self.crc32c, data)
        return len(data)

    def tell(self):
        return self.bytes

    def flush(self):
        self._file.flush()

    def close(self):
        self._file.close()

    @property
    def closed(self):
        return self._file.closed


class _Shard:
    """One open shard file."""

    def __init__(self, output_dir, name, file_format, schema):
        self.name = name
        self.path = join(output_dir, name)
        self.rows = 0
        self.null_counts = {}
        try:
            self._sink = _HashingSink(
                FileSystems.create(self.path, compression_type=CompressionTypes.UNCOMPRESSED)
            )
        except OSError as e:  # Beam's BeamIOError is one too
            raise BundleError(f"cannot write {self.path} ({e}); choose an output you can write") from None
        self._parquet = None
        if file_format == "parquet":
            import pyarrow.parquet as pq

            self._parquet = pq.ParquetWriter(self._sink, schema, compression=PARQUET_COMPRESSION)

    def write(self, batch):
        if self._parquet is not None:
            self._parquet.write_batch(batch)
        else:
            from kdp_beam.transform.examples import tfrecord_chunks

            for chunk in tfrecord_chunks(batch):
                self._sink.write(chunk)
        self.rows += batch.num_rows
        for name, column in zip(batch.schema.names, batch.columns):
            self.null_counts[name] = self.null_counts.get(name, 0) + column.null_count

    @property
    def bytes(self):
        return self._sink.bytes

    def close(self):
        """Closes the file; returns its record for the manifest."""
        if self._parquet is not None:
            self._parquet.close()
        self._sink.close()
        return {
            "path": self.name,
            "rows": self.rows,
            "bytes": self._sink.bytes,
            "crc32c": f"{self._sink.crc32c:08x}",
            "null_counts": self.null_counts,
        }


class WriteShards(beam.DoFn):
    """Encoded RecordBatches -> one record per shard file written (see the module
    docstring). `schema`: the batches' pa.Schema (Parquet writes it before any batch)."""

    def __init__(self, output_dir, file_format, schema, max_bytes=None, max_rows=None):
        check_format(file_format)
        self.output_dir = output_dir
        self.file_format = file_format
        self.schema = schema
        self.max_bytes = max_bytes or MAX_SHARD_BYTES
        self.max_rows = max_rows or MAX_SHARD_ROWS

    def start_bundle(self):
        self._attempt = uuid.uuid4().hex[:16]  # unique per bundle attempt: retries never clash
        self._files = 0
        self._shard = None

    def process(self, batch):
        if batch.num_rows == 0:
            return
        if self._shard is None:
            name = f"{DATA}/part-{self._attempt}-{self._files:05d}{_EXTENSIONS[self.file_format]}"
            self._shard = _Shard(self.output_dir, name, self.file_format, self.schema)
            self._files += 1
        self._shard.write(batch)
        if self._shard.bytes >= self.max_bytes or self._shard.rows >= self.max_rows:
            yield self._close()

    def finish_bundle(self):
        if self._shard is not None:
            yield WindowedValue(self._close(), GlobalWindow().max_timestamp(), [GlobalWindow()])

    def _close(self):
        shard, self._shard = self._shard, None
        return shard.close()


class WriteDataset(beam.PTransform):
    """Encoded RecordBatches -> the transformed dataset in `output_dir`: shard files, dead
    letters and, once all are written, the manifest (the one element of the output).

    Args:
        output_dir: the directory (run_transform gives a staging one: kdp_beam.bundle.staging).
        file_format: "tfrecord" or "parquet".
        schema: the batches' pa.Schema (BatchEncoder.schema).
        bundle: kdp_beam.transform.manifest.bundle_identity(...) of the encoding bundle.
        input_description: {pattern, format, on_bad_record} for the manifest.
        bad_records: None, or a PCollection[BadRecord] of the records left out: counted per
            reason and written as JSON lines under bad_records/, as analyze does.
        max_rows: rows per shard file at most (None: MAX_SHARD_ROWS).
    """

    def __init__(self, output_dir, file_format, schema, bundle, input_description, bad_records=None, max_rows=None):
        super().__init__()
        self.max_rows = max_rows
        check_format(file_format)
        self.output_dir = output_dir
        self.file_format = file_format
        self.schema = schema
        self.bundle = bundle
        self.input_description = input_description
        self.bad_records = bad_records

    def expand(self, batches):
        parts = {"files": batches | "WriteShards" >> beam.ParDo(
            WriteShards(self.output_dir, self.file_format, self.schema, max_rows=self.max_rows)
        )}
        if self.bad_records is not None:
            parts["reasons"] = (
                self.bad_records
                | "Reasons" >> beam.Map(lambda record: record.reason)
                | "CountReasons" >> beam.combiners.Count.PerElement()
            )
            parts["dead_letters"] = (
                self.bad_records
                | "AsJsonLines" >> beam.Map(BadRecord.to_json_line)
                | "WriteBadRecords"
                >> beam.io.WriteToText(
                    FileSystems.join(self.output_dir, DEAD_LETTERS, "part"),
                    file_name_suffix=".jsonl",
                    skip_if_empty=True,
                )
            )
        # One element of its own: the join (and the manifest) happens even with no file.
        parts["start"] = batches.pipeline | "Start" >> beam.Create([None])
        return (
            parts
            | "JoinShards" >> JoinParts()
            | "WriteManifest"
            >> beam.Map(
                _write_manifest,
                output_dir=self.output_dir,
                schema=schema_entries(self.schema, self.file_format),
                file_format=self.file_format,
                bundle=self.bundle,
                input_description=self.input_description,
            )
        )


def _write_manifest(found, output_dir, schema, file_format, bundle, input_description):
    return write_manifest(
        output_dir,
        found["files"],
        schema,
        file_format,
        bundle,
        input_description,
        dict(found.get("reasons", ())),
        found.get("dead_letters", ()),
    )
