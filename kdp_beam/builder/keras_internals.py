"""What kdp_beam needs of keras beyond its documented API, in one place.

keras keeps its public API (keras.layers, keras.utils.FeatureSpace's constructors and
methods, get_config/from_config) across 3.x releases, not its private names, which move
(keras 3.12 renamed TFDataLayer to DataLayer). Every private keras name kdp_beam uses is
here, each with why no public API does it; tests/builder/test_keras_internals.py checks each
against the installed keras, so an upgrade that moves one fails there first, by name, and
checks that no other kdp_beam module uses a private keras name. Beside them: classes keras
does not export, reached through its public objects, and the public way to read and rebuild
a layer's options and vocabulary (get_config / from_config) where kdp_beam once read private
attributes.
"""

import functools

import keras

# --- classes keras uses but does not export ------------------------------------------------

# FeatureSpace takes only instances of its Feature record (its _standardize_feature
# isinstance-checks them), so kdp_beam's Feature subclasses it. keras exports no name for
# it; the class FeatureSpace.feature() returns is it, wherever keras keeps it.
KerasFeature = type(keras.utils.FeatureSpace.feature("float32", None, "float"))


@functools.cache
def _identity_class():
    # FeatureSpace.float()'s preprocessor: an identity that, unlike keras.layers.Identity,
    # stays a TensorFlow op inside tf.data on any backend (a keras DataLayer). Not exported.
    return type(keras.utils.FeatureSpace.float(name="kdp_beam_identity").preprocessor)


def identity_layer(dtype, name):
    """The identity preprocessor keras' FeatureSpace.float() uses, for `dtype`."""
    return _identity_class()(dtype=dtype, name=name)


def is_identity_layer(layer):
    """Whether `layer` is FeatureSpace.float()'s identity preprocessor (also the one of a
    feature fed to the model unchanged)."""
    return isinstance(layer, _identity_class())


# --- FeatureSpace hooks kdp_beam overrides ------------------------------------------------

# keras.utils.FeatureSpace's private methods kdp_beam.FeatureSpace overrides, with why: no
# public argument does it. Each is called by keras' FeatureSpace (the test checks when).
FEATURE_SPACE_HOOKS = {
    # (self, name, feature) -> Feature: any column name ("x/y") gets a valid layer name, and
    # kdp_beam's declarations are accepted (every registered type's name, as keras accepts
    # its own; a features-JSON object; a kdp_beam.spec Feature).
    "_standardize_feature": ("name", "feature"),
    # (self, name, feature) -> keras.Input: inputs named by layer_name(), unique ignoring case.
    "_feature_to_input": ("name", "feature"),
    # (self, cross) -> HashedCrossing: crosses of any column names get a valid layer name.
    "_cross_to_crosser": ("cross",),
    # (self, features) -> dict: missing values filled before each preprocessor.
    "_preprocess_features": ("features",),
    # (self, preprocessed_features, crossed_features): missing indicators added to the output.
    "_merge_features": ("preprocessed_features", "crossed_features"),
    # (self) -> list of names: which preprocessors keras' adapt() adapts (kdp_beam adapts the
    # others from its own pass).
    "_list_adaptable_preprocessors": (),
}


def keras_adaptable(feature_space):
    """The names of the preprocessors keras' FeatureSpace.adapt would adapt: those with an
    adapt(), less a Normalization given its mean or a TextVectorization given its vocabulary.
    keras' own rule, read from the hook, not kdp_beam's override of it."""
    return keras.utils.FeatureSpace._list_adaptable_preprocessors(feature_space)


# --- layers that take their input as given -------------------------------------------------


def take_inputs_as_given(layer):
    """Makes `layer.call()` receive its input as given, as keras' own preprocessing layers
    (StringLookup, Hashing, TextVectorization, ...) set in their __init__: a string tensor
    or a list of strings untouched, a float64 tensor not autocast to float32, and inside a
    tf.data graph on any backend a TensorFlow tensor left one. keras has no public argument
    for this: autocast=False stops the cast but not the conversion to a backend tensor, and
    nothing else lets a list be passed positionally."""
    layer._convert_input_args = False
    layer._allow_non_tensor_positional_args = True


# --- options and vocabularies through get_config / from_config (public) --------------------

# TextVectorization's constructor arguments in its get_config (keras 3.12 to 3.15 alike),
# what kdp_beam once read from _lookup_layer.max_tokens, _standardize, _split, _ngrams_arg,
# _output_mode and _output_sequence_length.
TEXT_VECTORIZATION_OPTIONS = (
    "max_tokens",
    "standardize",
    "split",
    "ngrams",
    "output_mode",
    "output_sequence_length",
    "pad_to_max_tokens",
    "sparse",
    "ragged",
    "encoding",
)


def text_vectorization_options(layer):
    """A TextVectorization's options as constructed, from its get_config: standardize and
    split as given (a name, None or the callable), ngrams as given (None, an int or a tuple).
    """
    config = layer.get_config()
    return {option: config[option] for option in TEXT_VECTORIZATION_OPTIONS}


def with_vocabulary(layer, vocabulary, idf_weights=None):
    """A new StringLookup, IntegerLookup or TextVectorization like `layer` (same options and
    name) constructed with `vocabulary` (and `idf_weights`, for tf_idf).

    What set_vocabulary() cannot do for a TextVectorization through its public API: a
    vocabulary given at construction is kept in the layer's config, so a .keras file keeps
    tokens with newlines and empty tokens, which keras' vocabulary.txt asset (one token a
    line, trailing empty lines dropped) loses. The layer is then not adaptable, as keras
    makes one constructed with a vocabulary, and as a loaded one always was.
    """
    config = layer.get_config()
    # The old layer's vocabulary size, which keras would hold the new vocabulary to.
    config.pop("vocabulary_size", None)
    config["vocabulary"] = list(vocabulary)
    config["idf_weights"] = None if idf_weights is None else [float(w) for w in idf_weights]
    return type(layer).from_config(config)
