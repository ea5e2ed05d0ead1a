"""Every private keras name kdp_beam uses, in one place (tests/builder/test_keras_internals.py
checks each in the installed keras)."""

import keras
from keras.src.layers.preprocessing.feature_space import TFDIdentity


def is_identity(layer):
    """Whether `layer` is keras FeatureSpace's identity preprocessor (FeatureSpace.float()'s)."""
    return isinstance(layer, TFDIdentity)


def identity_layer(dtype, name):
    return TFDIdentity(dtype=dtype, name=name)


def keep_vocabulary_in_config(layer, vocabulary, idf_weights=None):
    """Saves a lookup's (or TextVectorization's) vocabulary in its JSON config rather than
    keras' newline-separated asset file, so tokens with newlines or empty tokens survive
    .keras save/load."""
    lookup = layer._lookup_layer if isinstance(layer, keras.layers.TextVectorization) else layer
    lookup.input_vocabulary = vocabulary
    if isinstance(layer, keras.layers.TextVectorization):
        lookup.input_idf_weights = None if idf_weights is None else idf_weights.tolist()
