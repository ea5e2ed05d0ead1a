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


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class Feature:
    """One feature's declaration: a type from FEATURE_TYPES and its options.

    Raises SpecError naming the argument when an option is unknown or invalid.
    """

    def __init__(self, type, **options):
        if type not in FEATURE_TYPES:
            raise SpecError(
                f"unknown feature type {type!r}; expected one of {sorted(FEATURE_TYPES)}"
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
        self._validate()

    def _validate(self):
        opts, t = self.options, self.type
        modes = _TEXT_OUTPUT_MODES if t == "text" else _ONE_HOT_OR_INT
        if "output_mode" in opts and opts["output_mode"] not in modes:
            raise SpecError(
                f"{t}: output_mode must be one of {modes}, got {opts['output_mode']!r}"
            )
        if "missing_indicator" in opts and not isinstance(opts["missing_indicator"], bool):
            raise SpecError(f"{t}: missing_indicator must be true or false")
        if opts.get("fill_value") is not None and not _is_number(opts["fill_value"]):
            raise SpecError(f"{t}: fill_value must be a number or null (the mean)")
        token = opts.get("missing_token")
        if token is not None and not (
            isinstance(token, str) if t == "string_categorical" else _is_int(token)
        ):
            kind = "a string" if t == "string_categorical" else "an integer"
            raise SpecError(f"{t}: missing_token must be {kind} or null, got {token!r}")
        if t == "custom":
            if not isinstance(opts["statistic"], str) or not opts["statistic"]:
                raise SpecError(f"custom: statistic must be a registered name, got {opts['statistic']!r}")
            if opts["options"] is not None and not isinstance(opts["options"], dict):
                raise SpecError(f"custom: options must be an object, got {opts['options']!r}")
            opts["options"] = dict(opts["options"] or {})
        elif t == "text":
            self._validate_text()
        elif t == "date":
            self._validate_date()
        elif t == "float_rescaled":
            for arg in ("scale", "offset"):
                if not _is_number(opts[arg]):
                    raise SpecError(f"{t}: {arg} must be a number, got {opts[arg]!r}")
        elif t == "float_discretized":
            num_bins, boundaries = opts["num_bins"], opts["bin_boundaries"]
            if (num_bins is None) == (boundaries is None):
                raise SpecError(f"{t}: give exactly one of num_bins or bin_boundaries")
            if num_bins is not None and (not _is_int(num_bins) or num_bins < 1):
                raise SpecError(f"{t}: num_bins must be an integer >= 1, got {num_bins!r}")
            if boundaries is not None:
                if not all(_is_number(b) for b in boundaries) or list(boundaries) != sorted(
                    boundaries
                ):
                    raise SpecError(
                        f"{t}: bin_boundaries must be a sorted list of numbers, "
                        f"got {boundaries!r}"
                    )
                opts["bin_boundaries"] = [builtins.float(b) for b in boundaries]
        elif t in ("integer_categorical", "string_categorical"):
            oov = opts["num_oov_indices"]
            if not _is_int(oov) or oov < 0:
                raise SpecError(f"{t}: num_oov_indices must be an integer >= 0, got {oov!r}")
            max_tokens = opts["max_tokens"]
            if max_tokens is not None and (not _is_int(max_tokens) or max_tokens <= oov):
                raise SpecError(
                    f"{t}: max_tokens must be None or an integer greater than "
                    f"num_oov_indices ({oov}), got {max_tokens!r}"
                )
            if opts["counting"] not in _COUNTING:
                raise SpecError(f"{t}: counting must be one of {_COUNTING}, got {opts['counting']!r}")
            if opts["counting"] == "approximate" and max_tokens is None:
                raise SpecError(f"{t}: counting 'approximate' keeps the top max_tokens; set max_tokens")
        elif t in ("string_hashed", "integer_hashed"):
            if not _is_int(opts["num_bins"]) or opts["num_bins"] < 1:
                raise SpecError(
                    f"{t}: num_bins must be an integer >= 1, got {opts['num_bins']!r}"
                )
        elif t == "passthrough" and opts["dtype"] not in PASSTHROUGH_DTYPES:
            raise SpecError(
                f"{t}: dtype must be one of {sorted(PASSTHROUGH_DTYPES)}, "
                f"got {opts['dtype']!r}"
            )

    def _validate_text(self):
        opts = self.options
        max_tokens, ngrams, length = opts["max_tokens"], opts["ngrams"], opts["sequence_length"]
        if max_tokens is not None and (not _is_int(max_tokens) or max_tokens < 3):
            raise SpecError(
                "text: max_tokens must be None or an integer >= 3 (it counts the padding "
                f"and OOV tokens, as in TextVectorization), got {max_tokens!r}"
            )
        if isinstance(ngrams, (list, tuple)):
            if not ngrams or not all(_is_int(n) and n >= 1 for n in ngrams):
                raise SpecError(f"text: ngrams must be integers >= 1, got {ngrams!r}")
            opts["ngrams"] = list(ngrams)
        elif ngrams is not None and (not _is_int(ngrams) or ngrams < 1):
            raise SpecError(f"text: ngrams must be None, an integer or a list, got {ngrams!r}")
        if opts["output_mode"] == "int" and (not _is_int(length) or length < 1):
            raise SpecError(
                "text: output_mode 'int' needs sequence_length (an integer >= 1): the "
                "feature space needs a fixed width"
            )
        if opts["output_mode"] != "int" and length is not None:
            raise SpecError("text: sequence_length applies only to output_mode 'int'")
        if opts["standardize"] not in _STANDARDIZE:
            raise SpecError(f"text: standardize must be one of {_STANDARDIZE}")
        if opts["split"] not in _SPLIT:
            raise SpecError(f"text: split must be one of {_SPLIT}")

    def _validate_date(self):
        from kdp_beam.dates import date_pattern  # validates the format

        opts = self.options
        components = list(opts["components"])
        unknown = [c for c in components if c not in DATE_COMPONENTS]
        if not components or unknown or len(set(components)) != len(components):
            raise SpecError(
                f"date: components must be distinct names from {DATE_COMPONENTS}, "
                f"got {opts['components']!r}"
            )
        opts["components"] = components
        date_pattern(opts["format"])

    @property
    def column_kind(self):
        """How the column is read: "float" (float64), "integer" (int64) or "string"."""
        kind = FEATURE_TYPES[self.type][0]
        if self.type == "custom":
            from kdp_beam.plugins import statistic_class

            return statistic_class(self.options["statistic"]).column_kind
        return kind or PASSTHROUGH_DTYPES[self.options["dtype"]]

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
        names = tuple(feature_names)
        if len(names) < 2 or not all(isinstance(n, str) for n in names):
            raise SpecError(f"cross: feature_names must name two or more features, got {names!r}")
        if not _is_int(crossing_dim) or crossing_dim < 1:
            raise SpecError(f"cross {names}: crossing_dim must be an integer >= 1")
        if output_mode not in _ONE_HOT_OR_INT:
            raise SpecError(f"cross {names}: output_mode must be one of {_ONE_HOT_OR_INT}")
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


class FeatureSpec:
    """Every feature of a dataset, with FeatureSpace's top-level options.

    Args:
        features: dict name -> Feature, type string, or JSON dict with a "type".
        crosses: list of Cross, JSON dicts, or tuples of feature names.
        output_mode: "concat" or "dict", as in FeatureSpace.
        crossing_dim: default crossing dimension for crosses given as name tuples.
        hashing_dim: bins for a bare "string_hashed" / "integer_hashed".
        num_discretization_bins: bins for a bare "float_discretized".
        profile: also sketch every numeric feature's distribution (20 quantiles, 1% rank
            error) for `kdp-beam report`'s histograms; costs ~8 ms of CPU per 100k
            values per feature.
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
        if not features:
            raise SpecError("features must declare at least one feature")
        if output_mode not in ("concat", "dict"):
            raise SpecError(f"output_mode must be 'concat' or 'dict', got {output_mode!r}")
        self.output_mode = output_mode
        self.crossing_dim = crossing_dim
        self.hashing_dim = hashing_dim
        self.num_discretization_bins = num_discretization_bins
        if not isinstance(profile, bool):
            raise SpecError(f"profile must be true or false, got {profile!r}")
        self.profile = profile
        self.features = {}
        for name, declaration in features.items():
            if not isinstance(name, str) or not name:
                raise SpecError(f"feature names must be non-empty strings, got {name!r}")
            try:
                self.features[name] = self._standardize(declaration)
            except SpecError as e:
                raise SpecError(f"feature {name!r}: {e}") from None
        self.crosses = [self._standardize_cross(c) for c in crosses or []]

    def _standardize(self, declaration):
        if isinstance(declaration, Feature):
            return declaration
        if isinstance(declaration, str):
            if declaration == "float_discretized":
                return Feature(declaration, num_bins=self.num_discretization_bins)
            if declaration in ("string_hashed", "integer_hashed"):
                return Feature(declaration, num_bins=self.hashing_dim)
            return Feature(declaration)
        if isinstance(declaration, dict) and "type" in declaration:
            options = dict(declaration)
            return Feature(options.pop("type"), **options)
        raise SpecError(
            f"expected a type string or a dict with a 'type' key, got {declaration!r}"
        )

    def _standardize_cross(self, cross):
        if isinstance(cross, dict):
            cross = Cross(**cross)
        elif not isinstance(cross, Cross):
            cross = Cross(cross, crossing_dim=self.crossing_dim)
        unknown = [n for n in cross.feature_names if n not in self.features]
        if unknown:
            raise SpecError(f"cross {cross.feature_names}: unknown feature(s) {unknown}")
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
        if not isinstance(obj, dict) or "features" not in obj:
            raise SpecError('a feature spec is a JSON object with a "features" key')
        obj = {k: v for k, v in obj.items() if k != "notes"}  # people's notes (kdp-beam infer)
        known = {
            "features",
            "crosses",
            "output_mode",
            "crossing_dim",
            "hashing_dim",
            "num_discretization_bins",
            "profile",
        }
        unknown = sorted(set(obj) - known)
        if unknown:
            raise SpecError(f"unknown top-level key(s) {unknown}; accepted: {sorted(known)}")
        return cls(**obj)

    @classmethod
    def from_json_text(cls, text, source="features file"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(f"{source} is not valid JSON: {e}") from None
        try:
            return cls.from_json(obj)
        except SpecError as e:
            raise SpecError(f"{source}: {e}") from None

    def __eq__(self, other):
        return isinstance(other, FeatureSpec) and self.to_json() == other.to_json()

    def __repr__(self):
        return f"FeatureSpec({self.to_json()!r})"


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
