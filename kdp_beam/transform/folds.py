"""Out-of-fold target encodings of the training rows (kdp-beam transform --out-of-fold).

A target-encoded feature declared with ``"folds": k`` has, in the bundle, its label
statistics per fold (``vocabulary_fold_label_counts`` n_cf, ``vocabulary_fold_label_sums``
s_cfk). A row of fold f (kdp_beam.analyzers.labels.fold_of of its fold key, the hash the
analysis assigned it by) is encoded with the statistics of the other folds only, through
the model's own formula (kdp_beam.builder.target.encoding_table)::

    (s_ck - s_cfk + m * prior_k) / (n_c - n_cf + m)   if n_c - n_cf >= min_count, else prior_k

What stays the model's, and why:
- the prior: the bundle holds the label's prior over all labelled rows, not per fold (one
  row moves it by 1/N of its label, where a rare value's own encoding moves by up to
  1/(n + m)); scikit-learn's TargetEncoder cross-fitting takes the fold's training part's
  mean instead;
- ``with_count``'s log1p(count): a count, not a label statistic; the vocabulary and the
  lookup (which value has which index, so crosses too).
A missing fold key is the empty text, as the analysis hashed it: those rows share one fold
and are encoded without it (never with their own labels).

Vectorised: per feature, one (folds, lookup indices, columns) float32 table computed once;
per batch, the feature's lookup indices (the model's own layers, in the encoder's graph)
and each row's fold, then one numpy gather. A list is the mean of its values' rows, as
the model's TargetEncoding averages them.
"""

import numpy as np

from kdp_beam.analyzers.labels import BatchLabel, read_fold_keys
from kdp_beam.builder.target import encoding_table
from kdp_beam.columns import read_kinds
from kdp_beam.errors import BundleError, SpecError
from kdp_beam.feature_types.categorical import FOLD_COLUMNS
from kdp_beam.transform.manifest import ENCODING  # output field metadata: "out_of_fold" for these

OUT_OF_FOLD = "out_of_fold"


class OutOfFold:
    """The out-of-fold encodings of a bundle's target features with folds.

    Args:
        bundle: a loaded Bundle.
        feature_space: its FeatureSpace (from_artifacts), whose lookups give the indices.

    Attributes:
        features: {feature: k} of the features encoded out of fold, in the model's order.
        fold_key: the spec's fold key column, and ``fold_kind`` its read kind (text).

    Raises SpecError when no feature of the bundle is target-encoded with folds.
    """

    def __init__(self, bundle, feature_space):
        self._space = feature_space
        spec = bundle.spec
        self.features, self._tables, self._masks = {}, {}, {}
        for name, encoder in feature_space.encoders.items():
            options = spec.features[name].options
            if options.get("folds") is None:
                continue
            self.features[name] = options["folds"]
            self._tables[name] = fold_tables(bundle.features[name], options)
            self._masks[name] = encoder.mask_index  # a list's padding index, None for a scalar
        if not self.features:
            folded = [n for n, f in spec.features.items() if f.options.get("folds") is not None]
            raise SpecError(
                f"--out-of-fold: the bundle {bundle.path} has no target-encoded feature with folds"
                + (f" (the features {folded} have folds but are not output_mode 'target')" if folded else "")
                + ": declare \"folds\": k on output_mode 'target' features and a \"fold_key\", analyse "
                "the training rows again, or transform without --out-of-fold"
            )
        self.fold_key = spec.fold_key
        self.fold_kind = read_kinds(spec)[spec.fold_key]

    def columns(self, columns):
        """The encoder's {column: read kind} with the fold key, read as text as the analysis
        hashed it. Raises SpecError when it is also kept as another kind (a CSV "007" read
        as the integer 7 would hash as "7": another fold)."""
        kind = columns.get(self.fold_key)
        if kind is None:
            return {**columns, self.fold_key: self.fold_kind}
        if kind != self.fold_kind:
            raise SpecError(
                f"--keep {self.fold_key}: with --out-of-fold the fold key {self.fold_key!r} is read as text, "
                f"as the analysis hashed it, not as {kind}: keep it as --keep {self.fold_key}:text"
            )
        return columns

    def wrap(self, model):
        """The function of the encoder's graph: inputs -> (the model's outputs, indices)."""
        return lambda inputs: (model(inputs), self.indices(inputs))

    def marked(self, fields):
        """The output fields, the out-of-fold features' with ENCODING metadata."""
        return [mark(f) if f.name in self.features else f for f in fields]

    def indices(self, inputs):
        """{feature: its lookup's indices} of the model's input tensors, as the model's
        _preprocess_features makes them (the fill of a missing value, then the lookup);
        called inside the encoder's tf.function, beside the model."""
        found = {}
        for name in self.features:
            x = inputs[name]
            fill = self._space.fill_layers.get(name)
            if fill is not None:
                x = fill(x)
                if fill.indicator:
                    x = x[0]
            found[name] = self._space.preprocessors[name](x)
        return found

    def encode(self, outputs, indices, batch):
        """The model's outputs (a dict of tensors) with the out-of-fold features' replaced by
        their rows' other folds' encodings (numpy arrays)."""
        keys = BatchLabel(None, read_fold_keys(batch, self.fold_key))  # hashed once for every k
        replaced = dict(outputs)
        for name, k in self.features.items():
            replaced[name] = gather(self._tables[name], keys.folds(k), np.asarray(indices[name]), self._masks[name])
        return replaced


def fold_tables(stats, options):
    """(k, lookup indices, columns) float32: for each fold f, encoding_table of the
    statistics without fold f's labelled rows (n_c - n_cf, s_ck - s_cfk; the other folds
    summed, not the fold subtracted, so that float sums lose nothing to cancellation)."""
    k = options["folds"]
    absent = [key for key in FOLD_COLUMNS if stats.get(key) is None]
    if absent:
        raise BundleError(f"folds {k}: the bundle holds no {absent}; the bundle is damaged, analyse again")
    tokens, width = len(stats["vocabulary"]), len(stats["label_columns"])
    counts = np.asarray(stats[FOLD_COLUMNS[0]], dtype=np.float64).reshape(tokens, k)
    sums = np.asarray(stats[FOLD_COLUMNS[1]], dtype=np.float64).reshape(tokens, k, width)
    tables = []
    for fold in range(k):
        others = np.arange(k) != fold
        held_out = {
            **stats,
            "vocabulary_label_counts": counts[:, others].sum(axis=1),
            "vocabulary_label_sums": sums[:, others, :].sum(axis=1),
        }
        tables.append(encoding_table(held_out, options))
    return np.stack(tables)


def gather(tables, folds, indices, mask_index=None):
    """Each row's encoding: tables[its fold, its index] for a (rows, 1) lookup; for a list
    (rows, values) whose padding is `mask_index`, the mean of its values' rows (a list
    with none: the padding's row, the prior), as TargetEncoding computes it in float32."""
    rows = tables[folds[:, None], indices]  # (rows, values, columns)
    if mask_index is None:
        return rows[:, 0, :]
    present = (indices != mask_index)[..., None].astype(np.float32)
    count = present.sum(axis=1)
    total = (rows * present).sum(axis=1)
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return np.where(count > 0, mean, tables[0, mask_index][None, :]).astype(np.float32)


def mark(field):
    """An output field with ENCODING metadata saying it is encoded out of fold."""
    return field.with_metadata({**(field.metadata or {}), ENCODING.encode(): OUT_OF_FOLD.encode()})

