"""Issue 18's reference: the same FeatureSpace applied in tf.data in one process
(``ds.map(fs, num_parallel_calls=AUTOTUNE)``) and written as TFRecord of tf.Example, the
way a user encodes once without Beam.

    python -m benchmarks.contenders.tfdata_transform --pattern 'dir/part-*.csv' \
        --features dir/features.json --bundle B --workdir W

The raw CSV is read by tf.data's own CSV reader, batches of 4096 rows are encoded by the
FeatureSpace built from the bundle (`FeatureSpace.from_artifacts(bundle,
output_mode="dict")`), and each encoded batch is serialised by tfx_bsl's
RecordBatchToExamples (the fastest tf.Example encoder there is: TensorFlow has no op for
it) and written with tf.io.TFRecordWriter, one file per input file's worth of rows.
"""

import json
import os
import time

import numpy as np
import pyarrow as pa
import tensorflow as tf
from tfx_bsl.coders import example_coder

from benchmarks.contenders import arguments

BATCH = 4096
ROWS_PER_FILE = 1 << 20


def record_batch(encoded):
    """The encoded batch as an Arrow RecordBatch of one list<value> column per output."""
    columns = []
    for value in encoded.values():
        flat = np.ascontiguousarray(value.numpy()).reshape(len(value), -1)
        width = flat.shape[1]
        offsets = np.arange(0, flat.size + 1, width, dtype=np.int32)
        columns.append(pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat.reshape(-1))))
    return pa.RecordBatch.from_arrays(columns, list(encoded))


def main():
    args, floats, strings, files = arguments()
    bundle = args.extra[args.extra.index("--bundle") + 1]
    from kdp_beam import FeatureSpace

    fs = FeatureSpace.from_artifacts(bundle, output_mode="dict")
    raw = tf.data.experimental.make_csv_dataset(
        files, batch_size=BATCH, column_defaults=[tf.float32] * len(floats) + [tf.string] * len(strings),
        num_epochs=1, shuffle=False, header=True, num_parallel_reads=tf.data.AUTOTUNE, sloppy=True,
    )
    encoded = raw.map(fs, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    rows = written = part = 0
    start = time.monotonic()
    writer = None
    for batch in encoded:
        if writer is None or written >= ROWS_PER_FILE:
            if writer is not None:
                writer.close()
            writer = tf.io.TFRecordWriter(os.path.join(args.workdir, f"part-{part:05d}.tfrecord"))
            part, written = part + 1, 0
        for example in example_coder.RecordBatchToExamples(record_batch(batch)):
            writer.write(example)
        n = len(next(iter(batch.values())))
        rows, written = rows + n, written + n
    writer.close()
    with open(os.path.join(args.workdir, "result.json"), "w") as f:
        json.dump({"rows": rows, "seconds": time.monotonic() - start}, f)


if __name__ == "__main__":
    main()
