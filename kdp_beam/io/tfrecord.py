"""ReadTFRecord: files of serialized tf.Example as typed pyarrow RecordBatches."""

import re
import zlib

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.tfrecordio import _TFRecordUtil  # the record framing and its CRCs
from apache_beam.pvalue import PBegin, TaggedOutput
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

from kdp_beam import bad_records
from kdp_beam.bad_records import BadRecord
from kdp_beam.columns import ARROW_TYPES, cast_column, column_kinds, element_kind, list_lengths
from kdp_beam.errors import InputDataError
from kdp_beam.io.files import BAD_RECORDS, READ_METRICS, MatchInputFiles, Reader

DEFAULT_BATCH_RECORDS = 8192
_SCHEMA_TYPES = {
    pa.float64(): schema_pb2.FLOAT,
    pa.int64(): schema_pb2.INT,
    pa.string(): schema_pb2.BYTES,
}


class ReadTFRecord(Reader):
    """Reads TFRecord files of tf.Example into RecordBatches of the declared features.

    Records are read file by file (.gz by extension; a damaged file raises InputDataError
    naming it, in both bad-record modes) and decoded in batches by tfx_bsl's C++
    tf.Example decoder, typed by a schema built from the declarations: float_list
    (float32, widened exactly to float64), int64_list, bytes_list (must be UTF-8). A
    feature absent from a record, or with an empty list, is missing. A multivalent
    feature reads the whole list (absent or empty: a row with no values; an empty bytes
    value: a missing one; kdp_beam.columns.cast_list), its bytes never split. Any other
    feature holds at most one value per record, and a record with more raises
    InputDataError naming the file, record number and feature, as do a record that
    does not decode with the declared types, one that is not a tf.Example at all and bytes
    that are not UTF-8 in a string feature. Under ``on_bad_record="skip"`` such records
    become BadRecords (the serialized record kept as hex, its record number as ``row`` and,
    in an uncompressed file, its byte offset) and the rest of the batch is read.

    The outputs are a Reader's (kdp_beam.io.files): ``{"batches": RecordBatches,
    "bad_records": BadRecords}``.
    """

    def __init__(self, file_pattern, spec, batch_records=DEFAULT_BATCH_RECORDS, on_bad_record="fail"):
        super().__init__()
        bad_records.check_policy(on_bad_record)
        self.file_pattern = file_pattern
        self.spec = spec
        self.batch_records = batch_records
        self.on_bad_record = on_bad_record

    def expand(self, pbegin: PBegin):
        records = (
            pbegin
            | "MatchFiles" >> MatchInputFiles(self.file_pattern)
            | "ReadRecords" >> beam.ParDo(_ReadRecords(self.batch_records))
        )
        return self._read(records, "Decode", _DecodeExamples(self.spec, self.on_bad_record))


class _ReadRecords(beam.DoFn):
    """Lists of up to `batch_records` (file, record number, byte offset, serialized record)
    of a TFRecord file (.gz by extension). The number is 1-based within the file; the
    offset (of the record's framing) is None in a compressed file, where it is unknown.

    TFRecord files cannot be split (Beam's own source reads them whole too). Reading them
    here rather than with ReadAllFromTFRecord lets a damaged file's error name it, and
    batching here spares Beam a million one-record elements per million records."""

    def __init__(self, batch_records):
        self._batch_records = batch_records

    def process(self, metadata):
        batch = []
        for numbered in read_records(metadata.path):
            batch.append((metadata.path, *numbered))
            if len(batch) == self._batch_records:
                yield batch
                batch = []
        if batch:
            yield batch
        READ_METRICS.files.inc()


def read_records(path):
    """(record number, byte offset, serialized record) of each record of a TFRecord file
    (.gz by extension), numbered from 1; the offset (of the record's framing) is None in a
    compressed file. InputDataError naming the record when the file is damaged."""
    number, end = 0, 0  # end: of the last record, each framed by 16 bytes (length, 2 CRCs)
    plain = CompressionTypes.detect_compression_type(path) == CompressionTypes.UNCOMPRESSED
    with FileSystems.open(path) as stream:  # decompresses by extension
        while True:
            try:
                record = _TFRecordUtil.read_record(stream)
            except (ValueError, EOFError, zlib.error) as e:
                raise InputDataError(
                    f"{path}: record {number + 1} is not a valid TFRecord ({str(e)[:120]}): "
                    "the file is damaged or not TFRecord. Re-write it, or leave it out of "
                    "the input pattern."
                ) from None
            if record is None:
                return
            number += 1
            yield number, end if plain else None, record
            end += 16 + len(record)


class _DecodeExamples(beam.DoFn):
    def __init__(self, spec, on_bad_record="fail"):
        self._kinds = column_kinds(spec)
        self._skip = on_bad_record == "skip"
        self._decoder = None

    def setup(self):
        schema = schema_pb2.Schema()
        for name, kind in self._kinds.items():
            schema.feature.add(name=name, type=_SCHEMA_TYPES[ARROW_TYPES[element_kind(kind) or kind]])
        self._schema = schema.SerializeToString()
        self._decoder = ExamplesToRecordBatchDecoder(self._schema)

    def process(self, numbered_records):
        try:
            decoded = self._decoder.DecodeBatch([record for *_, record in numbered_records])
        except Exception:  # tfx_bsl raises plain RuntimeError/ValueError
            decoded, numbered_records, bad = self._decode_one_by_one(numbered_records)
            for record in bad:
                yield TaggedOutput(BAD_RECORDS, record)
        dropped = np.zeros(decoded.num_rows, dtype=bool)
        for name, kind in self._kinds.items():
            counts = list_lengths(decoded.column(name))
            scalar = element_kind(kind) is None
            for reason, rows in (
                (bad_records.MULTIPLE_VALUES, counts > 1 if scalar else np.zeros(len(counts), dtype=bool)),
                (bad_records.BAD_UTF8, _not_utf8(decoded.column(name), ARROW_TYPES[element_kind(kind) or kind])),
            ):
                if not rows.any():
                    continue
                if not self._skip:
                    row = int(np.argmax(rows))
                    raise InputDataError(
                        "{}: {}; {}".format(_where(numbered_records[row]), *_describe(reason, name, counts[row]))
                    )
                for row in np.flatnonzero(rows & ~dropped):
                    detail, _ = _describe(reason, name, counts[row])
                    yield TaggedOutput(BAD_RECORDS, _bad(numbered_records[row], reason, detail, name))
                dropped |= rows
        if dropped.any():
            decoded = decoded.filter(pa.array(~dropped))
        where = numbered_records[0][0] if numbered_records else ""
        columns = [
            cast_column(decoded.column(name), kind, name, where)
            if element_kind(kind)
            else _scalar_column(decoded.column(name), kind, name, where)
            for name, kind in self._kinds.items()
        ]
        batch = pa.RecordBatch.from_arrays(columns, names=list(self._kinds))
        READ_METRICS.batches.inc()
        READ_METRICS.rows.inc(batch.num_rows)
        yield batch

    def _decode_one_by_one(self, numbered_records):
        """After a batch failed to decode: the batch decoded without the records that fail
        alone: (decoded, the good records, a BadRecord for each other); in fail mode, an
        InputDataError naming the first that fails."""
        good, bad = [], []
        for numbered in numbered_records:
            try:
                ExamplesToRecordBatchDecoder(self._schema).DecodeBatch([numbered[-1]])
            except Exception as e:
                error = str(e)[:300]
            else:
                good.append(numbered)
                continue
            # The C++ status: DATA_LOSS when the bytes are not a tf.Example proto at all,
            # INVALID_ARGUMENT (naming the feature) when a feature has another type.
            if error.startswith("DATA_LOSS"):
                reason, what, to_do = bad_records.NOT_AN_EXAMPLE, "is not a tf.Example", "Write tf.Example records"
            else:
                reason, what, to_do = bad_records.WRONG_TYPE, "does not decode", "Check the feature types against the declarations"
            if not self._skip:
                raise InputDataError(f"{_where(numbered)} {what} ({error}). {to_do}.")
            column = re.search(r'for feature "(.*)"$', error)
            bad.append(_bad(numbered, reason, error, column and column.group(1)))
        # A decoder that raised keeps partial state: decode with a fresh one.
        self._decoder = ExamplesToRecordBatchDecoder(self._schema)
        return self._decoder.DecodeBatch([record for *_, record in good]), good, bad


def _describe(reason, name, count):
    """(what is wrong with a record's feature, what to do about it)."""
    if reason == bad_records.MULTIPLE_VALUES:
        return (
            f"a record has {count} values for feature {name!r}",
            'this feature holds one value per record: declare it multivalent ("multivalent": '
            "true) to read every value, or split the list into features or aggregate it before "
            "analysis.",
        )
    return (
        f"a record's bytes for feature {name!r} are not UTF-8",
        "Declare a string feature only on text, or fix the bytes.",
    )


def _not_utf8(lists, arrow_type):
    """Per record: whether a bytes value declared as a string is not UTF-8."""
    flags = np.zeros(len(lists), dtype=bool)
    if arrow_type != pa.string():
        return flags
    try:
        pc.list_flatten(lists).cast(pa.string())  # validates UTF-8 in C++
        return flags
    except pa.ArrowInvalid:
        pass
    for row, values in enumerate(lists.to_pylist()):  # only for a batch with bad bytes
        for value in values or ():
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                flags[row] = True
    return flags


def _where(numbered):
    file, number, _, _ = numbered
    return f"{file}: record {number}"


def _bad(numbered, reason, detail, column):
    file, number, offset, record = numbered
    return BadRecord(file, reason, detail, record.hex(), byte_offset=offset, row=number, column=column)


def first_values(lists):
    """One value (or null) per record from a column of tf.Example value lists of at most
    one (an absent feature, or an empty list, is null)."""
    null = pa.scalar(None, lists.type)
    return pc.list_element(pc.if_else(pc.equal(pc.list_value_length(lists).fill_null(0), 0), null, lists), 0)


def _scalar_column(lists, kind, name, where):
    return cast_column(first_values(lists), kind, name, where)
