"""build_preprocessor: a bundle -> a ready keras.Model of raw features to encoded ones."""

import keras

from kdp_beam.builder.feature_space import FeatureSpace


def build_preprocessor(path, output_mode=None, name="kdp_beam_preprocessor", **kwargs):
    """A keras.Model mapping a dict of raw features to their encoding, from a bundle.

    Args:
        path: bundle directory (local, gs://, s3://) or a loaded Bundle.
        output_mode: "concat" (one float tensor) or "dict" (one tensor per feature and
            cross); None takes the bundle's.
        name: the model's name.
        **kwargs: passed to FeatureSpace.from_artifacts (features, crosses, ...).
    Returns:
        keras.Model with one input per feature (shape (None, 1); a multivalent feature's
        (None, None), its rows padded with "", NaN or its pad_value; never the label),
        keyed by column name; it
        can be saved as .keras and exported with model.export() for serving raw feature
        dicts. A column name Keras cannot use (e.g. "x/y") names its input layer and
        serving signature input kdp_beam.builder.names.layer_name("x/y").
    """
    feature_space = FeatureSpace.from_artifacts(path, output_mode=output_mode, **kwargs)
    # keras' warning that an input's key ("x/y") is not its name ("x_y_<hash>") is silenced
    # once, for exactly those names, in kdp_beam.builder.names.
    return keras.Model(
        inputs=feature_space.get_inputs(),
        outputs=feature_space.get_encoded_features(),
        name=name,
    )
