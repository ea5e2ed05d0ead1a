"""kdp_beam: one-pass feature statistics on Apache Beam, Keras 3 preprocessing from them.

Names are imported on first use, so that ``import kdp_beam`` stays light: loading a saved
preprocessing model needs neither Beam nor the analysis code, and analysis workers never
import TensorFlow.
"""

import importlib

from kdp_beam.version import __version__

_EXPORTS = {
    # analysis (Beam, no TensorFlow)
    "ReadCsv": "kdp_beam.io",
    "ReadParquet": "kdp_beam.io",
    "ReadInput": "kdp_beam.io",
    "ReadTFRecord": "kdp_beam.io",
    "ReadJsonLines": "kdp_beam.io",
    "AnalyzeFeatures": "kdp_beam.beam.analyze",
    "WriteArtifacts": "kdp_beam.bundle.writer",
    "run_analysis": "kdp_beam.job",
    "merge_bundles": "kdp_beam.tools.merge",
    "infer_features": "kdp_beam.tools.infer",
    "validate": "kdp_beam.tools.validate",
    # transform (Beam; TensorFlow on the workers)
    "TransformFeatures": "kdp_beam.transform.beam",
    "run_transform": "kdp_beam.transform.job",
    # reading a transformed dataset (TensorFlow, no Beam pipeline)
    "transformed_dataset": "kdp_beam.transform.dataset",
    # declarations and bundles (plain Python)
    "FeatureSpec": "kdp_beam.spec",
    "load_bundle": "kdp_beam.bundle.loader",
    # Keras (TensorFlow, no Beam)
    "FeatureSpace": "kdp_beam.builder",
    "build_preprocessor": "kdp_beam.builder",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'kdp_beam' has no attribute {name!r}")
