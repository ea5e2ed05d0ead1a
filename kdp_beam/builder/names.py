"""Keras layer names for column names, so any column name works in a model."""

import hashlib
import re
import warnings

import keras

# What TensorFlow takes as a root name scope, less "/" (which keras refuses): a layer
# named otherwise builds, but fails in model.export() and tf.function tracing.
_VALID = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.-]*")
_INVALID_CHARACTER = re.compile(r"[^A-Za-z0-9_.-]")

# A model's inputs are keyed by column name and named by layer_name() on purpose; keras
# warns at every model built (or loaded) from them that the key is not the tensor's name.
# Only the warnings about names layer_name() made (they end in its hash) are silenced.
warnings.filterwarnings(
    "ignore",
    message=r"(?s)When providing `inputs` as a dict, all keys in the dict must match the names "
    r"of the corresponding tensors\. Received key .* which has name '[^']*_[0-9a-f]{8}'\.",
    category=UserWarning,
)


def layer_name(name, names=()):
    """The Keras layer name of a column (or cross) name.

    A name TensorFlow accepts is kept ("age", "user_id"). Any other has the characters
    outside ``[A-Za-z0-9_.-]`` replaced by "_" (and "f" in front if it then starts with
    "_" or "-"), plus 8 hex digits of the name's SHA-1, so names that differ only there stay
    distinct: "a/b" -> "a_b_<hash>" while "a_b" stays "a_b".

    `names`, all the names beside it (the features, for the model's inputs): a SavedModel
    signature lowercases its argument names, so a name that is not lowercase gets the hash
    too when another differs from it only by case ("Name" -> "Name_<hash>" beside "name").
    """
    digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    if _VALID.fullmatch(name):
        folded = name.lower()
        if name != folded and any(o != name and o.lower() == folded for o in names):
            return f"{name}_{digest}"
        return name
    safe = _INVALID_CHARACTER.sub("_", name)
    if not _VALID.match(safe):
        safe = "f" + safe
    return f"{safe}_{digest}"


def auto_name(prefix):
    """"prefix", then "prefix_1", "prefix_2"...: the name keras gives an unnamed FeatureSpace
    feature, from the counter keras' own names use (so they never collide)."""
    uid = keras.backend.get_uid(prefix) - 1
    return f"{prefix}_{uid}" if uid else prefix
