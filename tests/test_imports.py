"""The seams: analysis never imports TensorFlow; the builder never imports Beam to load."""

import subprocess
import sys


def imported_after(code):
    script = f"import sys\n{code}\nprint(sorted(m for m in ('tensorflow', 'keras', 'apache_beam') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def test_analysis_imports_no_tensorflow():
    code = (
        "import kdp_beam, kdp_beam.job, kdp_beam.cli, kdp_beam.io, kdp_beam.beam.analyze, "
        "kdp_beam.beam.keyed_vocabulary, kdp_beam.analyzers, kdp_beam.bundle.writer, "
        "kdp_beam.tools.merge, kdp_beam.tools.infer, kdp_beam.tools.report, kdp_beam.plugins.robust_scaler"
    )
    assert imported_after(code) == "['apache_beam']"


def test_loading_bundles_and_building_models_imports_no_beam():
    code = "from kdp_beam import FeatureSpace, build_preprocessor, load_bundle, FeatureSpec"
    assert imported_after(code) == "['keras', 'tensorflow']"


def test_feature_types_and_declarations_import_neither():
    """A type's unit is read by the analysis, the loader and the builder alike: it imports
    Keras and the analyzers inside its methods only."""
    code = "import kdp_beam.spec, kdp_beam.feature_types, kdp_beam.plugins.robust_scaler, kdp_beam.bundle.checks"
    assert imported_after(code) == "[]"
