"""The spec's label: its own statistics, and what label-aware features need of it.

The label column (``"label"`` in the spec; docs/label-aware.md) is read beside the
features, as a class's text or, declared ``"label_type": "regression"``, as a number
(kdp_beam.columns' "label" and "float" kinds), and is never an input of the model. In the
same pass as the features:

- ``LabelAnalyzer``: the label's own statistics (the top-level ``"label"`` of
  statistics.json), bounded state in the global combine: rows, missing labels, and the rows
  of each class (at most MAX_CLASSES) or a regression label's moments. Its type is decided
  at finalize (``label_type``, below), with the class order and the positive class.
- ``LabelTotalsAnalyzer``: per label-aware feature, the labelled rows where it is present
  and their label sums (``label_rows``, ``label_totals``), the N of mutual information.
- ``Label``: finalized label statistics read back, turning class texts into the K label
  columns: binary 1 (the positive class), multiclass one per class, regression 1 (the sum).

The per-token label statistics are kdp_beam.analyzers.label_tokens'.

The label type: a declared ``label_type`` wins, and is checked (a binary label of 3 classes
is refused). Omitted, it is inferred from the whole data as scikit-learn's
``type_of_target`` does: every label a number and some not whole: regression; at most 2
distinct values: binary; else multiclass. Classes are ordered numerically when all are
integers, else by text (code point); a binary label's positive class is the second in
that order ("1" of 0/1, "true" of false/true: scikit-learn's LabelEncoder).
"""

import math
import re
from collections import namedtuple
from decimal import Decimal, InvalidOperation
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kdp_beam.analyzers.moments import MomentsAnalyzer
from kdp_beam.analyzers.shards import stable_hashes
from kdp_beam.columns import blank_as_null, cast_column
from kdp_beam.errors import InputDataError
from kdp_beam.numbers import reads_as
from kdp_beam.slots import SlotsState

MAX_CLASSES = 1000  # distinct values a label read as classes may hold
_READ_AS = {"label": pa.string(), "float": pa.float64()}  # the label's kind -> its Arrow type
_INTEGER = "-?[0-9]+"  # kdp_beam.numbers' integer
_BLANKS = " \t"  # around a number in a CSV field (kdp_beam.columns.number_from_text trims them)
# A binary label seen with one class: the other one, by the convention of the positive class.
_OTHER_CLASS = {"1": "0", "0": "1", "true": "false", "false": "true"}


class BatchLabel(SlotsState):
    """One batch's label as the analyzers read it: ``values``, a pyarrow string array of
    class texts (float64 for a declared regression label), null where missing; and
    ``fold_keys``, the fold key's texts (None without a fold key), hashed once, when a
    feature first asks for its folds."""

    __slots__ = ("values", "fold_keys", "_hashes")

    def __init__(self, values, fold_keys=None):
        self.values, self.fold_keys, self._hashes = values, fold_keys, None

    def folds(self, k):
        """The fold (0..k-1) of each row (fold_of)."""
        if self._hashes is None:
            self._hashes = _key_hashes(self.fold_keys)
        return (self._hashes % np.uint64(k)).astype(np.int64)


def _key_hashes(keys):
    return stable_hashes(keys.fill_null(""))


def fold_of(keys, k):
    """The fold (0..k-1) of each row key of a pyarrow string array: a stable 64-bit hash
    of the key's UTF-8 text modulo k, the same on every machine (the transform of the
    training rows uses it too). A missing key hashes as the empty text: those rows share
    one fold, never none (which would leak their own label into their encoding)."""
    return (_key_hashes(keys) % np.uint64(k)).astype(np.int64)


def read_label(batch, spec):
    """The spec's label (and fold key) of a RecordBatch, or None without a label.

    Readers give the label column read as its kind (kdp_beam.columns.read_kinds); other
    batches (users' own) are cast by the same rule. Empty texts are missing labels, and so
    is NaN; raises InputDataError when the column is absent or a regression label is
    infinite."""
    if spec.label is None:
        return None
    values = _read_column(batch, spec.label, spec.label_kind, "label")
    if values.type == pa.float64():
        values = _finite_or_missing(values, spec.label)
    keys = None if spec.fold_key is None else read_fold_keys(batch, spec.fold_key)
    return BatchLabel(values, keys)


def read_fold_keys(batch, fold_key):
    """The fold key column of a RecordBatch as the texts fold_of hashes (empty: missing),
    read as the analysis reads it (the transform's out-of-fold encodings need the same)."""
    return _read_column(batch, fold_key, "label", "fold_key")


def _read_column(batch, name, kind, what):
    if name not in batch.schema.names:
        raise InputDataError(
            f"the {what} {name!r} is not a column of the input (columns: {batch.schema.names})"
        )
    column = batch.column(name)
    if column.type != _READ_AS[kind]:
        column = cast_column(column, kind, name, "input batch")
    return blank_as_null(column)


def _finite_or_missing(values, name):
    if pc.any(pc.is_inf(values)).as_py():
        raise InputDataError(
            f"the label {name!r} holds an infinite value: a regression label is a finite "
            "number; fix the data, or leave the value empty (a missing label)"
        )
    nan = pc.is_nan(values)
    if pc.any(nan).as_py():
        values = pc.if_else(nan, pa.scalar(None, pa.float64()), values)
    return values


def too_many_classes(column):
    return InputDataError(
        f"the label {column!r} has more than {MAX_CLASSES:,} distinct values: a label read as "
        f'classes holds at most {MAX_CLASSES:,}; if it is a number to predict, declare "label_type": '
        '"regression"'
    )


def add_class_counts(classes, values, column=None):
    """Adds the rows of each class of `values` (a string array) to `classes` ({text:
    rows}); raises InputDataError past MAX_CLASSES when `column` (the label's name) is
    given, so the state stays bounded and a label of numbers fails at once, not at the end."""
    counted = pc.value_counts(values.drop_null())
    if column is not None and len(counted) > MAX_CLASSES:
        raise too_many_classes(column)
    for text, rows in zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist()):
        classes[text] = classes.get(text, 0) + rows
    if column is not None and len(classes) > MAX_CLASSES:
        raise too_many_classes(column)
    return classes


def merged_classes(dicts, column=None):
    """{text: rows} summed; raises InputDataError past MAX_CLASSES when `column` (the
    label's name) is given (a feature's classes are the label's: bounded by it)."""
    merged = {}
    for classes in dicts:
        for text, rows in classes.items():
            merged[text] = merged.get(text, 0) + rows
    if column is not None and len(merged) > MAX_CLASSES:
        raise too_many_classes(column)
    return merged


def class_order(texts):
    """Classes in order: numerically when all are integers, else by text (code point)."""
    if texts and all(re.fullmatch(_INTEGER, t.strip(_BLANKS)) for t in texts):
        return sorted(texts, key=lambda t: (int(t), t))
    return sorted(texts)


def _spelled_number(text):
    """The number a label's text spells by kdp_beam.numbers' rule, with spaces and tabs
    around it as a CSV number may have (the CSV reader keeps a label's field as written):
    a Decimal (exact; NaN or infinite for those spellings), or None for other text."""
    text = text.strip(_BLANKS)
    if not reads_as(text, pa.float64()):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pyarrow's "nan(chars)"
        return Decimal("nan")


def _number(text):
    """The finite float a text spells (_spelled_number), or None."""
    value = _spelled_number(text)
    value = None if value is None else float(value)
    return value if value is not None and math.isfinite(value) else None


def check_classes(column, classes):
    """Raises InputDataError when a classification label's class texts spell one value
    two ways, which would be two classes where Parquet, JSON or tf.Example values give
    one: one number ("1" and "1.0", "0" and "-0"; a regression label's numbers are just
    numbers), one boolean ("True", as pandas writes a CSV, and "true"); booleans
    beside numbers ("true" and "1": JSON true and 1, a bool file beside an int file); or,
    every class a number, one is NaN or infinite (a missing label written as "nan", which
    a numeric column reads as missing). Numbers compared exactly (integers beyond 2^53
    stay apart), spaces and tabs around them ignored ("1" and " 1" are one number)."""
    spelled, non_finite = {}, []  # {value: its first text}
    for text in class_order(list(classes)):
        if text.lower() in ("false", "true"):
            value = ("boolean", text.lower())  # (a tuple: never equal to a number's key)
        elif (value := _spelled_number(text)) is None:
            continue
        elif not value.is_finite():
            non_finite.append(text)
            continue
        if value in spelled:
            raise InputDataError(
                f"the label {column!r} has the classes {spelled[value]!r} and {text!r}, one value "
                "written two ways, which would be two classes: write each class one way (e.g. "
                'integers), or declare "label_type": "regression" if it is a number to predict'
            )
        spelled[value] = text
    booleans = [text for value, text in spelled.items() if isinstance(value, tuple)]
    numbers = [text for value, text in spelled.items() if not isinstance(value, tuple)]
    if booleans and numbers:
        raise InputDataError(
            f"the label {column!r} holds booleans ({booleans[0]!r}) and numbers ({numbers[0]!r}), "
            "which would be classes apart: write it one way"
        )
    if non_finite and len(numbers) + len(non_finite) == len(classes):
        raise InputDataError(
            f"the label {column!r} holds numbers and {non_finite[0]!r}, which is not a class: "
            "write a missing label as an empty field, or fix the value"
        )


def inferred_type(classes):
    """scikit-learn's type_of_target over the distinct labels (texts)."""
    values = [_number(t) for t in classes]
    if values and None not in values and any(not v.is_integer() for v in values):
        return "regression"
    return "binary" if len(classes) <= 2 else "multiclass"


def _exact_moments(counts):
    """Mean and population variance of numbers given as {value text: rows}, in exact
    rational arithmetic rounded once. Texts of one number ("1", "1.0") add their rows."""
    values = {}
    for text, rows in counts.items():
        value = Fraction(_number(text))
        values[value] = values.get(value, 0) + rows
    rows = sum(values.values())
    mean = sum(v * n for v, n in values.items()) / rows
    return float(mean), float(sum((v - mean) ** 2 * n for v, n in values.items()) / rows)


class LabelAccumulator(SlotsState):
    """Rows, rows with a missing label, and the rows of each class ({text: rows}) or the
    moments of a declared regression label."""

    __slots__ = ("count", "null_count", "classes", "moments")

    def __init__(self, classes=None, moments=None):
        self.count = self.null_count = 0
        self.classes, self.moments = classes, moments


class LabelAnalyzer:
    """The label's own statistics: four verbs over BatchLabels (read_label), state bounded
    by MAX_CLASSES classes or one moments accumulator.

    ``finalize`` gives the top-level ``"label"`` of statistics.json (docs/bundle-format.md):
    ``column``, ``label_type``, ``inferred``, ``count``, ``null_count``, ``prior`` [K] and, for
    classification, ``classes`` and ``class_counts`` (and a binary label's
    ``positive_class``), for regression ``mean`` and ``variance``. Raises InputDataError when
    no row has a label, a binary label has more than 2 classes, or one class other than
    "0" / "1" / "false" / "true" (the other class, and so the positive one, is then unknown).

    Args:
        column: the label's column name.
        label_type: the declared type, or None to infer it.
    """

    def __init__(self, column, label_type=None):
        self.column = column
        self.label_type = label_type
        self._moments = MomentsAnalyzer() if label_type == "regression" else None

    def create_accumulator(self):
        if self._moments is not None:
            return LabelAccumulator(moments=self._moments.create_accumulator())
        return LabelAccumulator(classes={})

    def add_batch(self, acc, label):
        acc.count += len(label.values)
        acc.null_count += label.values.null_count
        if self._moments is not None:
            acc.moments = self._moments.add_batch(acc.moments, label.values)
        else:
            add_class_counts(acc.classes, label.values, self.column)
        return acc

    def merge_accumulators(self, accs):
        accs = list(accs)
        merged = LabelAccumulator()
        merged.count = sum(acc.count for acc in accs)
        merged.null_count = sum(acc.null_count for acc in accs)
        if self._moments is not None:
            merged.moments = self._moments.merge_accumulators([acc.moments for acc in accs])
        else:
            merged.classes = merged_classes([acc.classes for acc in accs], self.column)
        return merged

    def to_state(self, acc):
        state = {"count": acc.count, "null_count": acc.null_count}
        if self._moments is not None:
            return {**state, "moments": self._moments.to_state(acc.moments)}
        return {**state, "classes": dict(sorted(acc.classes.items()))}

    def from_state(self, state):
        acc = self.create_accumulator()
        acc.count, acc.null_count = int(state["count"]), int(state["null_count"])
        if self._moments is not None:
            acc.moments = self._moments.from_state(state["moments"])
        else:
            acc.classes = merged_classes([state["classes"]], self.column)
        return acc

    def finalize(self, acc):
        stats = {
            "column": self.column,
            "label_type": self.label_type,
            "inferred": self.label_type is None,
            "count": acc.count,
            "null_count": acc.null_count,
        }
        if acc.count == acc.null_count:
            missing = f"in the {acc.count:,} rows (all missing)" if acc.count else "(the input has no rows)"
            raise InputDataError(
                f"the label {self.column!r} has no value {missing}: label statistics need labelled "
                "rows; check the label column"
            )
        if self._moments is not None:
            try:
                moments = self._moments.finalize(acc.moments)
            except InputDataError as error:
                raise InputDataError(f"the label {self.column!r}: {error}") from None
            return {**stats, "prior": [moments["mean"]], "mean": moments["mean"], "variance": moments["variance"]}
        counts = dict(acc.classes)
        label_type = self.label_type or inferred_type(list(counts))
        if label_type == "regression":  # inferred: every label a number, some not whole
            mean, variance = _exact_moments(counts)
            return {**stats, "label_type": label_type, "prior": [mean], "mean": mean, "variance": variance}
        check_classes(self.column, counts)
        if label_type == "binary":
            self._check_binary(counts)
        classes = class_order(list(counts))
        class_counts = [counts[c] for c in classes]
        labelled = sum(class_counts)
        stats.update(label_type=label_type, classes=classes, class_counts=class_counts)
        if label_type == "binary":
            stats["positive_class"] = classes[1]
            stats["prior"] = [class_counts[1] / labelled]
        else:
            stats["prior"] = [n / labelled for n in class_counts]
        return stats

    def _check_binary(self, counts):
        """A binary label's classes, both of them (in place): refuses more than 2, and one
        that is not "1" / "true"."""
        if len(counts) > 2:
            seen = ", ".join(repr(c) for c in class_order(list(counts))[:5])
            raise InputDataError(
                f"the label {self.column!r} has {len(counts)} classes ({seen}"
                f"{', ...' if len(counts) > 5 else ''}): declare \"label_type\": \"multiclass\""
            )
        if len(counts) == 1:  # a day without positives, say: its other class is known
            [only] = counts
            if only not in _OTHER_CLASS:
                raise InputDataError(
                    f"the label {self.column!r} has one class, {only!r}: a binary label seen with one "
                    'class is one of "0" / "1" or "false" / "true", whose positive class is "1" / '
                    '"true"; of other classes, analyse rows of both'
                )
            counts[_OTHER_CLASS[only]] = 0


class Label:
    """Finalized label statistics (LabelAnalyzer.finalize, statistics.json's "label"), as
    the per-token statistics read them."""

    def __init__(self, stats):
        self.column = stats["column"]
        self.type = stats["label_type"]
        self.classes = stats.get("classes")
        self.positive_class = stats.get("positive_class")
        self.prior = stats["prior"]

    @property
    def columns(self):
        """What each of the K label columns is: binary [the positive class], multiclass the
        classes, regression [the label's column name]."""
        if self.type == "binary":
            return [self.positive_class]
        return list(self.classes) if self.type == "multiclass" else [self.column]

    @property
    def width(self):
        return len(self.columns)

    def class_indices(self, texts):
        """The index in `classes` of each class text (numpy); raises ValueError for a text
        that is not one of them (token state of another label)."""
        found = pc.index_in(texts, value_set=pa.array(self.classes, pa.string()))
        if found.null_count != texts.null_count:
            stray = texts.filter(pc.and_(pc.is_null(found), pc.is_valid(texts)))[0].as_py()
            raise ValueError(f"class {stray!r:.80} is not one of the label's classes")
        return found.fill_null(-1).to_numpy(zero_copy_only=False)

    def column_indices(self, texts):
        """The label column of each class text: binary 0 for the positive class, -1 for
        the other; multiclass the class's index."""
        indices = self.class_indices(texts)
        if self.type == "binary":
            return np.where(indices == 1, 0, -1)
        return indices

    def class_totals(self, totals, rows):
        """Labelled rows of each class (numpy, in class order), from a feature's
        `label_totals` [K] over its `rows` labelled rows."""
        if self.type == "binary":
            return np.array([rows - totals[0], totals[0]], dtype=np.float64)
        return np.asarray(totals, dtype=np.float64)


LabelContext = namedtuple("LabelContext", "label rows totals")
LabelContext.__doc__ = """What a label-aware feature's per-token statistics need at finalize:
the Label, and the feature's label_rows (N) and label_totals [K]."""


def label_contexts(spec, statistics):
    """{feature: LabelContext} of every label-aware feature of finalized statistics (those
    with label_rows). Raises InputDataError when a feature ranks by mutual information and
    the label was inferred regression (MI is computed from classes)."""
    label = Label(statistics["label"])
    found = {}
    for name, stats in statistics["features"].items():
        if "label_rows" not in stats:
            continue
        if spec.features[name].options.get("rank_by") == "mutual_information" and label.type == "regression":
            raise InputDataError(
                f"feature {name!r} ranks its vocabulary by mutual information with the label, but the "
                f"label {label.column!r} holds numbers that are not all whole (inferred \"regression\"), "
                "which have no classes: declare its \"label_type\" (\"binary\" or \"multiclass\") if "
                "its values are classes, or rank the feature by frequency"
            )
        found[name] = LabelContext(label, stats["label_rows"], stats["label_totals"])
    return found


def present_rows(column, missing_token=None):
    """Whether each row holds a value the vocabulary counts (numpy bool): a non-null value
    (every row where missing values count as `missing_token`); a list, a non-null element."""
    if pa.types.is_list(column.type):
        values = pc.list_flatten(column)
        parents = pc.list_parent_indices(column).to_numpy()
        valid = pc.is_valid(values).to_numpy(zero_copy_only=False)
        return np.bincount(parents[valid], minlength=len(column)) > 0
    if missing_token is not None:
        return np.ones(len(column), dtype=bool)
    return pc.is_valid(column).to_numpy(zero_copy_only=False)


class LabelTotalsAccumulator(SlotsState):
    """Labelled rows holding a value of the feature: per class ({text: rows}), or for a
    declared regression label their number and label sum."""

    __slots__ = ("classes", "rows", "sum")

    def __init__(self, classes=None, rows=0, total=0.0):
        self.classes, self.rows, self.sum = classes if classes is not None else {}, rows, total


class LabelTotalsAnalyzer:
    """A label-aware feature's labelled rows where it is present (``label_rows``, N) and
    their label sums (``label_totals`` [K]), with the label's ``label_type``,
    ``label_prior`` and ``label_columns``, so the feature's statistics need nothing outside
    themselves. Bounded state in the global combine.

    Args:
        missing_token: the feature's (missing values then count as a token: present).
    """

    takes_label = True  # add_batch(acc, column, label) and finalize(acc, Label)
    takes_lists = True  # a multivalent feature's list column: a row is present once

    def __init__(self, missing_token=None):
        self.missing_token = missing_token

    def create_accumulator(self):
        return LabelTotalsAccumulator()

    def add_batch(self, acc, column, label):
        values = label.values.filter(pa.array(present_rows(column, self.missing_token)))
        if values.type == pa.float64():
            acc.rows += len(values) - values.null_count
            acc.sum += pc.sum(values, min_count=0).as_py()
        else:
            add_class_counts(acc.classes, values)
        return acc

    def merge_accumulators(self, accs):
        accs = list(accs)
        return LabelTotalsAccumulator(
            merged_classes([acc.classes for acc in accs]),
            sum(acc.rows for acc in accs),
            math.fsum(acc.sum for acc in accs),
        )

    def to_state(self, acc):
        return {"classes": dict(sorted(acc.classes.items())), "rows": acc.rows, "sum": acc.sum}

    def from_state(self, state):
        return LabelTotalsAccumulator(dict(state["classes"]), int(state["rows"]), float(state["sum"]))

    def finalize(self, acc, label):
        if acc.classes and label.type == "regression":  # inferred: the classes are numbers
            rows = sum(acc.classes.values())
            totals = [float(sum(Fraction(_number(t)) * n for t, n in acc.classes.items()))]
        elif label.type == "regression":
            rows, totals = acc.rows, [acc.sum]
        else:
            texts = pa.array(list(acc.classes), pa.string())
            rows_of = np.array(list(acc.classes.values()), dtype=np.int64)
            columns = label.column_indices(texts)
            keep = columns >= 0
            totals = np.bincount(columns[keep], weights=rows_of[keep], minlength=label.width)
            rows, totals = int(rows_of.sum()), [int(t) for t in totals]
        return {
            "label_rows": rows,
            "label_totals": totals,
            "label_type": label.type,
            "label_prior": list(label.prior),
            "label_columns": label.columns,
        }
