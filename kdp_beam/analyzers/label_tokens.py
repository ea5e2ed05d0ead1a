"""The per-token label statistics of label-aware categoricals, and their vocabulary.

A label-aware feature (output_mode "target", rank_by "mutual_information" or folds:
kdp_beam.feature_types.label_aware) counts its tokens as every exact vocabulary does (the
token-table shape of kdp_beam.analyzers.vocabulary: per-batch tables folded per key, on the
keyed path spread over workers by token), its rows keyed also by the row's class and fold:

- a label read as classes (classification, or a type to infer: the classes are not known
  before the pass): a long table (token, label, [fold], count, [document_count]), one row
  per token, class text (null: rows without a label) and fold. Counting classes as keys
  keeps every statistic an exact integer whatever the classes turn out to be, and a token
  has at most (classes + 1) x folds rows; a label of more classes is refused
  (labels.MAX_CLASSES) before its rows grow;
- a declared regression label: a wide table (token, [fold], count, [document_count],
  label_count, label_sum), the label summed (to float64 rounding, as moments are).

"count" is the token's values (all rows, labelled or not: the vocabulary's counts);
"document_count" (lists) the rows holding it, a row counted once per distinct token it
holds; the label statistics count rows: "count" of one value per row, else
"document_count". Only the kept tokens' statistics are finalized, from the exact counts:
n_c, the label sums [K], per fold, and with rank_by "mutual_information" the score.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kdp_beam.analyzers.labels import BatchLabel
from kdp_beam.analyzers.vocabulary import KEY_COLUMNS, TokenTableAnalyzer, keras_order
from kdp_beam.columns import number_from_text

MUTUAL_INFORMATION = "mutual_information"


def mutual_information(cell_token, cell_class, joint, tokens, class_totals, rows):
    """MI in nats between the indicator "the row holds the token" and the label, per token,
    exactly from the joint counts (sparse: only the (token, class) cells holding rows).

    Args:
        cell_token, cell_class: numpy indices of each cell's token (0..tokens-1) and class.
        joint: the cell's labelled rows holding the token.
        tokens: how many tokens.
        class_totals: numpy labelled rows of each class (over the feature's rows).
        rows: N, the feature's labelled rows.

    With n_tk the cells, n_t their sum, N_k the class totals: the sum over the 2 x K table
    of p log(p / (p_row p_class)), where the row "not holding" has N_k - n_tk. Classes with
    no cell contribute together (sum of their N_k) / N * log(N / (N - n_t)). Each token's
    terms are added in ascending order, so that tokens whose tables are the same up to
    the classes' order (equal MI) get the same float, and ties are broken as declared.
    """
    if rows == 0 or not joint.size:
        return np.zeros(tokens, dtype=np.float64)
    n = float(rows)
    held = np.bincount(cell_token, weights=joint, minlength=tokens)
    not_held = n - held
    per_class = class_totals[cell_class]
    absent = per_class - joint
    rest = not_held - np.bincount(cell_token, weights=absent, minlength=tokens)
    terms = np.concatenate([
        _term(joint, held[cell_token], per_class, n),
        _term(absent, not_held[cell_token], per_class, n),
        _term(rest, not_held, rest, n),
    ])
    owner = np.concatenate([cell_token, cell_token, np.arange(tokens)])
    order = np.lexsort((terms, owner))
    scores = np.bincount(owner[order], weights=terms[order], minlength=tokens)  # in that order
    return np.maximum(scores, 0.0)  # rounding may leave -1e-17 for independence


def _term(cell, row_total, class_total, n):
    """cell / n * log(cell * n / (row_total * class_total)); 0 for an empty cell."""
    out = np.zeros(cell.shape, dtype=np.float64)
    some = cell > 0
    c = cell[some]
    out[some] = c / n * np.log(c * n / (row_total[some] * class_total[some]))
    return out


def _row_token_pairs(tokens, rows):
    """Each distinct (row, token) of a list column's non-null values (`rows`: the row of
    each value): (tokens, rows, occurrences in the row). Vectorised: tokens as dictionary
    indices, each pair one integer key, sorted, each run of equal keys one pair."""
    encoded = pc.dictionary_encode(tokens)
    distinct = len(encoded.dictionary)
    if not distinct:
        return tokens, rows, np.zeros(0, dtype=np.int64)
    pairs = rows.astype(np.int64) * distinct + encoded.indices.to_numpy()
    pairs.sort()
    first = np.ones(pairs.size, dtype=bool)
    np.not_equal(pairs[1:], pairs[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    unique = pairs[starts]
    occurrences = np.diff(np.append(starts, pairs.size))
    return encoded.dictionary.take(pa.array(unique % distinct)), unique // distinct, occurrences


class LabelVocabularyAnalyzer(TokenTableAnalyzer):
    """A label-aware feature's exact vocabulary and each kept token's label statistics.

    The vocabulary: `vocabulary`'s (a VocabularyAnalyzer: max_size, excluded and missing
    token, token type), its tokens in keras' order or, with rank_by "mutual_information",
    by descending score, ties by count then keras' order. Its statistics add, per kept token
    (the vocabulary file's columns, docs/bundle-format.md): ``vocabulary_label_counts``
    (n_c, labelled rows holding it), ``vocabulary_label_sums`` ([K] per token),
    ``vocabulary_scores`` (MI in nats) and, with folds, ``vocabulary_fold_label_counts`` /
    ``vocabulary_fold_label_sums``.

    The verbs take the label: ``add_batch(acc, column, label)`` and ``token_table(column,
    label)`` a BatchLabel; ``shard_top(table, context)``, ``finalize(acc, context)`` and
    ``finalize_table(..., context)`` the feature's labels.LabelContext. ``bind_label(kind)``
    gives it the spec's label kind (kdp_beam.analyzers.dataset.feature_analyzers does).

    Args:
        vocabulary: the VocabularyAnalyzer of the feature's options.
        rank_by: "frequency" or "mutual_information".
        folds: k, or None.
        multivalent: whether the column is a list per row.
    """

    takes_label = True

    def __init__(self, vocabulary, rank_by="frequency", folds=None, multivalent=False):
        self.vocabulary = vocabulary
        self.rank_by = rank_by
        self.folds = folds
        self.multivalent = multivalent
        self.takes_lists = multivalent  # fed the list column: rows are counted
        self.label_kind = "label"

    def bind_label(self, kind):
        """Reads the label as `kind` ("label": classes; "float": a declared regression)."""
        self.label_kind = kind
        return self

    @property
    def regression(self):
        return self.label_kind == "float"

    @property
    def keep(self):
        return self.vocabulary.keep

    @property
    def _rows(self):
        """The column counting rows."""
        return "document_count" if self.multivalent else "count"

    def empty_column(self):
        token_type = self.vocabulary.token_type
        return pa.array([], pa.list_(token_type) if self.multivalent else token_type)

    def _empty_label(self):
        values = pa.array([], pa.float64() if self.regression else pa.string())
        return BatchLabel(values, pa.array([], pa.string()) if self.folds else None)

    @property
    def state_schema(self):
        return self.token_table(self.empty_column(), self._empty_label()).schema

    def add_batch(self, acc, column, label):
        table = self.token_table(column, label)
        if table.num_rows:
            acc.add(table)
        return acc

    def finalize(self, acc, context):
        table = acc.fold()
        if table is None:
            return self.finalize_table(None, 0, 0, context)
        return self.finalize_table(table, *self.table_totals(table), context)

    def token_table(self, column, label):
        """One batch's table (the module docstring's shapes)."""
        missing_token = self.vocabulary.missing_token
        if missing_token is not None and column.null_count:
            column = column.fill_null(missing_token)
        folds = label.folds(self.folds) if self.folds else None
        grouped = {}
        if self.multivalent:
            tokens = pc.list_flatten(column)
            rows = pc.list_parent_indices(column).to_numpy()
            if tokens.null_count:
                valid = pc.is_valid(tokens)
                tokens, rows = tokens.filter(valid), rows[valid.to_numpy(zero_copy_only=False)]
            tokens, rows, occurrences = _row_token_pairs(tokens, rows)
            labels = label.values.take(pa.array(rows))
            folds = None if folds is None else folds[rows]
        else:
            tokens, labels = column, label.values
            if column.null_count:
                valid = pc.is_valid(column)
                tokens, labels = column.filter(valid), labels.filter(valid)
                folds = None if folds is None else folds[valid.to_numpy(zero_copy_only=False)]
        grouped["token"] = tokens
        if not self.regression:
            grouped["label"] = labels
        if folds is not None:
            grouped["fold"] = folds
        keys = list(grouped)
        # (the table's column, its aggregate over the groups, the name pyarrow gives it)
        if self.multivalent:
            grouped["occurrences"] = occurrences
            counted = [("count", ("occurrences", "sum"), "occurrences_sum"), ("document_count", ([], "count_all"), "count_all")]
        else:
            counted = [("count", ([], "count_all"), "count_all")]
        if self.regression:
            grouped["value"] = labels
            counted += [
                ("label_count", ("value", "count"), "value_count"),
                ("label_sum", ("value", "sum", pc.ScalarAggregateOptions(min_count=0)), "value_sum"),
            ]
        summed = pa.table(grouped).group_by(keys).aggregate([aggregate for _, aggregate, _ in counted])
        return pa.table({**{k: summed[k] for k in keys}, **{name: summed[given] for name, _, given in counted}})

    def table_totals(self, table):
        return pc.count_distinct(table["token"]).as_py(), int(table["count"].to_numpy().sum())

    def _per_token(self, table):
        """(token, count[, document_count]): the table summed per token."""
        counted = ["count", *(["document_count"] if self.multivalent else [])]
        summed = table.group_by("token").aggregate([(name, "sum") for name in counted])
        return pa.table({"token": summed["token"], **{n: summed[f"{n}_sum"] for n in counted}})

    def _ranked(self, table, per_token, keep, context):
        """per_token's first `keep` rows by rank (with a "score" column by MI)."""
        if self.rank_by != MUTUAL_INFORMATION:
            return keras_order(per_token, keep)
        ranked = per_token.append_column("score", pa.array(self._scores(table, per_token["token"], context)))
        order = pc.sort_indices(
            ranked, sort_keys=[("score", "descending"), ("count", "descending"), ("token", "descending")]
        )
        return ranked.take(order if keep is None else order.slice(0, keep))

    def _scores(self, table, tokens, context):
        """Each token's MI with the label (classes), over the feature's labelled rows."""
        label = context.label
        labelled = table.filter(pc.is_valid(table["label"]))
        position = pc.index_in(labelled["token"], value_set=tokens).to_numpy()
        classes = len(label.classes)
        cells, inverse = np.unique(position * classes + label.class_indices(labelled["label"]), return_inverse=True)
        joint = np.bincount(inverse, weights=labelled[self._rows].to_numpy())
        return mutual_information(
            cells // classes, cells % classes, joint, len(tokens),
            label.class_totals(context.totals, context.rows), context.rows,
        )

    def shard_top(self, table, context):
        """The rows of the shard's tokens the vocabulary can need: its top `keep` (all of
        them without max_tokens), by the feature's rank."""
        if self.keep is None:
            return table
        kept = self._ranked(table, self._per_token(table), self.keep, context)["token"]
        return table.filter(pc.is_in(table["token"], value_set=kept))

    def finalize_table(self, table, distinct_count, total_count, context):
        """The statistics from folded tables: all of them, or at least the top `keep`
        tokens' rows (shard_top)."""
        if table is None:
            table = self.token_table(self.empty_column(), self._empty_label())
        excluded = self.vocabulary.excluded_tokens
        if excluded:
            excluded = pa.array(excluded, table["token"].type)
            table = table.filter(pc.invert(pc.is_in(table["token"], value_set=excluded)))
        if context.label.type == "regression":  # float sums: in one order, whatever the sharding
            table = table.sort_by([(name, "ascending") for name in table.column_names if name in KEY_COLUMNS])
        ranked = self._ranked(table, self._per_token(table), self.vocabulary.max_size, context)
        found = {
            "vocabulary": ranked["token"].to_pylist(),
            "vocabulary_counts": ranked["count"].to_pylist(),
            "vocabulary_size": ranked.num_rows,
            "distinct_count": distinct_count,
        }
        if self.multivalent:
            found["vocabulary_document_counts"] = ranked["document_count"].to_pylist()
        found.update(self._label_statistics(table, ranked["token"], context))
        if self.rank_by == MUTUAL_INFORMATION:
            found["vocabulary_scores"] = ranked["score"].to_pylist()
        return found

    def _label_statistics(self, table, kept, context):
        """n_c and the label sums [K] of each kept token, and per fold."""
        label = context.label
        tokens, width, folds = len(kept), label.width, self.folds or 1
        table = table.filter(pc.is_in(table["token"], value_set=kept))
        if not self.regression:
            table = table.filter(pc.is_valid(table["label"]))
        cell = pc.index_in(table["token"], value_set=kept).to_numpy() * folds
        if self.folds:
            cell += table["fold"].to_numpy()
        if self.regression:
            rows, sums = table["label_count"].to_numpy(), table["label_sum"].to_numpy()
            fold_sums = np.bincount(cell, weights=sums, minlength=tokens * folds)
        else:
            rows = table[self._rows].to_numpy()
            if label.type == "regression":  # inferred: each class is a number
                values = number_from_text(table["label"], pa.float64()).to_numpy()  # (" 0.5": CSV text)
                fold_sums = np.bincount(cell, weights=rows * values, minlength=tokens * folds)
            else:
                column = label.column_indices(table["label"])
                some = column >= 0
                fold_sums = np.bincount(
                    cell[some] * width + column[some], weights=rows[some], minlength=tokens * folds * width
                ).astype(np.int64)
        fold_counts = np.bincount(cell, weights=rows, minlength=tokens * folds).astype(np.int64).reshape(tokens, folds)
        fold_sums = fold_sums.reshape(tokens, folds, width)
        found = {
            "vocabulary_label_counts": fold_counts.sum(axis=1).tolist(),
            "vocabulary_label_sums": fold_sums.sum(axis=1).tolist(),
        }
        if self.folds:
            found["vocabulary_fold_label_counts"] = fold_counts.tolist()
            found["vocabulary_fold_label_sums"] = fold_sums.tolist()
        return found
