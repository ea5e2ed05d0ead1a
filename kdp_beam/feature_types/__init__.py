"""Feature types: one unit per type (or family of types), each holding everything
specific to it — options and their checks, the column it reads, the analyzers it needs,
the check of its statistics, its Keras layers and their state, its FeatureSpace
conversion, its summary line, its report section, what infer needs to propose it
(kdp_beam.feature_types.base.FeatureType). Plug-ins subclass the same class.
"""

from kdp_beam.feature_types.base import FeatureType
from kdp_beam.feature_types.options import REQUIRED
from kdp_beam.feature_types.registry import feature_type, on_register, register_type, registered_types

# The built-in types register themselves, in this order (infer's and the docs').
from kdp_beam.feature_types import numeric, categorical, hashed, passthrough, text, date, distribution  # noqa: E402,F401

__all__ = ["REQUIRED", "FeatureType", "feature_type", "on_register", "register_type", "registered_types"]
