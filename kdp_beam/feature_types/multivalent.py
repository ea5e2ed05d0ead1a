"""Multivalent features: a list of values per row (tags, categories, item histories, sensor
readings), declared with ``"multivalent": true`` on a categorical, hashed or number type.

The options and their checks live here, shared by those types (docs/multivalent.md):

- ``multivalent``: the column holds a list of values per row. Parquet lists, JSON arrays
  and multi-valued tf.Example features are read as lists; a string field (a CSV field, or
  text in any format) is split on ``separator``. A null, an empty list and an empty field
  are a row with no values; a null (or empty) element is a missing value.
- ``separator``: what splits a text field into values (default ``"|"``).
- ``sequence_length``: the encoding is the row's values in order, padded or truncated to
  this many (categoricals' ``output_mode: "int"``, and numbers' sequence output).
- ``pooling`` (numbers): ``"mean"``, ``"sum"`` or ``"max"`` of the row's encoded values,
  one value per row; the default when no sequence_length is given is ``"mean"``, which
  keeps the output one column wide whatever the list lengths, and a row's scale whatever
  its number of values.
- ``pad_value`` (integer types): what pads a dense integer input's rows to one length, and
  what a missing element is given as (default -1, keras' IntegerLookup OOV token and
  kdp_beam's missing integer): the model reads it as no value. A string list is padded with
  "", a number list with NaN. Encoding only: the model's inputs, not the statistics.
"""

from kdp_beam.errors import SpecError
from kdp_beam.feature_types.options import MAX_ENCODED_WIDTH, MAX_INT64, boolean, integer, one_of, shown

OPTIONS = {"multivalent": False, "separator": "|", "sequence_length": None}
NUMBER_OPTIONS = {**OPTIONS, "pooling": None}
INTEGER_OPTIONS = {**OPTIONS, "pad_value": -1}
# Only the encoding depends on these: a model may pad or pool differently from the bundle.
ENCODING_OPTIONS = ("sequence_length", "pooling", "pad_value")
POOLINGS = ("mean", "sum", "max")
# A multivalent categorical's encodings: one_hot of a list is its multi_hot.
CATEGORY_OUTPUT_MODES = ("multi_hot", "count", "int")
MAX_SEPARATOR_LENGTH = 16


def list_kind(kind):
    """The read kind (kdp_beam.columns) of a list of `kind` values: "list<float>"..."""
    return f"list<{kind}>"


def is_multivalent(options):
    return bool(options.get("multivalent"))


def validate(options, pooled=False):
    """Checks the multivalent options (every one present); returns the options. `pooled`:
    a number type, which also has ``pooling``."""
    boolean(options["multivalent"], "multivalent")
    separator = options["separator"]
    if not isinstance(separator, str) or not 1 <= len(separator) <= MAX_SEPARATOR_LENGTH or "\n" in separator or "\r" in separator:
        raise SpecError(
            f"separator must be a string of 1 to {MAX_SEPARATOR_LENGTH} characters, no line end, got {shown(separator)}"
        )
    if "pad_value" in options:  # the integer types'
        options["pad_value"] = integer(options["pad_value"], "pad_value", -MAX_INT64 - 1, MAX_INT64)
    if not options["multivalent"]:
        defaults = {**INTEGER_OPTIONS, **(NUMBER_OPTIONS if pooled else OPTIONS)}
        given = [
            option for option, default in defaults.items()
            if option in options and option != "multivalent" and options[option] != default
        ]
        if given:
            raise SpecError(f"{given} apply to a list of values per row: set multivalent to true, or leave them out")
        return options
    if options["sequence_length"] is not None:
        options["sequence_length"] = integer(options["sequence_length"], "sequence_length", 1, MAX_ENCODED_WIDTH)
    if pooled:
        pooling = one_of(options["pooling"], "pooling", (None, *POOLINGS))
        if pooling is not None and options["sequence_length"] is not None:
            raise SpecError("give pooling (one value per row) or sequence_length (the values in order), not both")
        if pooling is None and options["sequence_length"] is None:
            options["pooling"] = "mean"
    return options


def validate_output_mode(options, modes):
    """A categorical's or hashed type's output_mode: `modes` (keras') for one value per
    row; for a list, CATEGORY_OUTPUT_MODES ("one_hot" read as "multi_hot"), "int" needing
    a sequence_length and the others none."""
    if not is_multivalent(options):
        return one_of(options["output_mode"], "output_mode", modes)
    if options["output_mode"] == "one_hot":
        options["output_mode"] = "multi_hot"
    mode = one_of(options["output_mode"], "output_mode", CATEGORY_OUTPUT_MODES)
    if (mode == "int") != (options["sequence_length"] is not None):
        raise SpecError(
            "a list's output_mode 'int' gives its values' indices padded to sequence_length: give both, "
            "or neither (multi_hot and count give one column per token)"
        )
    return mode
