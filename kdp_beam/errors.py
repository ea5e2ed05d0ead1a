"""Errors kdp_beam raises on purpose: each says what was wrong, where, and what to do."""


class KdpBeamError(Exception):
    """Base class of every error kdp_beam raises on purpose."""


class SpecError(KdpBeamError, ValueError):
    """A feature declaration is invalid (names the feature and the argument)."""


class InputDataError(KdpBeamError, ValueError):
    """Input data does not match the declarations (names file, row and column)."""


class BundleError(KdpBeamError, ValueError):
    """An artifact bundle is missing, damaged, or from an unsupported version."""
