"""The kdp_beam release and the artifact bundle format it writes."""

__version__ = "0.3.0"

# Bump when a bundle written by this release cannot be read by an older one.
BUNDLE_FORMAT_VERSION = 2  # 2: text and date statistics, document counts
