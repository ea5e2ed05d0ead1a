"""The registry of feature types: built-ins and plug-ins alike, by name."""

from kdp_beam.errors import SpecError

_TYPES = {}
_LISTENERS = []


def register_type(cls):
    """Class decorator: makes a FeatureType subclass declarable as ``"type": cls.name``
    (in the features JSON, kdp_beam.spec and FeatureSpace). Registering a name again
    replaces it (re-importing a plug-in module)."""
    if not isinstance(cls.name, str) or not cls.name.isidentifier():
        raise SpecError(f"a feature type's name must be an identifier, got {cls.name!r}")
    instance = cls()
    _TYPES[cls.name] = instance
    for listener in _LISTENERS:
        listener(instance)
    return cls


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
    FeatureSpace grows a constructor per type)."""
    _LISTENERS.append(listener)
    for instance in list(_TYPES.values()):
        listener(instance)
