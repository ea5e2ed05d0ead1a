"""Plug-in feature types: your own feature, as capable as a built-in one.

A plug-in is a kdp_beam.feature_types.FeatureType subclass, registered — the interface
every built-in type implements (kdp_beam/feature_types/): its options and their checks, the
column it reads, the analyzers it needs in the same single pass, the check of its
statistics when a bundle is loaded, its Keras layer and how the statistics set it, its
summary line and report section. Declared in the features JSON by its name, with its
options beside the type: ``{"type": "robust_scaler", "epsilon": 0.001}``; in Python
``kdp_beam.spec.robust_scaler(epsilon=...)`` and ``FeatureSpace.robust_scaler(...)``.

The module that registers it must be imported wherever the declaration is used:
``kdp-beam analyze --plugin my.module``, and in training code before
``FeatureSpace.from_artifacts``. Beam ships the analyzers to workers with the pipeline, so
they run inside the same pass on any runner. Loading a bundle never imports anything named
in it: an unregistered type is an error saying which module to import.

kdp_beam.plugins.robust_scaler is a complete example (median and interquartile range).
Declarations of kdp_beam < 0.3, ``{"type": "custom", "statistic": NAME, "options": {...}}``,
still load: they mean ``{"type": NAME, ...options}``.
"""

import importlib

from kdp_beam.errors import SpecError
from kdp_beam.feature_types import FeatureType, register_type

__all__ = ["FeatureType", "import_plugins", "register_type"]


def import_plugins(modules):
    """Imports plug-in modules (the CLI's --plugin), which register their types.

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
