"""Checks of declared options shared by every feature type, and the bounds they keep.

Each check raises SpecError naming the argument; the caller adds the feature's name and
type. Sizes are bounded so that an absurd declaration fails before the job, not after it
ran or by exhausting memory (docs/reliability.md).
"""

import json
import numbers
import reprlib
import struct

from kdp_beam.errors import SpecError

REQUIRED = object()  # an option's default when the declaration must give it

MAX_ENCODED_WIDTH = 2**20  # columns of a dense encoding (one_hot, multi_hot, count,
# tf_idf) and tokens of an int sequence: 4 MiB of float32 per row already.
MAX_INDEX = 2**31 - 1  # bins or tokens behind an "int" output: int32 indices, as keras'
# Embedding and CategoryEncoding take them.
FLOAT32_MAX = 3.4028234663852886e38  # the model computes in float32
MAX_INT64 = 2**63 - 1
ONE_HOT_OR_INT = ("one_hot", "int")

# Values in error messages: short, and safe on deeply nested JSON.
_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother = 3, 80, 80


def shown(value):
    return _SHOWN.repr(value)


def is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def integer(value, arg, low, high, why=""):
    """`value` as an int if it is an integer in [low, high], else SpecError naming `arg`."""
    if not is_int(value) or not low <= value <= high:
        raise SpecError(f"{arg} must be an integer from {low:,} to {high:,}{why}, got {shown(value)}")
    return int(value)


def float32(value, arg):
    """`value` if it is a number the model's float32 holds (NaN and +-inf refused: a
    missing value filled with NaN, or scaled by inf, is still missing)."""
    if not is_number(value) or not -FLOAT32_MAX <= value <= FLOAT32_MAX:
        raise SpecError(
            f"{arg} must be a finite number (the model computes in float32, up to "
            f"{FLOAT32_MAX:.4g} in magnitude), got {shown(value)}"
        )
    return value


def boolean(value, arg):
    if not isinstance(value, bool):
        raise SpecError(f"{arg} must be true or false, got {shown(value)}")
    return value


def plain(value):
    """`value` with numpy scalars and arrays, as keras users pass them
    (``num_bins=np.int64(8)``), as the Python values they hold."""
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value


def is_strict_json(value):
    """Whether the bundle's manifest can store `value` (strict JSON: no NaN or inf)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


def as_float32(value):
    return struct.unpack("f", struct.pack("f", value))[0]


def one_of(value, arg, accepted):
    if not (value is None or isinstance(value, str)) or value not in accepted:
        raise SpecError(f"{arg} must be one of {list(accepted)}, got {shown(value)}")
    return value


def width(arg, output_mode):
    """(bound, why) of a size: a dense encoding's width, or an int output's index space."""
    if output_mode == "int":
        return MAX_INDEX, " (an int output's indices are int32)"
    if output_mode == "target":  # one column per class whatever the vocabulary
        return MAX_INDEX, " (a lookup's indices are int32)"
    return MAX_ENCODED_WIDTH, (
        f" (output_mode {output_mode!r} makes {arg} columns per row; use output_mode "
        "'int' for more)"
    )
