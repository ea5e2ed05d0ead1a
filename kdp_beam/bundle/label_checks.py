"""The loader's check of label statistics: the top-level "label" of statistics.json and the
per-token label statistics of label-aware features (docs/bundle-format.md), by the rules
the analysis keeps (kdp_beam.analyzers.labels, kdp_beam.analyzers.label_tokens). As every
check of kdp_beam.bundle.checks, a failure names the file, the feature (or the label) and
the key."""

import math

from kdp_beam.bundle.checks import _DAMAGED, _SLACK, Statistics, _is_count, _is_finite
from kdp_beam.errors import BundleError


def check_label(label, spec, path_of, row_count):
    """statistics.json's "label": there exactly when the spec has a label; of its column,
    its declared type (or one inferred), every row counted, some labelled; classes distinct
    texts in the class order with their counts adding up to the labelled rows, a binary
    label's positive class the second; the prior the classes' rates (the mean of a
    regression label, whose variance is >= 0)."""
    from kdp_beam.analyzers.labels import MAX_CLASSES, class_order
    from kdp_beam.feature_types.label_aware import LABEL_TYPES

    where = path_of("statistics.json")
    if spec.label is None:
        if label is not None:
            raise BundleError(f'{where}: "label" is given, but the declarations have no label; {_DAMAGED}')
        return
    if not isinstance(label, dict):
        raise BundleError(
            f'{where}: the declarations have the label {spec.label!r}, but "label" is {label!r:.80}, '
            f"not its statistics; {_DAMAGED}"
        )
    stats = Statistics(spec.label, label, path_of, row_count=row_count, what="label")
    if stats.required("column") != spec.label:
        stats.fail("column", f"is {stats.get('column')!r:.80}, not the declared label {spec.label!r}")
    label_type = stats.required("label_type")
    if label_type not in LABEL_TYPES or spec.label_type not in (None, label_type):
        stats.fail("label_type", f"is {label_type!r:.80}, but it is declared {spec.label_type!r}")
    if stats.required("inferred") is not (spec.label_type is None):
        stats.fail("inferred", f"is {stats.get('inferred')!r:.80}, but label_type is declared {spec.label_type!r}")
    count = stats.count("count")
    if count != row_count:
        stats.fail("count", f"is {count}, but the bundle has {row_count} rows (every row counts)")
    labelled = count - stats.count("null_count", count, "count")
    if not labelled:
        stats.fail("null_count", "is every row, but label statistics come from labelled rows")
    prior = _vector(stats, "prior", None, False)
    if label_type == "regression":
        mean = stats.number("mean", nullable=False)
        if stats.number("variance", nullable=False) < 0:
            stats.fail("variance", f"{stats.get('variance')!r} is negative")
        if prior != [mean]:
            stats.fail("prior", f"is {prior!r:.80}, not [mean] ([{mean!r}])")
        return
    classes = stats.required("classes")
    if (
        not isinstance(classes, list) or not 1 <= len(classes) <= MAX_CLASSES
        or not all(type(c) is str for c in classes) or len(set(classes)) != len(classes)
    ):
        stats.fail("classes", f"{classes!r:.80} are not 1 to {MAX_CLASSES:,} distinct texts")
    if class_order(classes) != classes:
        stats.fail("classes", f"{classes!r:.80} are not in order (numeric when all are integers, else by text)")
    counts = _vector(stats, "class_counts", len(classes), True)
    if sum(counts) != labelled:
        stats.fail("class_counts", f"add up to {sum(counts)}, not the {labelled} labelled rows (count - null_count)")
    if label_type == "binary":
        if len(classes) != 2 or stats.required("positive_class") != classes[1]:
            stats.fail("positive_class", f"is {stats.get('positive_class')!r:.80}, not the second of 2 classes {classes!r:.80}")
        expected = [counts[1] / labelled]
    else:
        expected = [n / labelled for n in counts]
    if len(prior) != len(expected) or not all(math.isclose(p, e, rel_tol=_SLACK, abs_tol=1e-15) for p, e in zip(prior, expected)):
        stats.fail("prior", f"is {prior!r:.80}, not the classes' rates {expected!r:.80}")


def _vector(stats, key, width, counts):
    """A required list of `width` (None: any) finite numbers, integers >= 0 when `counts`."""
    values = stats.required(key)
    valid = _is_count if counts else _is_finite
    if not isinstance(values, list) or (width is not None and len(values) != width) or not all(valid(v) for v in values):
        what = "integers >= 0" if counts else "finite numbers"
        stats.fail(key, f"is {values!r:.80}, not a list of {width if width is not None else 'some'} {what}")
    return values


def _rows(stats, key, length, check_row):
    """A required list of `length` values, each passing `check_row(value)`."""
    values = stats.required(key)
    if not isinstance(values, list) or len(values) != length:
        stats.fail(key, f"has {len(values) if isinstance(values, list) else values!r:.80} entries, not one per token ({length})")
    for i, value in enumerate(values):
        problem = check_row(i, value)
        if problem:
            stats.fail(key, f"of token {i} ({value!r:.80}): {problem}")
    return values


def _counts_within(value, width, at_most):
    """Why `value` is not a list of `width` counts each at most `at_most`, or None."""
    if not isinstance(value, list) or len(value) != width or not all(_is_count(v) and v <= at_most for v in value):
        return f"not {width} integers from 0 to {at_most}"
    return None


def check_label_vocabulary(stats, counts, options):
    """A label-aware vocabulary's label statistics (after check_vocabulary and, for a
    list, check_values_per_row): the label's type, columns and prior; label_rows at most
    the labelled rows holding a value; label_totals [K]; per token n_c at most the rows
    holding it (and label_rows; one value per row: adding up to at most label_rows), its
    sums [K] (classes: counts, at most n_c, multiclass adding up to it), its MI score (>= 0,
    at most the label's entropy bound log(classes), the vocabulary by descending score, ties
    by count), and per fold counts and sums adding up to the token's."""
    from kdp_beam.analyzers.labels import Label
    from kdp_beam.feature_types.multivalent import is_multivalent

    label = Label(stats.label)  # checked first (check_label): the spec's label-aware features have it
    width, classes = label.width, label.type != "regression"
    for key, value in (("label_type", label.type), ("label_columns", label.columns), ("label_prior", label.prior)):
        if stats.required(key) != value:
            stats.fail(key, f"is {stats.get(key)!r:.80}, not the label's {value!r:.80}")
    multivalent = is_multivalent(options)
    if multivalent:
        present, holding = stats.row_count - stats.get("empty_count"), stats.get("vocabulary_document_counts")
    else:
        present = stats.get("count") - (stats.get("null_count") if options["missing_token"] is None else 0)
        holding = counts
    labelled = stats.label["count"] - stats.label["null_count"]
    rows = stats.count("label_rows", min(present, labelled), "the labelled rows holding a value")
    totals = _vector(stats, "label_totals", width, classes)
    if classes and (sum(totals) > rows or (label.type == "multiclass" and sum(totals) != rows)):
        stats.fail("label_totals", f"add up to {sum(totals)}, impossible for label_rows {rows}")
    tokens = len(counts)
    n = _rows(
        stats, "vocabulary_label_counts", tokens,
        lambda i, v: None if _is_count(v) and v <= min(holding[i], rows) else f"not a count from 0 to {min(holding[i], rows)}",
    )
    if not multivalent and sum(n) > rows:
        stats.fail("vocabulary_label_counts", f"add up to {sum(n)}, more than label_rows {rows}")
    sums = _rows(stats, "vocabulary_label_sums", tokens, lambda i, v: _sums_problem(v, width, classes, label.type, n[i]))
    if classes and not multivalent:
        for k in range(width):
            if sum(s[k] for s in sums) > totals[k]:
                stats.fail("vocabulary_label_sums", f"of label column {k} add up to more than label_totals {totals[k]}")
    if options["rank_by"] == "mutual_information":
        _check_scores(stats, counts, len(label.classes))
    folds = options["folds"]
    if folds is not None:
        _rows(
            stats, "vocabulary_fold_label_counts", tokens,
            lambda i, v: _counts_within(v, folds, n[i]) or (None if sum(v) == n[i] else f"add up to {sum(v)}, not n_c {n[i]}"),
        )
        _rows(
            stats, "vocabulary_fold_label_sums", tokens,
            lambda i, v: _fold_sums_problem(v, folds, width, classes, sums[i]),
        )


def _sums_problem(value, width, classes, label_type, n):
    if not classes:
        finite = isinstance(value, list) and len(value) == width and all(_is_finite(v) for v in value)
        return None if finite else f"not {width} finite numbers"
    problem = _counts_within(value, width, n)
    if problem is None and label_type == "multiclass" and sum(value) != n:
        problem = f"add up to {sum(value)}, not n_c {n}"
    return problem


def _fold_sums_problem(value, folds, width, classes, total):
    valid = _is_count if classes else _is_finite
    if not isinstance(value, list) or len(value) != folds or not all(
        isinstance(v, list) and len(v) == width and all(valid(x) for x in v) for v in value
    ):
        return f"not {folds} lists of {width} {'counts' if classes else 'finite numbers'}"
    for k in range(width):
        added = sum(v[k] for v in value)
        if added != total[k] and (classes or not math.isclose(added, total[k], rel_tol=1e-9, abs_tol=1e-9)):
            return f"add up to {added!r} in label column {k}, not the token's {total[k]!r}"
    return None


def _check_scores(stats, counts, classes):
    """MI scores: finite, 0 to log(classes) nats (the label's largest entropy), descending,
    equal scores by descending count."""
    bound = math.log(classes) * (1 + _SLACK) + 1e-12
    scores = _rows(
        stats, "vocabulary_scores", len(counts),
        lambda i, v: None if _is_finite(v) and 0 <= v <= bound else f"not an MI from 0 to log({classes})",
    )
    for i in range(len(scores) - 1):
        if scores[i] < scores[i + 1] or (scores[i] == scores[i + 1] and counts[i] < counts[i + 1]):
            stats.fail("vocabulary_scores", f"are not by rank at token {i + 1}: descending, equal scores by descending count")
