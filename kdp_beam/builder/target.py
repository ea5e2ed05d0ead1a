"""Target encoding (output_mode "target", docs/label-aware.md): a categorical's value -> its
smoothed label mean, from the bundle's per-value label statistics.

The feature's preprocessor stays its lookup (StringLookup / IntegerLookup, output_mode
"int"), so a cross still takes the value's index; `TargetEncoding` after it maps the index
to a row of a float32 table that `encoding_table` computes in float64 from the feature's
statistics (kdp_beam.bundle: vocabulary_label_counts, vocabulary_label_sums, label_prior):

    row of token c, column k = (s_ck + m * prior_k) / (n_c + m)   if n_c >= min_count
                               prior_k                             otherwise

n_c the labelled rows holding c, s_ck their label sum (binary: positives; multiclass: the
rows of class k; regression: the label's sum), m the smoothing. The OOV indices (unseen
and, without missing_token, missing values) and a list's padding encode as the prior.
``with_count`` appends log1p(vocabulary_counts[c]), 0 for those. A list (multivalent) is
the mean of its values' rows; a list with no value the prior, count 0.
"""

import base64
import binascii

import keras
import numpy as np
import tensorflow as tf

from kdp_beam.builder import keras_internals
from kdp_beam.builder.multivalent import pad_value
from kdp_beam.errors import BundleError, InputDataError
from kdp_beam.feature_types.multivalent import is_multivalent
from kdp_beam.feature_types.options import FLOAT32_MAX
from kdp_beam.model_limits import float32_problem

# Cells of a target encoding's table (values x label columns): 1 GiB of float32, kept in the
# layer's config, so in the .keras file and in memory more than once while saving.
MAX_TABLE_CELLS = 2**28
# The feature's statistics a target encoding reads (beside vocabulary, vocabulary_counts).
LABEL_STATISTICS = ("label_prior", "label_columns", "vocabulary_label_counts", "vocabulary_label_sums")


def keras_feature(kind, feature_space, name, options):
    """The FeatureSpace feature of a categorical with output_mode "target" (one value or a
    list per row): its lookup giving an index, and the TargetEncoding after it as the
    record's `encoder` (its table set from the statistics by FeatureSpace)."""
    lists = is_multivalent(options)
    lookup = getattr(keras.layers, kind.lookup_layer)(
        # A list's lookup, as builder.multivalent's, takes no max_tokens: its mask token
        # would count in it. The bundle's vocabulary is already cut to max_tokens.
        **({} if lists else {"max_tokens": options["max_tokens"]}),
        num_oov_indices=options["num_oov_indices"],
        mask_token=pad_value(kind.dtype, options) if lists else None,
        output_mode="int",
        name=f"{name}_preprocessor",
    )
    return feature_space.feature(
        kind.dtype,
        lookup,
        "float",
        declaration={"type": kind.name, **options},
        missing_token=options["missing_token"],
        encoder=TargetEncoding(mask_index=0 if lists else None, name=f"{name}_target"),
    )


def encoding_table(stats, options):
    """The float32 table of a target feature, one row per index of its lookup (a list's
    padding index 0 first; then the num_oov_indices OOV indices; then the vocabulary, or
    the one placeholder token of a feature with no value), K columns (+ 1 with_count).

    Raises BundleError when the statistics hold no label statistics (the bundle was not
    analysed with output_mode "target") or inconsistent ones; InputDataError when a
    value's encoding is beyond float32.
    """
    absent = [key for key in LABEL_STATISTICS if stats.get(key) is None]
    if absent:
        raise BundleError(
            f"output_mode 'target' needs the label statistics {absent}, which the bundle does not "
            "hold: analyse the feature with output_mode 'target' (and the spec's \"label\")"
        )
    prior = np.asarray(stats["label_prior"], dtype=np.float64)
    width = len(stats["label_columns"])
    tokens = len(stats["vocabulary"])
    n = np.asarray(stats["vocabulary_label_counts"], dtype=np.float64)
    sums = np.asarray(stats["vocabulary_label_sums"], dtype=np.float64)
    if not sums.size:  # no token: [] holds no row to give its width
        sums = sums.reshape(0, width)
    if prior.shape != (width,) or not width or not np.isfinite(prior).all():
        raise BundleError(
            f"label_prior {stats['label_prior']!r:.200} is not {width} finite numbers, one per "
            f"label column {stats['label_columns']!r:.200}; the bundle is damaged"
        )
    if n.shape != (tokens,) or sums.shape != (tokens, width):
        raise BundleError(
            f"vocabulary_label_counts / vocabulary_label_sums have shapes {n.shape} / {sums.shape}, "
            f"not ({tokens},) / ({tokens}, {width}) for its {tokens} tokens and {width} label "
            "column(s); the bundle is damaged"
        )
    cells = (tokens + options["num_oov_indices"] + 1) * (width + 1)
    if cells > MAX_TABLE_CELLS:
        raise InputDataError(
            f"its target encoding would be a table of {tokens:,} values x {width} label columns "
            f"({cells * 4 / 2**30:.1f} GiB of float32 in the model), more than the "
            f"{MAX_TABLE_CELLS * 4 / 2**30:.0f} GiB a model holds well: set max_tokens (the most "
            "frequent values keep their encoding, the others encode as the prior), or use fewer classes"
        )
    m = options["smoothing"]
    kept = n >= options["min_count"]
    # n + m is 0 only where n is 0, which min_count >= 1 leaves at the prior.
    smoothed = (sums + m * prior) / np.where(kept, n + m, 1.0)[:, None]
    rows = np.where(kept[:, None], smoothed, prior)
    if not tokens:  # the lookup holds one placeholder token (builder.vocabularies)
        rows = prior[None, :]
    unseen = options["num_oov_indices"] + int(is_multivalent(options))
    table = np.vstack([np.tile(prior, (unseen, 1)), rows])
    beyond = np.abs(table) > FLOAT32_MAX
    if beyond.any():
        raise InputDataError(
            f"{float32_problem('label mean', float(table[beyond][0]))}: scale the label before "
            "analysis (e.g. divide it by a power of ten)"
        )
    if options["with_count"]:
        counts = np.log1p(np.asarray(stats["vocabulary_counts"], dtype=np.float64)) if tokens else [0.0]
        table = np.column_stack([table, np.concatenate([np.zeros(unseen), counts])])
    return table.astype(np.float32)


@keras.saving.register_keras_serializable(package="kdp_beam")
class TargetEncoding(keras.layers.Layer):
    """A lookup's int index -> a row of a float32 table: a categorical's target encoding.

    Called on a lookup's output (rows, 1): the table's row of each index, (rows, width).
    With ``mask_index`` (a list's lookup, its padding as mask token), called on
    (rows, values): the mean of the rows of the positions whose index is not mask_index,
    and ``table[mask_index]`` for a row with none.

    The table is kept in the layer's config (as a lookup's vocabulary is), so a config
    alone rebuilds the layer, and a .keras file and an exported SavedModel hold it
    exactly; there it is its float32 bytes in base64 (a million rows of JSON numbers
    would be ~4 times larger and ~10 times slower to save). The layer is TensorFlow ops,
    so it runs inside tf.data.

    Args:
        table: rows of `width` finite numbers (a list of lists or a 2-D array:
            kdp_beam.builder.target.encoding_table), one per index, or the config's
            {"shape", "float32_base64"}; None until set_statistics() sets it.
        mask_index: None (one index per row), or the index of a list's padding.
    """

    def __init__(self, table=None, mask_index=None, **kwargs):
        super().__init__(**kwargs)
        if mask_index is not None and not isinstance(mask_index, int):
            raise ValueError(f"TargetEncoding: mask_index must be None or an int. Received: mask_index={mask_index!r}")
        self.mask_index = mask_index
        self._table = None
        if table is not None:
            self.set_table(table)
        keras_internals.take_inputs_as_given(self)  # int64 indices as the lookup gives them

    def set_table(self, table):
        try:
            if isinstance(table, dict):  # as get_config writes it
                raw = base64.b64decode(table["float32_base64"], validate=True)
                table = np.frombuffer(raw, dtype="<f4").reshape(table["shape"])
            table = np.asarray(table, dtype=np.float32)
        except (TypeError, ValueError, KeyError, binascii.Error):  # rows of different widths, not numbers
            table = None
        if table is None or table.ndim != 2 or not table.size or not np.isfinite(table).all():
            raise ValueError(
                "TargetEncoding: table must be a non-empty list of rows of finite numbers, all of one "
                f"width. Received: table={'rows of different widths or not numbers' if table is None else f'of shape {table.shape}'}"
            )
        if self.mask_index is not None and not 0 <= self.mask_index < table.shape[0]:
            raise ValueError(
                f"TargetEncoding: mask_index {self.mask_index} is not a row of the table's {table.shape[0]}"
            )
        self._table = tf.constant(table)

    def set_statistics(self, stats, options):
        """The table of the feature's statistics (a bundle's, or adapt()'s)."""
        self.set_table(encoding_table(stats, options))

    @property
    def table(self):
        """The table, a float32 array (None until set)."""
        return None if self._table is None else self._table.numpy()

    @property
    def width(self):
        if self._table is None:
            raise ValueError(
                f"TargetEncoding {self.name!r} has no table yet: build it from a bundle "
                "(FeatureSpace.from_artifacts) or adapt() its FeatureSpace"
            )
        return int(self._table.shape[1])

    def call(self, inputs):
        width = self.width
        indices = tf.cast(tf.convert_to_tensor(inputs), tf.int64)
        rows = tf.gather(self._table, indices)  # (rows, values, width)
        if self.mask_index is None:
            return rows[:, 0, :]  # (keeps the static row count keras' one-row calls need)
        present = tf.cast(tf.not_equal(indices, self.mask_index), tf.float32)[..., None]
        count = tf.reduce_sum(present, axis=1)
        mean = tf.math.divide_no_nan(tf.reduce_sum(rows * present, axis=1), count)
        return tf.where(count > 0, mean, tf.reshape(self._table[self.mask_index], [1, width]))

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((inputs.shape[0], self.width), dtype="float32")

    def get_config(self):
        table = None
        if self._table is not None:
            values = self.table
            table = {"shape": list(values.shape), "float32_base64": base64.b64encode(values.astype("<f4").tobytes()).decode("ascii")}
        return {**super().get_config(), "table": table, "mask_index": self.mask_index}
