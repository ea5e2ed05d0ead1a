"""Encoded RecordBatches -> TFRecord bytes of one tf.Example per row, a batch at a time.

tfx_bsl's RecordBatchToExamples costs ~25 us a row for the 1,020 floats of the seed's
one-hot features, more than the model's encoding, and framing each record with Beam's
TFRecord code takes four writes per row. Most encoded columns are fixed-width float32
vectors without nulls, whose bytes in a tf.Example are the same prefix in every row
followed by the values: those are laid out for the whole batch at once with numpy
(`_FloatTemplate`); every other column (integers, strings, kept columns, nulls) is
serialised by tfx_bsl. Protocol buffers merge concatenated messages -- an embedded message
given twice is merged, map entries appended -- so a row's record is the two parts
concatenated, which parses as one Example with every feature (tests/transform/
test_examples.py checks it against tfx_bsl's own serialisation). The framing (length,
masked crc32c of the length, the record, masked crc32c of the record) is TFRecord's
(tensorflow/core/lib/io/record_writer.cc), written as one buffer per batch.
"""

import struct

import google_crc32c
import numpy as np
import pyarrow as pa

_MASK_DELTA = 0xA282EAD8  # TFRecord's crc mask (tensorflow/core/lib/hash/crc32c.h)
CHUNK_BYTES = 1 << 20


def _varint(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number, payload):
    """A length-delimited protocol buffer field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _masked_crc(data):
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def _is_template_column(column):
    return (
        pa.types.is_fixed_size_list(column.type)
        and pa.types.is_float32(column.type.value_type)
        and column.null_count == 0
        and column.flatten().null_count == 0
    )


class _FloatTemplate:
    """The tf.Example bytes of fixed-width float32 columns: Example.features (field 1) with
    one map entry per column {key: name, value: Feature{float_list: FloatList{packed
    values}}}, every row the same length."""

    def __init__(self, names, widths):
        self.parts = []  # (prefix bytes, width) per column, in order
        for name, width in zip(names, widths):
            float_list = _varint(1 << 3 | 2) + _varint(4 * width)  # FloatList.value, packed; values follow
            feature_length = len(float_list) + 4 * width
            feature = _varint(2 << 3 | 2) + _varint(feature_length)  # Feature.float_list
            value_length = len(feature) + feature_length
            entry_body = _field(1, name.encode("utf-8")) + _varint(2 << 3 | 2) + _varint(value_length)
            entry_length = len(entry_body) + value_length
            prefix = _varint(1 << 3 | 2) + _varint(entry_length) + entry_body + feature + float_list
            self.parts.append((prefix, width))
        features_length = sum(len(prefix) + 4 * width for prefix, width in self.parts)
        self.head = _varint(1 << 3 | 2) + _varint(features_length)  # Example.features
        self.row_length = len(self.head) + features_length

    def fill(self, out, columns):
        """Writes each row's serialised Example of these columns into `out`, a (rows,
        row_length) uint8 array (a view: the framed file's rows)."""
        n = len(out)
        out[:, : len(self.head)] = np.frombuffer(self.head, np.uint8)
        at = len(self.head)
        for (prefix, width), column in zip(self.parts, columns):
            out[:, at : at + len(prefix)] = np.frombuffer(prefix, np.uint8)
            at += len(prefix)
            values = column.flatten().to_numpy(zero_copy_only=False).astype("<f4", copy=False)
            out[:, at : at + 4 * width] = values.view(np.uint8).reshape(n, 4 * width)
            at += 4 * width


def tfrecord_chunks(batch):
    """The batch's rows as the bytes of a TFRecord file, in chunks of about CHUNK_BYTES: one
    serialised tf.Example per row, one feature per column, framed. Chunks keep every buffer
    in the CPU's cache and in memory the allocator reuses (a batch's 70 MB at once would be
    fresh pages, faulted in at every step). Fixed-width float32 columns are laid out by
    _FloatTemplate straight into the framed buffer; the others are serialised by tfx_bsl
    (kdp_beam.transform.write.example_columns says how each is written) and appended to each
    row's record."""
    template = [i for i, column in enumerate(batch.columns) if _is_template_column(column)]
    others = [i for i in range(batch.num_columns) if i not in set(template)]
    layout = None
    if template:
        columns = [batch.column(i) for i in template]
        layout = _FloatTemplate([batch.schema.names[i] for i in template], [c.type.list_size for c in columns])
    row_bytes = (layout.row_length if layout else 0) + 16 + 64 * len(others)  # a guess for the others
    step = max(1, CHUNK_BYTES // row_bytes)
    for start in range(0, batch.num_rows, step):
        chunk = batch.slice(start, step)
        if layout is None:
            yield _framed(_tfx_bsl_examples(chunk.select(others)))
        elif others:
            rows = np.empty((chunk.num_rows, layout.row_length), np.uint8)
            layout.fill(rows, [chunk.column(i) for i in template])
            tails = _tfx_bsl_examples(chunk.select(others))
            yield _framed([row.tobytes() + tail for row, tail in zip(rows, tails)])
        else:
            yield _framed_template(layout, [chunk.column(i) for i in template], chunk.num_rows)


def _framed_template(layout, columns, rows):
    """Records of one length: the framed rows are one (rows, frame) array."""
    length = struct.pack("<Q", layout.row_length)
    header = np.frombuffer(length + struct.pack("<I", _masked_crc(length)), np.uint8)
    frames = np.empty((rows, len(header) + layout.row_length + 4), np.uint8)
    frames[:, : len(header)] = header
    records = frames[:, len(header) : len(header) + layout.row_length]
    layout.fill(records, columns)
    crcs = np.fromiter((_masked_crc(record.tobytes()) for record in records), "<u4", rows)
    frames[:, -4:] = crcs.view(np.uint8).reshape(-1, 4)
    return frames.tobytes()


def _tfx_bsl_examples(batch):
    from tfx_bsl.coders import example_coder

    from kdp_beam.transform.write import example_columns

    return example_coder.RecordBatchToExamples(example_columns(batch))


def _framed(records):
    """The records framed as a TFRecord file holds them, as one bytes object."""
    headers = {}
    out = []
    for record in records:
        header = headers.get(len(record))
        if header is None:
            length = struct.pack("<Q", len(record))
            header = headers[len(record)] = length + struct.pack("<I", _masked_crc(length))
        out += (header, record, struct.pack("<I", _masked_crc(record)))
    return b"".join(out)
