"""Keras 3 preprocessing from an artifact bundle (imports TensorFlow; never Beam at import).

``FeatureSpace`` is keras.utils.FeatureSpace with one-pass statistics and
``from_artifacts``; ``build_preprocessor`` returns a ready keras.Model.
"""

from kdp_beam.builder.feature_space import FeatureSpace
from kdp_beam.builder.preprocessor import build_preprocessor

__all__ = ["FeatureSpace", "build_preprocessor"]
