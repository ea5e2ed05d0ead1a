"""Issue 18's training-input contenders: one epoch of batches as model.fit would take them.

    python -m benchmarks.contenders.training_input --pattern P --features F --workdir W \
        --mode transformed --encoded DIR      # kdp_beam.transformed_dataset(DIR)
    python -m benchmarks.contenders.training_input --pattern P --features F --workdir W \
        --mode on_the_fly --bundle B          # the raw CSV through tf.data, .map(fs)

Both yield the model's dict of encoded features per batch of 1024 rows; every batch is
pulled (its tensors materialised) and nothing else is done, so the rows/s is the input
pipeline's ceiling for a model of any size. The time is from the first pull to the last
(the process start, imports and the FeatureSpace build are not included), written to
W/result.json.
"""

import json
import os
import time

import tensorflow as tf

from benchmarks.contenders import arguments

BATCH = 1024


def main():
    args, floats, strings, files = arguments()
    option = dict(zip(args.extra[::2], args.extra[1::2]))
    if option["--mode"] == "transformed":
        from kdp_beam import transformed_dataset

        dataset = transformed_dataset(option["--encoded"], batch_size=BATCH)
    else:
        from kdp_beam import FeatureSpace

        fs = FeatureSpace.from_artifacts(option["--bundle"], output_mode="dict")
        raw = tf.data.experimental.make_csv_dataset(
            files, batch_size=BATCH, column_defaults=[tf.float32] * len(floats) + [tf.string] * len(strings),
            num_epochs=1, shuffle=False, header=True, num_parallel_reads=tf.data.AUTOTUNE, sloppy=True,
        )
        dataset = raw.map(fs, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    rows = 0
    start = time.monotonic()
    for batch in dataset:
        rows += int(tf.shape(next(iter(batch.values())))[0])
    with open(os.path.join(args.workdir, "result.json"), "w") as f:
        json.dump({"rows": rows, "seconds": time.monotonic() - start}, f)


if __name__ == "__main__":
    main()
