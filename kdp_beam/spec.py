"""Feature declarations: keras.utils.FeatureSpace's vocabulary as plain, JSON-able data.

A spec says, per input column, which preprocessing the model applies and so which
statistics the analysis must compute. It imports no TensorFlow and no Beam: the analysis,
the bundle and the builder all read the same objects.

JSON form (the `--features` file)::

    {"features": {"age": "float_normalized",
                  "city": {"type": "string_categorical", "max_tokens": 1000}},
     "crosses": [{"feature_names": ["age_bucket", "city"], "crossing_dim": 64}],
     "output_mode": "concat"}

A bare type string takes every default, as in FeatureSpace (`float_discretized` takes
`num_discretization_bins` bins, `string_hashed` takes `hashing_dim` bins).
"""

import builtins
import json
import numbers
import reprlib
import struct

from kdp_beam.errors import SpecError

_ONE_HOT_OR_INT = ("one_hot", "int")
_TEXT_OUTPUT_MODES = ("int", "multi_hot", "count", "tf_idf")
_STANDARDIZE = (None, "lower_and_strip_punctuation", "lower", "strip_punctuation")
_SPLIT = (None, "whitespace")
DATE_COMPONENTS = ("year", "month", "day", "day_of_week", "day_of_year", "hour")
DEFAULT_DATE_COMPONENTS = ["year", "month", "day", "day_of_week", "day_of_year"]
_REQUIRED = object()  # marks an option with no default

# Missing-value options (docs/missing-values.md). Numbers: the model fills a missing value
# with `fill_value` (None: the mean from the pass) and can add a 0/1 indicator column.
# Categoricals: missing counts, and encodes, as `missing_token` (None: the OOV index).
_NUMERIC_MISSING = {"fill_value": None, "missing_indicator": False}
_CATEGORICAL_MISSING = {"missing_token": None}
# Categoricals: "exact" counts (spread over workers by token), or "approximate": the top
# max_tokens by a bounded Misra-Gries sketch (docs/scaling.md).
_COUNTING = ("exact", "approximate")

# type -> (column kind read from the data, {option: default})
FEATURE_TYPES = {
    "float": ("float", {**_NUMERIC_MISSING}),
    "float_rescaled": ("float", {"scale": 1.0, "offset": 0.0, **_NUMERIC_MISSING}),
    "float_normalized": ("float", {**_NUMERIC_MISSING}),
    "float_discretized": (
        "float",
        {"num_bins": None, "bin_boundaries": None, "output_mode": "one_hot", **_NUMERIC_MISSING},
    ),
    "integer_categorical": (
        "integer",
        {
            "max_tokens": None,
            "num_oov_indices": 1,
            "output_mode": "one_hot",
            "counting": "exact",
            **_CATEGORICAL_MISSING,
        },
    ),
    "string_categorical": (
        "string",
        {
            "max_tokens": None,
            "num_oov_indices": 1,
            "output_mode": "one_hot",
            "counting": "exact",
            **_CATEGORICAL_MISSING,
        },
    ),
    "string_hashed": ("string", {"num_bins": _REQUIRED, "output_mode": "one_hot"}),
    "integer_hashed": ("integer", {"num_bins": _REQUIRED, "output_mode": "one_hot"}),
    "passthrough": (None, {"dtype": "float32"}),
    # Extensions beyond keras.utils.FeatureSpace.
    "text": (
        "string",
        {
            "max_tokens": None,
            "output_mode": "multi_hot",
            "ngrams": None,
            "sequence_length": None,
            "standardize": "lower_and_strip_punctuation",
            "split": "whitespace",
        },
    ),
    "date": (
        "string",
        {"format": None, "components": DEFAULT_DATE_COMPONENTS, "missing_indicator": False},
    ),
    # A registered plug-in statistic and the layer it builds (kdp_beam.plugins).
    "custom": (None, {"statistic": _REQUIRED, "options": None}),
}

# Passthrough dtypes and the column kind each is read as.
PASSTHROUGH_DTYPES = {
    "float32": "float",
    "float64": "float",
    "int32": "integer",
    "int64": "integer",
    "string": "string",
}

# What Keras' lookup layers drop from an adapted vocabulary: their OOV token.
OOV_TOKENS = {"string_categorical": "[UNK]", "integer_categorical": -1}
NUMERIC_TYPES = ("float", "float_rescaled", "float_normalized", "float_discretized")


# Sizes a declaration may ask for. An absurd size fails here, naming the feature and the
# argument, not after the whole job ran or by exhausting memory (docs/reliability.md).
MAX_ENCODED_WIDTH = 2**20  # columns of a dense encoding (one_hot, multi_hot, count,
# tf_idf) and tokens of an int sequence: 4 MiB of float32 per row already.
MAX_INDEX = 2**31 - 1  # bins or tokens behind an "int" output: int32 indices, as keras'
# Embedding and CategoryEncoding take them.
MAX_QUANTILE_BINS = 1000  # bins from the data: 1 / the quantile sketch's rank error
# (analyzers.quantiles.DEFAULT_EPSILON); narrower bins would be the sketch's noise.
MAX_APPROXIMATE_TOKENS = 2**24  # counting "approximate" keeps 10 Misra-Gries counters per
# token (analyzers.dataset.APPROXIMATE_BUCKETS_PER_TOKEN); tfx_bsl's sketch aborts the
# process beyond about 2**28 counters.
MAX_NGRAM = 16  # n-gram width: each width is one more pass over every row's words.
FLOAT32_MAX = 3.4028234663852886e38  # the model computes in float32
MAX_INT64 = 2**63 - 1

# Features a cross can take: their preprocessor gives one integer or string per row.
_CROSSABLE = ("integer_categorical", "string_categorical", "integer_hashed", "string_hashed",
              "float_discretized")
_CROSSABLE_PASSTHROUGH = ("int32", "int64", "string")


# Values in error messages: short, and safe on deeply nested JSON.
_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother = 3, 80, 80


def _shown(value):
    return _SHOWN.repr(value)


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _integer(value, arg, low, high, why=""):
    """`value` as an int if it is an integer in [low, high], else SpecError naming `arg`."""
    if not _is_int(value) or not low <= value <= high:
        raise SpecError(f"{arg} must be an integer from {low} to {high:,}{why}, got {_shown(value)}")
    return int(value)


def _float32(value, arg):
    """`value` if it is a number the model's float32 holds (NaN and +-inf refused: a
    missing value filled with NaN, or scaled by inf, is still missing)."""
    if not _is_number(value) or not -FLOAT32_MAX <= value <= FLOAT32_MAX:
        raise SpecError(
            f"{arg} must be a finite number (the model computes in float32, up to "
            f"{FLOAT32_MAX:.4g} in magnitude), got {_shown(value)}"
        )
    return value


def _is_strict_json(value):
    """Whether the bundle's manifest can store `value` (strict JSON: no NaN or inf)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


def _as_float32(value):
    return struct.unpack("f", struct.pack("f", value))[0]


def _one_of(value, arg, accepted):
    if not (value is None or isinstance(value, str)) or value not in accepted:
        raise SpecError(f"{arg} must be one of {list(accepted)}, got {_shown(value)}")
    return value


def _width(arg, output_mode):
    """The bound of a size: a dense encoding's width, or an int output's index space."""
    if output_mode == "int":
        return MAX_INDEX, " (an int output's indices are int32)"
    return MAX_ENCODED_WIDTH, (
        f" (output_mode {output_mode!r} makes {arg} columns per row; use output_mode "
        "'int' for more)"
    )


class Feature:
    """One feature's declaration: a type from FEATURE_TYPES and its options.

    Raises SpecError naming the argument when an option is unknown or invalid; sizes are
    bounded by MAX_ENCODED_WIDTH, MAX_INDEX, MAX_QUANTILE_BINS, MAX_APPROXIMATE_TOKENS and
    MAX_NGRAM, numbers by the model's float32.
    """

    def __init__(self, type, **options):  # noqa: A002 - FeatureSpace's word
        if not isinstance(type, str) or type not in FEATURE_TYPES:
            raise SpecError(
                f"unknown feature type {_shown(type)}; expected one of {sorted(FEATURE_TYPES)}"
            )
        defaults = FEATURE_TYPES[type][1]
        unknown = sorted(set(options) - set(defaults))
        if unknown:
            raise SpecError(
                f"{type}: unknown argument(s) {unknown}; accepted: {sorted(defaults)}"
            )
        merged = {**defaults, **options}
        missing = [k for k, v in merged.items() if v is _REQUIRED]
        if missing:
            raise SpecError(f"{type}: argument(s) {missing} are required")
        self.type = type
        self.options = merged
        try:
            self._validate()
        except SpecError as e:
            raise SpecError(f"{type}: {e}") from None

    def _validate(self):
        opts, t = self.options, self.type
        if "output_mode" in opts:
            _one_of(opts["output_mode"], "output_mode", _TEXT_OUTPUT_MODES if t == "text" else _ONE_HOT_OR_INT)
        if "missing_indicator" in opts and not isinstance(opts["missing_indicator"], bool):
            raise SpecError(f"missing_indicator must be true or false, got {_shown(opts['missing_indicator'])}")
        if opts.get("fill_value") is not None:
            _float32(opts["fill_value"], "fill_value (null: the mean)")
        if t == "custom":
            if not isinstance(opts["statistic"], str) or not opts["statistic"]:
                raise SpecError(f"statistic must be a registered name, got {_shown(opts['statistic'])}")
            options = opts["options"]
            if options is not None and not (isinstance(options, dict) and _is_strict_json(options)):
                raise SpecError(
                    f"options must be an object of JSON values (finite numbers), got {_shown(options)}"
                )
            opts["options"] = dict(options or {})
        elif t == "text":
            self._validate_text()
        elif t == "date":
            self._validate_date()
        elif t == "float_rescaled":
            for arg in ("scale", "offset"):
                _float32(opts[arg], arg)
        elif t == "float_discretized":
            self._validate_bins()
        elif t in OOV_TOKENS:
            self._validate_categorical()
        elif t in ("string_hashed", "integer_hashed"):
            opts["num_bins"] = _integer(opts["num_bins"], "num_bins", 1, *_width("num_bins", opts["output_mode"]))
        elif t == "passthrough":
            _one_of(opts["dtype"], "dtype", PASSTHROUGH_DTYPES)

    def _validate_bins(self):
        opts = self.options
        num_bins, boundaries = opts["num_bins"], opts["bin_boundaries"]
        if (num_bins is None) == (boundaries is None):
            raise SpecError("give exactly one of num_bins or bin_boundaries")
        if num_bins is not None:
            opts["num_bins"] = _integer(
                num_bins, "num_bins", 1, MAX_QUANTILE_BINS,
                " (bins from the data are equal-frequency within the quantile sketch's 0.1% "
                "rank error; give bin_boundaries for finer bins)",
            )
            return
        if not isinstance(boundaries, (list, tuple)) or not 1 <= len(boundaries) < MAX_ENCODED_WIDTH:
            raise SpecError(
                f"bin_boundaries must be a list of 1 to {MAX_ENCODED_WIDTH - 1:,} numbers, "
                f"got {_shown(boundaries)}"
            )
        values = [builtins.float(_float32(b, "each of bin_boundaries")) for b in boundaries]
        rounded = [_as_float32(b) for b in values]
        if any(a >= b for a, b in zip(rounded, rounded[1:])):
            raise SpecError(
                "bin_boundaries must increase strictly, also once rounded to the model's "
                f"float32 (a repeated boundary makes a bin no value falls in), got {_shown(boundaries)}"
            )
        opts["bin_boundaries"] = values

    def _validate_categorical(self):
        opts, t = self.options, self.type
        oov = opts["num_oov_indices"] = _integer(
            opts["num_oov_indices"], "num_oov_indices", 0, MAX_ENCODED_WIDTH
        )
        _one_of(opts["counting"], "counting", _COUNTING)
        max_tokens = opts["max_tokens"]
        if opts["counting"] == "approximate" and max_tokens is None:
            raise SpecError("counting 'approximate' keeps the top max_tokens; set max_tokens")
        if max_tokens is not None:
            high, why = _width("max_tokens", opts["output_mode"])
            if opts["counting"] == "approximate" and high > MAX_APPROXIMATE_TOKENS:
                high, why = MAX_APPROXIMATE_TOKENS, " (the approximate count's sketch size)"
            opts["max_tokens"] = _integer(
                max_tokens, f"max_tokens (which counts the {oov} OOV indices; null: every token)",
                oov + 1, high, why,
            )
        token = opts["missing_token"]
        if t == "string_categorical" and token is not None and not isinstance(token, str):
            raise SpecError(f"missing_token must be a string or null, got {_shown(token)}")
        if t == "integer_categorical" and token is not None:
            opts["missing_token"] = _integer(token, "missing_token (null: the OOV index)", -MAX_INT64 - 1, MAX_INT64)

    def _validate_text(self):
        opts = self.options
        max_tokens, ngrams, length = opts["max_tokens"], opts["ngrams"], opts["sequence_length"]
        if max_tokens is not None:
            opts["max_tokens"] = _integer(
                max_tokens, "max_tokens (null: every token)", 3, *_width("max_tokens", opts["output_mode"])
            )
        if isinstance(ngrams, (list, tuple)):
            if not ngrams:
                raise SpecError("ngrams must be null, an integer or a non-empty list of widths")
            opts["ngrams"] = [_integer(n, "each of ngrams", 1, MAX_NGRAM) for n in ngrams]
        elif ngrams is not None:
            opts["ngrams"] = _integer(ngrams, "ngrams (null, an integer or a list)", 1, MAX_NGRAM)
        if opts["output_mode"] == "int":
            opts["sequence_length"] = _integer(
                length, "sequence_length", 1, MAX_ENCODED_WIDTH,
                " (output_mode 'int' needs it: the feature space needs a fixed width)",
            )
        elif length is not None:
            raise SpecError("sequence_length applies only to output_mode 'int'")
        _one_of(opts["standardize"], "standardize", _STANDARDIZE)
        _one_of(opts["split"], "split", _SPLIT)

    def _validate_date(self):
        from kdp_beam.dates import date_pattern  # validates the format

        opts = self.options
        components = opts["components"]
        if (
            not isinstance(components, (list, tuple))
            or not components
            or not all(isinstance(c, str) and c in DATE_COMPONENTS for c in components)
            or len(set(components)) != len(components)
        ):
            raise SpecError(
                f"components must be distinct names from {DATE_COMPONENTS}, got {_shown(components)}"
            )
        opts["components"] = list(components)
        try:
            date_pattern(opts["format"])
        except SpecError as e:
            raise SpecError(str(e).removeprefix("date: ")) from None

    @property
    def column_kind(self):
        """How the column is read: "float" (float64), "integer" (int64) or "string"."""
        kind = FEATURE_TYPES[self.type][0]
        if self.type == "custom":
            from kdp_beam.plugins import statistic_class

            return statistic_class(self.options["statistic"]).column_kind
        return kind or PASSTHROUGH_DTYPES[self.options["dtype"]]

    @property
    def crossable(self):
        """Whether a cross can take it: its preprocessor gives one integer or string."""
        if self.type == "passthrough":
            return self.options["dtype"] in _CROSSABLE_PASSTHROUGH
        return self.type in _CROSSABLE

    def to_json(self):
        return {"type": self.type, **self.options}

    def __eq__(self, other):
        return isinstance(other, Feature) and self.to_json() == other.to_json()

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"Feature({self.type!r}{', ' if args else ''}{args})"


class Cross:
    """A hashed cross of two or more categorical features (keras HashedCrossing)."""

    def __init__(self, feature_names, crossing_dim, output_mode="one_hot"):
        if not isinstance(feature_names, (list, tuple)) or len(feature_names) < 2 or not all(
            isinstance(n, str) and n for n in feature_names
        ):
            raise SpecError(
                f"feature_names must be a list of two or more feature names, got {_shown(feature_names)}"
            )
        names = tuple(feature_names)
        try:
            _one_of(output_mode, "output_mode", _ONE_HOT_OR_INT)
            crossing_dim = _integer(crossing_dim, "crossing_dim", 1, *_width("crossing_dim", output_mode))
        except SpecError as e:
            raise SpecError(f"cross {list(names)}: {e}") from None
        self.feature_names = names
        self.crossing_dim = crossing_dim
        self.output_mode = output_mode

    @property
    def name(self):
        return "_X_".join(self.feature_names)  # as keras.utils.FeatureSpace names it

    def to_json(self):
        return {
            "feature_names": list(self.feature_names),
            "crossing_dim": self.crossing_dim,
            "output_mode": self.output_mode,
        }

    def __eq__(self, other):
        return isinstance(other, Cross) and self.to_json() == other.to_json()


_CROSS_KEYS = ("feature_names", "crossing_dim", "output_mode")
_TOP_LEVEL_KEYS = (
    "features",
    "crosses",
    "output_mode",
    "crossing_dim",
    "hashing_dim",
    "num_discretization_bins",
    "profile",
)


class FeatureSpec:
    """Every feature of a dataset, with FeatureSpace's top-level options.

    Args:
        features: dict name -> Feature, type string, or JSON dict with a "type".
        crosses: list of Cross, JSON dicts (crossing_dim defaults to the top-level one),
            or lists of feature names.
        output_mode: "concat" or "dict", as in FeatureSpace.
        crossing_dim: default crossing dimension for crosses given as name lists.
        hashing_dim: bins for a bare "string_hashed" / "integer_hashed".
        num_discretization_bins: bins for a bare "float_discretized".
        profile: also sketch every numeric feature's distribution (20 quantiles, 1% rank
            error) for `kdp-beam report`'s histograms; costs ~8 ms of CPU per 100k
            values per feature.
    Raises:
        SpecError: naming where the problem is (top-level key, feature name, cross index)
            and what is accepted there.
    """

    def __init__(
        self,
        features,
        crosses=None,
        output_mode="concat",
        crossing_dim=32,
        hashing_dim=32,
        num_discretization_bins=32,
        profile=False,
    ):
        if not isinstance(features, dict):
            raise SpecError(
                'features must be an object mapping each column name to its declaration, '
                f'e.g. {{"age": "float_normalized"}}; got {type(features).__name__}'
            )
        if not features:
            raise SpecError("features must declare at least one feature")
        _one_of(output_mode, "output_mode", ("concat", "dict"))
        for arg, value in (("crossing_dim", crossing_dim), ("hashing_dim", hashing_dim),
                           ("num_discretization_bins", num_discretization_bins)):
            if value is not None and not (_is_int(value) and value >= 1):
                raise SpecError(f"{arg} must be an integer >= 1 or null, got {_shown(value)}")
        if not isinstance(profile, bool):
            raise SpecError(f"profile must be true or false, got {_shown(profile)}")
        self.output_mode = output_mode
        self.crossing_dim = crossing_dim
        self.hashing_dim = hashing_dim
        self.num_discretization_bins = num_discretization_bins
        self.profile = profile
        self.features = {}
        for name, declaration in features.items():
            if not isinstance(name, str) or not name:
                raise SpecError(f"feature names must be non-empty strings, got {name!r}")
            try:
                self.features[name] = self._standardize(declaration)
            except SpecError as e:
                raise SpecError(f"feature {name!r}: {e}") from None
        if crosses is not None and not isinstance(crosses, (list, tuple)):
            raise SpecError(f"crosses must be a list of crosses, got {_shown(crosses)}")
        self.crosses = []
        for i, cross in enumerate(crosses or []):
            try:
                self.crosses.append(self._standardize_cross(cross))
            except SpecError as e:
                raise SpecError(f"crosses[{i}]: {e}") from None

    def _standardize(self, declaration):
        if isinstance(declaration, Feature):
            return declaration
        if isinstance(declaration, str):
            default = {"float_discretized": "num_discretization_bins",
                       "string_hashed": "hashing_dim", "integer_hashed": "hashing_dim"}.get(declaration)
            if default is None:
                return Feature(declaration)
            try:
                return Feature(declaration, num_bins=getattr(self, default))
            except SpecError as e:
                raise SpecError(f"{e} (a bare {declaration!r} takes {default})") from None
        if isinstance(declaration, dict) and "type" in declaration:
            options = dict(declaration)
            type_ = options.pop("type")
            if not all(isinstance(key, str) for key in options):
                raise SpecError(f"option names must be strings, got {_shown(list(options))}")
            return Feature(type_, **options)
        raise SpecError(
            f"expected a type string or an object with a \"type\" key, got {_shown(declaration)}"
        )

    def _standardize_cross(self, cross):
        if isinstance(cross, dict):
            unknown = sorted(set(cross) - set(_CROSS_KEYS), key=str)
            if unknown or "feature_names" not in cross:
                raise SpecError(
                    f"a cross object takes the keys {list(_CROSS_KEYS)} (feature_names "
                    f"required), got {_shown(sorted(cross, key=str))}"
                )
            cross = Cross(**{"crossing_dim": self.crossing_dim, **cross})
        elif not isinstance(cross, Cross):
            cross = Cross(cross, crossing_dim=self.crossing_dim)
        unknown = [n for n in cross.feature_names if n not in self.features]
        if unknown:
            raise SpecError(f"cross {list(cross.feature_names)}: unknown feature(s) {unknown}")
        uncrossable = [n for n in cross.feature_names if not self.features[n].crossable]
        if uncrossable:
            raise SpecError(
                f"cross {list(cross.feature_names)}: cannot cross {uncrossable} "
                f"({[self.features[n].type for n in uncrossable]}); a cross takes "
                f"{list(_CROSSABLE)} features, or passthrough of dtype {list(_CROSSABLE_PASSTHROUGH)}"
            )
        if cross.name in self.features or cross.name in {c.name for c in self.crosses}:
            raise SpecError(
                f"cross {list(cross.feature_names)}: its output {cross.name!r} is also the "
                "name of a feature or of another cross"
            )
        return cross

    def to_json(self):
        return {
            "features": {name: f.to_json() for name, f in self.features.items()},
            "crosses": [c.to_json() for c in self.crosses],
            "output_mode": self.output_mode,
            "crossing_dim": self.crossing_dim,
            "hashing_dim": self.hashing_dim,
            "num_discretization_bins": self.num_discretization_bins,
            "profile": self.profile,
        }

    @classmethod
    def from_json(cls, obj):
        """The spec of a JSON object (as json.loads gives it). Raises SpecError."""
        if not isinstance(obj, dict) or "features" not in obj:
            raise SpecError('a feature spec is a JSON object with a "features" key')
        obj = {k: v for k, v in obj.items() if k != "notes"}  # people's notes (kdp-beam infer)
        unknown = sorted(set(obj) - set(_TOP_LEVEL_KEYS), key=str)
        if unknown:
            raise SpecError(f"unknown top-level key(s) {unknown}; accepted: {list(_TOP_LEVEL_KEYS)}")
        return cls(**obj)

    @classmethod
    def from_json_text(cls, text, source="features file"):
        try:
            obj = json.loads(text, object_pairs_hook=_refuse_repeated_keys)
        except json.JSONDecodeError as e:
            raise SpecError(f"{source} is not valid JSON: {e}") from None
        except RecursionError:
            raise SpecError(f"{source}: JSON nested too deeply to be a feature spec") from None
        except SpecError as e:
            raise SpecError(f"{source}: {e}") from None
        try:
            return cls.from_json(obj)
        except SpecError as e:
            raise SpecError(f"{source}: {e}") from None

    def __eq__(self, other):
        return isinstance(other, FeatureSpec) and self.to_json() == other.to_json()

    def __repr__(self):
        return f"FeatureSpec({self.to_json()!r})"


def _refuse_repeated_keys(pairs):
    """json's object hook: a key given twice would silently keep only its last value."""
    obj = dict(pairs)
    if len(obj) < len(pairs):
        seen, repeated = set(), set()
        for key, _ in pairs:
            (repeated if key in seen else seen).add(key)
        raise SpecError(f"key(s) {sorted(repeated)} appear twice in one object; give each once")
    return obj


# Constructors with FeatureSpace's names and defaults (plus the missing-value options).
def float(fill_value=None, missing_indicator=False):  # noqa: A001 - FeatureSpace's name
    return Feature("float", fill_value=fill_value, missing_indicator=missing_indicator)


def float_rescaled(scale=1.0, offset=0.0, fill_value=None, missing_indicator=False):
    return Feature(
        "float_rescaled",
        scale=scale,
        offset=offset,
        fill_value=fill_value,
        missing_indicator=missing_indicator,
    )


def float_normalized(fill_value=None, missing_indicator=False):
    return Feature("float_normalized", fill_value=fill_value, missing_indicator=missing_indicator)


def float_discretized(
    num_bins=None, bin_boundaries=None, output_mode="one_hot", fill_value=None, missing_indicator=False
):
    return Feature(
        "float_discretized",
        num_bins=num_bins,
        bin_boundaries=bin_boundaries,
        output_mode=output_mode,
        fill_value=fill_value,
        missing_indicator=missing_indicator,
    )


def integer_categorical(
    max_tokens=None, num_oov_indices=1, output_mode="one_hot", missing_token=None, counting="exact"
):
    return Feature("integer_categorical", **_arguments(locals()))


def string_categorical(
    max_tokens=None, num_oov_indices=1, output_mode="one_hot", missing_token=None, counting="exact"
):
    return Feature("string_categorical", **_arguments(locals()))


def _arguments(local_variables):
    return {k: v for k, v in local_variables.items() if not k.startswith("_")}


def string_hashed(num_bins, output_mode="one_hot"):
    return Feature("string_hashed", num_bins=num_bins, output_mode=output_mode)


def integer_hashed(num_bins, output_mode="one_hot"):
    return Feature("integer_hashed", num_bins=num_bins, output_mode=output_mode)


def passthrough(dtype="float32"):
    return Feature("passthrough", dtype=dtype)


def text(
    max_tokens=None,
    output_mode="multi_hot",
    ngrams=None,
    sequence_length=None,
    standardize="lower_and_strip_punctuation",
    split="whitespace",
):
    """Free text, tokenised as keras TextVectorization does (an extension beyond keras)."""
    return Feature("text", **_arguments(locals()))


def date(format=None, components=None, missing_indicator=False):  # noqa: A002
    """An ISO (or `format`, strftime-style) date or timestamp, encoded as its normalised
    year and sin/cos of cyclical components (an extension beyond keras)."""
    return Feature(
        "date",
        format=format,
        components=list(components or DEFAULT_DATE_COMPONENTS),
        missing_indicator=missing_indicator,
    )


def cross(feature_names, crossing_dim, output_mode="one_hot"):
    return Cross(feature_names, crossing_dim, output_mode)
