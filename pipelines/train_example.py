"""Trains a small Keras model on features encoded by a kdp_beam bundle.

    python -m pipelines.train_example --bundle out/bundle --data 'out/sample/parquet/*.parquet' \
        [--encoded out/encoded]

The whole path of the README: the bundle (from `kdp-beam analyze`) gives a ready
FeatureSpace, with no adapt() and no pass over the data; tf.data applies it per batch.
With --encoded (the output of `kdp-beam transform --keep label`), the same model is also
trained from the rows encoded once on Beam, read by kdp_beam.transformed_dataset.
"""

import argparse
import glob

import pyarrow.parquet as pq


def load_rows(pattern, features, label):
    table = pq.ParquetDataset(sorted(glob.glob(pattern))).read(columns=[*features, label])
    columns = {name: table[name].to_numpy(zero_copy_only=False) for name in features}
    return columns, table[label].to_numpy()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--data", required=True, help="Parquet file pattern with a label column")
    parser.add_argument("--label", default="label")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--encoded", help="kdp-beam transform's output of the same data (--keep label)")
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    from kdp_beam import FeatureSpace, load_bundle

    bundle = load_bundle(args.bundle)
    feature_space = FeatureSpace.from_artifacts(bundle)  # statistics from the bundle
    # Missing values (NaN ages, empty dates) are encoded by the model as analysed.
    features, labels = load_rows(args.data, list(bundle.spec.features), args.label)

    dataset = tf.data.Dataset.from_tensor_slices((features, labels)).shuffle(4096, seed=0)
    train = dataset.batch(256).map(lambda x, y: (feature_space(x), y), num_parallel_calls=2)

    inputs = keras.Input(shape=feature_space.get_encoded_features().shape[1:])
    hidden = keras.layers.Dense(32, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(hidden))
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    history = model.fit(train.prefetch(2), epochs=args.epochs, shuffle=False, verbose=2)
    print(
        f"trained on {bundle.row_count} rows encoded to "
        f"{feature_space.get_encoded_features().shape[-1]} columns; "
        f"final accuracy {history.history['accuracy'][-1]:.3f}"
    )
    if args.encoded:
        train_encoded(args, bundle)


def train_encoded(args, bundle):
    """The same network on the encoded files: their dict of outputs, concatenated."""
    import keras

    from kdp_beam import transformed_dataset

    # bundle= refuses files encoded with another bundle than the one the model serves with.
    train = transformed_dataset(args.encoded, batch_size=256, label=args.label, bundle=bundle)
    shapes = train.element_spec[0]
    inputs = {name: keras.Input(shape=spec.shape[1:], name=name) for name, spec in shapes.items()}
    joined = keras.layers.Concatenate()([keras.ops.cast(x, "float32") for x in inputs.values()])
    hidden = keras.layers.Dense(32, activation="relu")(joined)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(hidden))
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    history = model.fit(train, epochs=args.epochs, shuffle=False, verbose=2)
    width = sum(spec.shape[-1] for spec in shapes.values())
    print(
        f"trained from {args.encoded} ({len(shapes)} encoded outputs, {width} columns, "
        f"no encoding during training); final accuracy {history.history['accuracy'][-1]:.3f}"
    )


if __name__ == "__main__":
    main()
