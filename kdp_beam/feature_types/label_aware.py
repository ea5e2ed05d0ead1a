"""Label-aware categoricals: encodings and vocabularies that use the spec's label
(docs/label-aware.md), declared on the categorical types (kdp_beam.feature_types.categorical).

The options and their checks live here:

- ``output_mode: "target"``: the value's smoothed label mean, ``(s + m * prior) / (n + m)``
  for a value seen in n labelled rows with label sum s (binary: positives; multiclass: one
  column per class, s the class's rows; regression: the label's sum); unseen and missing
  values, and values in fewer than ``min_count`` labelled rows, encode as the prior.
- ``smoothing`` (m, default 10): how many labelled rows of a value weigh as much as the
  prior. One row of a rare value does not move its encoding from the prior to 0 or 1; at
  ten rows its own mean weighs half.
- ``min_count`` (default 1): values in fewer labelled rows encode as the prior.
- ``with_count``: also ``log1p`` of the value's count, one more column.
- ``rank_by``: which max_tokens tokens the vocabulary keeps, ``"frequency"`` (keras') or
  ``"mutual_information"`` with the label (classification labels).
- ``folds``: k-fold label statistics from the same pass, for out-of-fold encodings of
  the training rows (the fold of a row: a stable hash of the spec's ``fold_key`` column).

smoothing, min_count and with_count only shape the encoding (a model may choose them
differently from the bundle); rank_by and folds change the statistics.
"""

from kdp_beam.errors import SpecError
from kdp_beam.feature_types.options import boolean, integer, is_number, one_of, shown

OPTIONS = {"smoothing": 10.0, "min_count": 1, "with_count": False, "rank_by": "frequency", "folds": None}
ENCODING_OPTIONS = ("smoothing", "min_count", "with_count")
TARGET = "target"
RANK_BY = ("frequency", "mutual_information")
LABEL_TYPES = ("binary", "multiclass", "regression")
MAX_FOLDS = 100
MAX_SMOOTHING = 1e12
MAX_COUNT = 2**62


def is_target(options):
    return options.get("output_mode") == TARGET


def needs_label(options):
    """Whether the feature's statistics or encoding use the label."""
    return is_target(options) or options.get("rank_by") == "mutual_information" or options.get("folds") is not None


def validate(options):
    """Checks the label-aware options of a categorical (every one present); returns them."""
    smoothing = options["smoothing"]
    if not is_number(smoothing) or not 0 <= smoothing <= MAX_SMOOTHING:
        raise SpecError(f"smoothing must be a number from 0 to {MAX_SMOOTHING:g}, got {shown(smoothing)}")
    options["smoothing"] = float(smoothing)
    options["min_count"] = integer(options["min_count"], "min_count", 1, MAX_COUNT)
    boolean(options["with_count"], "with_count")
    one_of(options["rank_by"], "rank_by", RANK_BY)
    if options["folds"] is not None:
        options["folds"] = integer(options["folds"], "folds (null: none)", 2, MAX_FOLDS)
    if not is_target(options):
        given = [o for o in ENCODING_OPTIONS if options[o] != OPTIONS[o]]
        if given:
            raise SpecError(f"{given} apply to output_mode 'target': set it, or leave them out")
    if options["rank_by"] == "mutual_information":
        if options["max_tokens"] is None:
            raise SpecError("rank_by 'mutual_information' keeps the top max_tokens tokens; set max_tokens")
        if options["counting"] != "exact":
            raise SpecError("rank_by 'mutual_information' needs the exact counts: counting 'exact'")
    if needs_label(options) and options["counting"] != "exact":
        raise SpecError("label statistics are counted exactly: counting 'exact' with output_mode 'target' or folds")
    return options


def check_label(spec):
    """The spec's label declarations against its features (SpecError): a label-aware
    feature needs a label; the label (and the fold key) is not a feature."""
    aware = [name for name, f in spec.features.items() if needs_label(f.options)]
    if spec.label is None:
        if spec.label_type is not None or spec.fold_key is not None:
            raise SpecError("label_type and fold_key apply to a label: set \"label\" to the label's column")
        if aware:
            raise SpecError(
                f"feature(s) {aware} use the label (output_mode 'target', rank_by "
                "'mutual_information' or folds): set \"label\" to the label's column"
            )
        return
    for arg in ("label", "fold_key"):
        column = getattr(spec, arg)
        if column is not None and (not isinstance(column, str) or not column):
            raise SpecError(f"{arg} must be a column name (a non-empty string), got {shown(column)}")
        if column in spec.features:
            raise SpecError(
                f"{arg} {column!r} is also a declared feature: the label (and the fold key) is read "
                "beside the features, never an input of the model; leave it out of features"
            )
    if spec.fold_key is not None and spec.fold_key == spec.label:
        raise SpecError("fold_key must be another column than the label")
    one_of(spec.label_type, "label_type (null: inferred from the data)", (None, *LABEL_TYPES))
    folded = [name for name, f in spec.features.items() if f.options.get("folds") is not None]
    if folded and spec.fold_key is None:
        raise SpecError(
            f"feature(s) {folded} declare folds: set \"fold_key\" to the column of a row key (an id) "
            "whose stable hash assigns each row to its fold"
        )
    if spec.label_type == "regression":
        ranked = [name for name, f in spec.features.items() if f.options.get("rank_by") == "mutual_information"]
        if ranked:
            raise SpecError(
                f"feature(s) {ranked}: rank_by 'mutual_information' is computed from class counts; a "
                "regression label has none: rank by frequency"
            )


def label_read_kind(label_type):
    """How readers read the label column: a regression label as a number, any other as
    its class's text (kdp_beam.columns' "label" kind)."""
    return "float" if label_type == "regression" else "label"
