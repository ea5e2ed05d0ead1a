"""The kdp_beam release and the artifact bundle format it writes."""

__version__ = "0.4.0"

# Bump when a bundle written by this release cannot be read by an older one.
BUNDLE_FORMAT_VERSION = 3  # 2: text and date statistics, document counts; 3: a label


def format_version(spec_json):
    """The format version a bundle of these declarations is written as: the oldest that
    reads it, so that a kdp_beam that cannot read a bundle says to upgrade (a label's
    statistics need 3; every other bundle stays 2)."""
    return 3 if spec_json.get("label") is not None else 2
