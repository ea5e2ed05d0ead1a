"""The seed's baseline: keras.utils.FeatureSpace.adapt on a tf.data CSV dataset."""

import keras
import tensorflow as tf

from benchmarks.contenders import arguments


def main():
    args, floats, strings, files = arguments()
    columns = [*floats, *strings]
    dataset = tf.data.experimental.make_csv_dataset(
        files,
        batch_size=1024,
        select_columns=columns,
        column_defaults=[tf.float32] * len(floats) + [tf.string] * len(strings),
        num_epochs=1,
        shuffle=False,
        header=True,
    )
    features = {n: keras.utils.FeatureSpace.float_normalized(name=n) for n in floats}
    features |= {n: keras.utils.FeatureSpace.string_categorical(name=n) for n in strings}
    space = keras.utils.FeatureSpace(features, output_mode="concat")
    space.adapt(dataset)
    print(space.get_encoded_features().shape)


if __name__ == "__main__":
    main()
