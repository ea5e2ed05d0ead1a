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
from kdp_beam.columns import ARROW_TYPES, LabelKind, cast_column, element_kind, kinds_read, label_text, list_lengths
from kdp_beam.errors import InputDataError
from kdp_beam.io.files import BAD_RECORDS, READ_METRICS, MatchInputFiles, Reader, mark_read

DEFAULT_BATCH_RECORDS = 8192
_SCHEMA_TYPES = {
    pa.float64(): schema_pb2.FLOAT,
    pa.int64(): schema_pb2.INT,
    pa.string(): schema_pb2.BYTES,
}
# The tf.Example kinds the label and fold key are read from, whichever a record holds: a
# class label's (and fold key's) any of the three, as text; a regression label's numbers.
_LIST_TYPES = {"bytes_list": schema_pb2.BYTES, "int64_list": schema_pb2.INT, "float_list": schema_pb2.FLOAT}
_LABEL_TYPES = {"label": (schema_pb2.BYTES, schema_pb2.INT, schema_pb2.FLOAT), "float": (schema_pb2.FLOAT, schema_pb2.INT)}
# tfx_bsl's error for a feature of another kind in a record than its schema's.
_OTHER_KIND = re.compile(r'found (bytes_list|int64_list|float_list) for feature "(.*)"$')


class ReadTFRecord(Reader):
    """Reads TFRecord files of tf.Example into RecordBatches of the declared features.

    Records are read file by file (.gz by extension; a damaged file raises InputDataError
    naming it, in both bad-record modes) and decoded in batches by tfx_bsl's C++
    tf.Example decoder, typed by a schema built from the declarations: float_list
    (float32, widened exactly to float64), int64_list, bytes_list (must be UTF-8). A
    feature absent from a record, or with an empty list, is missing. A multivalent
    feature reads the whole list (absent or empty: a row with no values; an empty bytes
    value: a missing one; kdp_beam.columns.cast_list), its bytes never split. The spec's
    label and fold key (kdp_beam.columns.read_kinds) are read from whichever kind each
    record holds them as: a class label's (and fold key's) bytes_list, int64_list or
    float_list value as its text (NaN and "" missing), a regression label's float_list or
    int64_list value as a float. Any other feature, and the label, holds at most one value
    per record, and a record with more raises
    InputDataError naming the file, record number and feature, as do a record that
    does not decode with the declared types, one that is not a tf.Example at all and bytes
    that are not UTF-8 in a string feature. Under ``on_bad_record="skip"`` such records
    become BadRecords (the serialized record kept as hex, its record number as ``row`` and,
    in an uncompressed file, its byte offset) and the rest of the batch is read.

    The outputs are a Reader's (kdp_beam.io.files): ``{"batches": RecordBatches,
    "bad_records": BadRecords}``.
    """

    def __init__(self, file_pattern, spec, batch_records=DEFAULT_BATCH_RECORDS, on_bad_record="fail", columns=None):
        super().__init__()
        bad_records.check_policy(on_bad_record)
        self.file_pattern = file_pattern
        self.spec = spec
        self.columns = columns  # {column: read kind}; None: the spec's (kdp_beam.columns.kinds_read)
        self.batch_records = batch_records
        self.on_bad_record = on_bad_record

    def expand(self, pbegin: PBegin):
        records = (
            pbegin
            | "MatchFiles" >> MatchInputFiles(self.file_pattern)
            | "ReadRecords" >> beam.ParDo(_ReadRecords(self.batch_records))
        )
        return self._read(records, "Decode", _DecodeExamples(self.spec, self.on_bad_record, self.columns))


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
    def __init__(self, spec, on_bad_record="fail", columns=None):
        self._kinds = kinds_read(spec, columns)
        self._skip = on_bad_record == "skip"
        self._decoders = None

    def setup(self):
        # The features' tf.Example kinds are their declarations'; the label's and fold key's
        # the data's, found by _decode and kept for the next batch.
        self._labels = {name: _LABEL_TYPES[kind] for name, kind in self._kinds.items() if isinstance(kind, LabelKind)}
        self._types = {
            name: self._labels[name][0] if name in self._labels else _SCHEMA_TYPES[ARROW_TYPES[element_kind(kind) or kind]]
            for name, kind in self._kinds.items()
        }
        self._decoders = {}

    def _decode(self, records):
        """The records decoded by tfx_bsl: each feature as its declared kind, the label and
        fold key as whichever kind (of _LABEL_TYPES) the records hold them (_as_one_type);
        tfx_bsl's exception when a record does not decode so, or the records hold the
        label in two kinds (decoded then record by record)."""
        types = self._types
        tried = {(name, types[name]) for name in self._labels}
        while True:
            key = tuple(types.values())
            if key not in self._decoders:
                schema = schema_pb2.Schema()
                for name, schema_type in types.items():
                    schema.feature.add(name=name, type=schema_type)
                self._decoders[key] = ExamplesToRecordBatchDecoder(schema.SerializeToString())
            try:
                decoded = self._decoders[key].DecodeBatch(records)
                break
            except Exception as e:  # tfx_bsl raises plain RuntimeError/ValueError
                del self._decoders[key]  # a decoder that raised keeps partial state
                other = _OTHER_KIND.search(str(e))
                name, found = other and other.group(2), other and _LIST_TYPES[other.group(1)]
                if name not in self._labels or found not in self._labels[name] or (name, found) in tried:
                    raise
                tried.add((name, found))
                types = {**types, name: found}
        self._types = types
        columns = [
            _as_one_type(decoded.column(name), self._kinds[name]) if name in self._labels else decoded.column(name)
            for name in self._kinds
        ]
        return pa.RecordBatch.from_arrays(columns, names=list(self._kinds))

    def process(self, numbered_records):
        try:
            decoded = self._decode([record for *_, record in numbered_records])
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
                        "{}: {}; {}".format(_where(numbered_records[row]), *_describe(reason, name, kind, counts[row]))
                    )
                for row in np.flatnonzero(rows & ~dropped):
                    detail, _ = _describe(reason, name, kind, counts[row])
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
        if numbered_records:  # where it was read: its first record's number in the file
            batch = mark_read(batch, where, where, numbered_records[0][1], 0)
        READ_METRICS.batches.inc()
        READ_METRICS.rows.inc(batch.num_rows)
        yield batch

    def _decode_one_by_one(self, numbered_records):
        """After a batch failed to decode: the batch decoded record by record, without the
        records that fail alone: (decoded, the good records, a BadRecord for each other);
        in fail mode, an InputDataError naming the first that fails. Each record's label
        is read from the kind it holds it as."""
        good, bad, rows = [], [], []
        for numbered in numbered_records:
            try:
                rows.append(self._decode([numbered[-1]]))
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
        if not rows:
            return self._decode([]), good, bad
        return pa.Table.from_batches(rows).combine_chunks().to_batches()[0], good, bad


def _as_one_type(lists, kind):
    """A label or fold key column decoded from records holding it as any kind of
    _LABEL_TYPES, as one type whatever the kind: lists of text bytes (kind "label": numbers
    as kdp_beam.columns.label_text writes them; bytes as they are, checked as UTF-8 with
    the features') or of float64 (a regression label), so that records holding it in
    different kinds concatenate and are checked and read alike."""
    values = lists.values
    if kind == "label":
        if not pa.types.is_large_binary(values.type):
            values = label_text(values, "", "").cast(pa.large_binary())
    else:
        values = values.cast(pa.float64(), safe=False)  # int64 to the nearest double, float32 exactly
    return pa.LargeListArray.from_arrays(lists.offsets, values, mask=lists.is_null())


def _describe(reason, name, kind, count):
    """(what is wrong with a record's feature, what to do about it)."""
    if reason == bad_records.MULTIPLE_VALUES and isinstance(kind, LabelKind):
        return (
            f"a record has {count} values for {kind.part} {name!r}",
            f"{kind.part} holds one value per record: write one (a one-hot or multi-label list: the class instead).",
        )
    if reason == bad_records.MULTIPLE_VALUES:
        return (
            f"a record has {count} values for feature {name!r}",
            'this feature holds one value per record: declare it multivalent ("multivalent": '
            "true) to read every value, or split the list into features or aggregate it before "
            "analysis.",
        )
    if isinstance(kind, LabelKind):
        return f"a record's bytes for {kind.part} {name!r} are not UTF-8", "its text is read as UTF-8: fix the bytes."
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
