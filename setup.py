"""kdp_beam: one-pass feature statistics on Apache Beam, Keras 3 preprocessing from them."""

import pathlib
import re

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent
VERSION = re.search(
    r'__version__ = "([^"]+)"', (HERE / "kdp_beam" / "version.py").read_text()
).group(1)

setup(
    name="kdp_beam",
    version=VERSION,
    description=__doc__,
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["kdp_beam", "kdp_beam.*"]),
    python_requires=">=3.10,<3.13",
    # Ranges that resolve together on Python 3.11 (requirements-lock.txt pins one solution).
    install_requires=[
        "apache-beam>=2.77,<2.78",
        "tensorflow>=2.21,<2.22",
        "tfx-bsl>=1.21,<1.22",
        # tensorflow 2.21 needs keras>=3.12; keras 3.10 also truncates the floats a
        # Discretization bins inside tf.data and SavedModels (0.7 -> 0 -> bin 0).
        "keras>=3.12,<4",
        "numpy>=1.26",
        "pyarrow>=14",
        "rich>=13",  # the CLI's progress bar
        "google-crc32c>=1.5",  # TFRecord framing of the transform's output (Beam's GCS IO uses it too)
    ],
    extras_require={
        "test": ["pytest>=8", "hypothesis>=6", "pandas>=2"],
        # The benchmark's peers and plotting (benchmarks/README.md); not the core install.
        "bench": [
            "kdp==1.13.0",
            "tensorflow-transform==1.21.0",
            "pandas>=2.2,<3",  # kdp 1.13 needs pandas 2
            "psutil>=5",
            "matplotlib>=3.8",
            "py-spy>=0.3",
        ],
    },
    entry_points={"console_scripts": ["kdp-beam=kdp_beam.cli:run"]},
)
