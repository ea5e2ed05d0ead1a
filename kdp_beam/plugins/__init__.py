"""Custom statistics: your own accumulator in the same single pass, and the Keras layer
built from its result.

A plug-in is a class with the analyzer verbs every kdp_beam statistic has, plus the layer:

    from kdp_beam.plugins import Statistic, register_statistic

    @register_statistic("max_abs")
    class MaxAbs(Statistic):
        column_kind = "float"                      # read as float64 ("integer", "string")

        def create_accumulator(self):              # the state of no data
            return 0.0
        def add_batch(self, acc, column):          # a pyarrow column (nulls = missing)
            values = column.drop_null().to_numpy()
            return max(acc, float(abs(values).max())) if len(values) else acc
        def merge_accumulators(self, accs):        # associative and commutative
            return max(accs)
        def finalize(self, acc):                   # JSON-able statistics, into the bundle
            return {"max_abs": acc}
        def to_state(self, acc):                   # JSON-able, for kdp-beam merge
            return acc
        def from_state(self, state):
            return state
        def build_layer(self, statistics, name):   # the feature's Keras preprocessor
            import keras
            return keras.layers.Rescaling(1 / (statistics["max_abs"] or 1), name=name)

Declared in the features JSON as
``{"type": "custom", "statistic": "max_abs", "options": {...}}`` (options are passed to the
class's constructor). The module that registers it must be imported wherever the
declaration is used: `kdp-beam analyze --plugin my.module`, and in training code before
``FeatureSpace.from_artifacts``. Beam ships the instance to workers with the pipeline, so
it runs inside the same pass on any runner. Loading a bundle never imports anything named
in it: an unregistered statistic is an error saying which module to import.

kdp_beam.plugins.robust_scaler is a complete example (median and interquartile range).
"""

import importlib

from kdp_beam.errors import SpecError

_REGISTRY = {}


class Statistic:
    """Base class of plug-ins (duck typing works too); ``self.options`` holds the
    declaration's options."""

    column_kind = "float"

    def __init__(self, **options):
        self.options = options


def register_statistic(name):
    """Class decorator: makes the statistic usable as ``"statistic": name``."""

    def register(cls):
        _REGISTRY[name] = cls
        return cls

    return register


def statistic_class(name):
    if name not in _REGISTRY:
        raise SpecError(
            f"custom statistic {name!r} is not registered; import the module that registers "
            f"it first (kdp-beam --plugin MODULE). Registered: {sorted(_REGISTRY)}"
        )
    return _REGISTRY[name]


def create_statistic(name, options):
    return statistic_class(name)(**(options or {}))


def import_plugins(modules):
    """Imports plug-in modules (the CLI's --plugin), which register their statistics.

    Raises SpecError naming the module when it cannot be found; other errors of the
    module's own code propagate as they are.
    """
    for module in modules or ():
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            raise SpecError(
                f"cannot import the plug-in module {module!r} ({e}); check its name and that "
                "it is installed or on PYTHONPATH"
            ) from None
