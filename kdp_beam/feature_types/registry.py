"""The registry of feature types: built-ins and plug-ins alike, by name."""

import keyword

from kdp_beam.errors import SpecError

_TYPES = {}
_LISTENERS = []
# kdp_beam < 0.3 declared a plug-in as {"type": "custom", "statistic": NAME} (kdp_beam.spec).
_RESERVED = ("custom",)


def register_type(cls):
    """Class decorator: makes a FeatureType subclass declarable as ``"type": cls.name``
    (in the features JSON, kdp_beam.spec and FeatureSpace).

    Registering the same class again (re-importing or reloading its module) replaces it.
    Raises SpecError, naming the class, when it is no FeatureType or defines no
    column_kind, or when its name is not an identifier (it names the constructors
    ``kdp_beam.spec.NAME(...)`` and ``FeatureSpace.NAME(...)``), is reserved, is taken by
    another type (a plug-in cannot replace a built-in type: bundles declaring that type
    would load as the plug-in), or names something kdp_beam.spec or FeatureSpace already
    has (their listeners refuse it).
    """
    from kdp_beam.feature_types.base import FeatureType

    if not (isinstance(cls, type) and issubclass(cls, FeatureType)):
        raise SpecError(f"{cls!r:.80}: a feature type is a subclass of kdp_beam.feature_types.FeatureType")
    where = _where(cls)
    name = cls.name
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
        raise SpecError(
            f"{where}: a feature type's name must be an identifier, not a Python keyword nor "
            f"starting with '_' (it names its constructors), got {name!r}"
        )
    if name in _RESERVED:
        raise SpecError(f"{where}: the name {name!r} is reserved (kdp_beam 0.2's plug-in declaration); rename the type")
    taken = _TYPES.get(name)
    if taken is not None and _where(type(taken)) != where:
        raise SpecError(f"{where}: the feature type name {name!r} is taken by {_where(type(taken))}; rename the type")
    if cls.column_kind is FeatureType.column_kind:
        raise SpecError(f"{where}: feature type {name!r} must define column_kind(options) (\"float\", \"integer\" or \"string\")")
    instance = cls()
    _TYPES[name] = instance
    try:
        for listener in _LISTENERS:
            listener(instance)
    except SpecError:
        if taken is None:
            del _TYPES[name]
        else:
            _TYPES[name] = taken
        raise
    return cls


def _where(cls):
    """The class's qualified name: the same for the class of a re-imported module."""
    return f"{cls.__module__}.{cls.__qualname__}"


def feature_type(name):
    """The registered type called `name`; SpecError saying what is registered, and how a
    plug-in gets registered, when there is none."""
    found = _TYPES.get(name) if isinstance(name, str) else None
    if found is None:
        raise SpecError(
            f"unknown feature type {name!r:.80}; expected one of {sorted(_TYPES)} (a plug-in "
            "type is registered by importing its module: kdp-beam --plugin MODULE)"
        )
    return found


def registered_types():
    """Every registered type, in registration order (built-ins first)."""
    return list(_TYPES.values())


def on_register(listener):
    """Calls `listener(type)` for every type registered so far and from now on (how
    FeatureSpace grows a constructor per type). A listener raises SpecError to refuse a
    type: register_type then leaves it unregistered."""
    for name, instance in list(_TYPES.items()):
        try:
            listener(instance)
        except SpecError:
            del _TYPES[name]  # registered before the listener was: refused now
            raise
    _LISTENERS.append(listener)
