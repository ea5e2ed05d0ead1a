"""Feature declarations: keras.utils.FeatureSpace's vocabulary as plain, JSON-able data.

A spec says, per input column, which preprocessing the model applies and so which
statistics the analysis must compute. It imports no TensorFlow and no Beam: the analysis,
the bundle and the builder all read the same objects.

JSON form (the `--features` file; docs/feature-types.md lists the types)::

    {"features": {"age": TYPE, "city": {"type": TYPE, OPTION: VALUE, ...}},
     "crosses": [{"feature_names": ["age_bucket", "city"], "crossing_dim": 64}],
     "output_mode": "concat"}

A bare type string takes every default, as in FeatureSpace; a type's bare_defaults take
sizes from the spec (bins from `num_discretization_bins` or `hashing_dim`).
"""

import json

from kdp_beam.errors import SpecError
from kdp_beam.feature_types import feature_type, on_register, registered_types
from kdp_beam.feature_types.label_aware import check_label, label_read_kind
from kdp_beam.feature_types.multivalent import is_multivalent
from kdp_beam.feature_types.options import ONE_HOT_OR_INT, integer, is_int, one_of, shown, width


class Feature:
    """One feature's declaration: a registered type (kdp_beam.feature_types) and its
    options, every one present once declared.

    Raises SpecError naming the type and the argument when an option is unknown or
    invalid (each type bounds its sizes and numbers: kdp_beam.feature_types.options).
    ``{"type": "custom", "statistic": NAME, "options": {...}}``, the plug-in declaration
    of kdp_beam < 0.3, is read as ``Feature(NAME, **options)``.
    """

    def __init__(self, type, **options):  # noqa: A002 - FeatureSpace's word
        if type == "custom" and "statistic" in options:
            type, options = _plugin_of_old(options)
        kind = feature_type(type)
        try:
            self.options = kind.declare(options)
        except SpecError as e:
            raise SpecError(f"{type}: {e}") from None
        self.type = type
        self.kind = kind

    @property
    def column_kind(self):
        """What the values are: "float" (float64), "integer" (int64) or "string"."""
        return self.kind.column_kind(self.options)

    @property
    def read_kind(self):
        """How readers read the column (kdp_beam.columns)."""
        return self.kind.read_kind(self.options)

    @property
    def crossable(self):
        """Whether a cross can take it: its preprocessor gives one integer or string."""
        return self.kind.crossable(self.options)

    def to_json(self):
        return {"type": self.type, **self.options}

    def __eq__(self, other):
        return isinstance(other, Feature) and self.to_json() == other.to_json()

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"Feature({self.type!r}{', ' if args else ''}{args})"


def _plugin_of_old(options):
    options = dict(options)
    statistic, given = options.pop("statistic"), options.pop("options", None)
    if options:
        raise SpecError(f"custom: unknown argument(s) {sorted(options)}; accepted: ['options', 'statistic']")
    if given is not None and not isinstance(given, dict):
        raise SpecError(f"custom: options must be an object, got {shown(given)}")
    return statistic, dict(given or {})


class Cross:
    """A hashed cross of two or more categorical features (keras HashedCrossing)."""

    def __init__(self, feature_names, crossing_dim, output_mode="one_hot"):
        if not isinstance(feature_names, (list, tuple)) or len(feature_names) < 2 or not all(
            isinstance(n, str) and n for n in feature_names
        ):
            raise SpecError(
                f"feature_names must be a list of two or more feature names, got {shown(feature_names)}"
            )
        names = tuple(feature_names)
        try:
            one_of(output_mode, "output_mode", ONE_HOT_OR_INT)
            crossing_dim = integer(crossing_dim, "crossing_dim", 1, *width("crossing_dim", output_mode))
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


def declared(declaration, sizes):
    """The Feature of a declaration: a Feature as it is, a type's bare name (its
    bare_defaults taken from the attributes of `sizes`, a FeatureSpec or a FeatureSpace),
    or a JSON object with a "type". Raises SpecError."""
    if isinstance(declaration, Feature):
        return declaration
    if isinstance(declaration, str):
        bare = feature_type(declaration).bare_defaults
        try:
            return Feature(declaration, **{option: getattr(sizes, attribute) for option, attribute in bare.items()})
        except SpecError as e:
            raise SpecError(f"{e} (a bare {declaration!r} takes {', '.join(bare.values())})") from None
    if isinstance(declaration, dict) and "type" in declaration:
        options = dict(declaration)
        type_ = options.pop("type")
        if not all(isinstance(key, str) for key in options):
            raise SpecError(f"option names must be strings, got {shown(list(options))}")
        return Feature(type_, **options)
    raise SpecError(
        f"expected a type string or an object with a \"type\" key, got {shown(declaration)}"
    )


_CROSS_KEYS = ("feature_names", "crossing_dim", "output_mode")
_TOP_LEVEL_KEYS = (
    "features",
    "crosses",
    "output_mode",
    "crossing_dim",
    "hashing_dim",
    "num_discretization_bins",
    "profile",
    "label",
    "label_type",
    "fold_key",
)


class FeatureSpec:
    """Every feature of a dataset, with FeatureSpace's top-level options.

    Args:
        features: dict name -> Feature, type string, or JSON dict with a "type".
        crosses: list of Cross, JSON dicts (crossing_dim defaults to the top-level one),
            or lists of feature names.
        output_mode: "concat" or "dict", as in FeatureSpace.
        crossing_dim: default crossing dimension for crosses given as name lists.
        hashing_dim, num_discretization_bins: sizes for types declared by their bare
            name (FeatureType.bare_defaults: hashed and discretized bins).
        profile: sketch every numeric feature's distribution (a quantile sketch of 1%
            rank error, 20 quantiles in the statistics) for `kdp-beam report`'s histograms
            and `kdp-beam validate`'s divergences; on by default (each large batch reaches
            the sketch as 400 weighted points of its sorted values: ~1.7 ms of CPU per
            100k values per feature, measured on 1M rows x 10 numeric features).
        label: the column of the label that label-aware features use (output_mode
            "target", rank_by "mutual_information", folds: docs/label-aware.md); read
            beside the features, never an input of the model.
        label_type: "binary", "multiclass" or "regression"; None infers it from the data.
        fold_key: the column of a row key whose stable hash assigns rows to folds.
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
        profile=True,
        label=None,
        label_type=None,
        fold_key=None,
    ):
        if not isinstance(features, dict):
            raise SpecError(
                'features must be an object mapping each column name to its declaration, '
                f'e.g. {{"age": {{"type": TYPE, ...options}}}}; got {type(features).__name__}'
            )
        if not features:
            raise SpecError("features must declare at least one feature")
        one_of(output_mode, "output_mode", ("concat", "dict"))
        for arg, value in (("crossing_dim", crossing_dim), ("hashing_dim", hashing_dim),
                           ("num_discretization_bins", num_discretization_bins)):
            if value is not None and not (is_int(value) and value >= 1):
                raise SpecError(f"{arg} must be an integer >= 1 or null, got {shown(value)}")
        if not isinstance(profile, bool):
            raise SpecError(f"profile must be true or false, got {shown(profile)}")
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
                self.features[name] = declared(declaration, self)
            except SpecError as e:
                raise SpecError(f"feature {name!r}: {e}") from None
        if crosses is not None and not isinstance(crosses, (list, tuple)):
            raise SpecError(f"crosses must be a list of crosses, got {shown(crosses)}")
        self.crosses = []
        for i, cross in enumerate(crosses or []):
            try:
                self.crosses.append(self._standardize_cross(cross))
            except SpecError as e:
                raise SpecError(f"crosses[{i}]: {e}") from None
        self.label = label
        self.label_type = label_type
        self.fold_key = fold_key
        check_label(self)

    @property
    def label_kind(self):
        """How readers read the label column (kdp_beam.columns): "float" for a
        regression label, else "label" (a class's text); None without a label."""
        return None if self.label is None else label_read_kind(self.label_type)

    def _standardize_cross(self, cross):
        if isinstance(cross, dict):
            unknown = sorted(set(cross) - set(_CROSS_KEYS), key=str)
            if unknown or "feature_names" not in cross:
                raise SpecError(
                    f"a cross object takes the keys {list(_CROSS_KEYS)} (feature_names "
                    f"required), got {shown(sorted(cross, key=str))}"
                )
            cross = Cross(**{"crossing_dim": self.crossing_dim, **cross})
        elif not isinstance(cross, Cross):
            cross = Cross(cross, crossing_dim=self.crossing_dim)
        unknown = [n for n in cross.feature_names if n not in self.features]
        if unknown:
            raise SpecError(f"cross {list(cross.feature_names)}: unknown feature(s) {unknown}")
        uncrossable = [n for n in cross.feature_names if not self.features[n].crossable]
        lists = [n for n in uncrossable if is_multivalent(self.features[n].options)]
        if lists:
            raise SpecError(
                f"cross {list(cross.feature_names)}: {lists} multivalent: a cross takes one "
                "value per row of each feature (keras' HashedCrossing), and the cross of each "
                "pair of a list's values would grow with the product of the lengths; cross "
                "features of one value per row (docs/multivalent.md)"
            )
        if uncrossable:
            crossable = [t.name for t in registered_types() if t.crossable(t.options)]
            raise SpecError(
                f"cross {list(cross.feature_names)}: cannot cross {uncrossable} "
                f"({[self.features[n].to_json() for n in uncrossable]}); a cross takes features "
                f"whose preprocessor gives one integer or string per row: {crossable} (some "
                "only with some options)"
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
            # Only with a label: a spec without one keeps the JSON (and bundles) it had.
            **({"label": self.label, "label_type": self.label_type, "fold_key": self.fold_key} if self.label is not None else {}),
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


def cross(feature_names, crossing_dim, output_mode="one_hot"):
    return Cross(feature_names, crossing_dim, output_mode)


def __getattr__(name):
    """The constructors of every registered type, with its name and its options in order:
    ``kdp_beam.spec.TYPE(*args, **options)`` is ``Feature("TYPE", ...)``."""
    try:
        kind = feature_type(name)
    except SpecError:
        raise AttributeError(f"module 'kdp_beam.spec' has no attribute {name!r}") from None
    return _constructor(kind)


def _refuse_shadowed(kind):
    """A type's constructor kdp_beam.spec.NAME exists only where the module has no NAME of
    its own (module __getattr__): refuse a type named like one (SpecError)."""
    if kind.name in globals():
        raise SpecError(
            f"feature type {kind.name!r} ({type(kind).__module__}): kdp_beam.spec.{kind.name} "
            "is the module's own, so it could not construct the type; rename the type"
        )


def _constructor(kind):
    def construct(*args, **options):
        return Feature(kind.name, **bound_arguments(kind.name, list(kind.options), args, options))

    construct.__name__ = construct.__qualname__ = kind.name
    construct.__doc__ = kind.__doc__
    return construct


def bound_arguments(name, positional, args, kwargs):
    """{argument: value} of a constructor `name` called with `args` (in the order of
    `positional`) and `kwargs`; TypeError as Python's own for too many or repeated ones."""
    if len(args) > len(positional):
        raise TypeError(f"{name}() takes at most {len(positional)} positional arguments {tuple(positional)}")
    given = dict(zip(positional, args))
    twice = sorted(set(given) & set(kwargs))
    if twice:
        raise TypeError(f"{name}() got {twice} both by position and by name")
    return {**given, **kwargs}


on_register(_refuse_shadowed)
