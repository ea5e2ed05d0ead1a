"""kdp_beam's own Keras layers: date encoding and missing values (TensorFlow ops, so they
run inside tf.data pipelines and exported SavedModels like keras' preprocessing layers)."""

import math

import keras
import numpy as np
import tensorflow as tf

from kdp_beam import dates
from kdp_beam.builder import keras_internals
from kdp_beam.feature_types.date import DEFAULT_COMPONENTS


def _flat(inputs):
    return tf.reshape(tf.convert_to_tensor(inputs), [-1])


@keras.saving.register_keras_serializable(package="kdp_beam")
class DateEncoding(keras.layers.Layer):
    """A date or timestamp string -> float32 features, as analysed (kdp_beam.dates).

    Per component: ``year`` -> (year - mean) / std with the pass's statistics; ``month``,
    ``day``, ``day_of_week``, ``day_of_year``, ``hour`` -> sin and cos of their angle on
    their cycle. A missing or unparseable value encodes as 0 everywhere (the mean year, the
    centre of every circle), plus a 1 in the indicator column when ``missing_indicator``.

    Args:
        format: None for ISO 8601, or a strftime-style format (%Y %m %d %H %M %S).
        components: names from kdp_beam.feature_types.date.COMPONENTS, in output order.
        missing_indicator: append a 0/1 column, 1 where the value is missing.
        year_mean, year_std: the year's statistics (set from a bundle or by adapt()).
    """

    def __init__(
        self,
        format=None,  # noqa: A002
        components=tuple(DEFAULT_COMPONENTS),
        missing_indicator=False,
        year_mean=0.0,
        year_std=1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.format = format
        self.components = list(components)
        self.missing_indicator = missing_indicator
        self.year_mean = float(year_mean)
        self.year_std = float(year_std)
        self._pattern = dates.date_pattern(format)
        self._groups = dates.group_names(self._pattern)
        keras_internals.take_inputs_as_given(self)  # strings as given, as StringLookup takes them

    @property
    def width(self):
        cyclical = sum(1 for c in self.components if c != "year")
        return len(self.components) + cyclical + int(self.missing_indicator)

    def set_statistics(self, year_mean, year_variance):
        """The year's mean and variance from the pass (None: no date parsed, identity)."""
        self.year_mean = 0.0 if year_mean is None else float(year_mean)
        # keras Normalization's guard against a constant year.
        std = 1.0 if year_variance is None else math.sqrt(year_variance)
        self.year_std = max(std, keras.backend.epsilon())

    def adapt(self, data):
        """Year statistics from an array or tf.data.Dataset of date strings (one pass)."""
        from kdp_beam.analyzers.dates import DateAnalyzer
        from kdp_beam.io.memory import string_batches

        analyzer = DateAnalyzer(self.format)
        acc = analyzer.create_accumulator()
        for column in string_batches(data):
            acc = analyzer.add_batch(acc, column)
        stats = analyzer.finalize(acc)
        self.set_statistics(stats["year_mean"], stats["year_variance"])

    def call(self, inputs):
        text = _flat(inputs)
        matched = tf.strings.regex_full_match(text, self._pattern)
        # The captured parts as "2024,05,17,08,30,", one column per group.
        rewrite = ",".join(f"\\{i + 1}" for i in range(len(self._groups)))
        placeholder = ",".join("1" for _ in self._groups)  # parses; masked out below
        replaced = tf.strings.regex_replace(text, self._pattern, rewrite)
        fields = tf.strings.split(tf.where(matched, replaced, placeholder), ",")
        fields = fields.to_tensor(default_value="", shape=[None, len(self._groups)])
        parts = {}
        for name in dates.PARTS:
            default = str(dates.DEFAULTS.get(name, 0))
            if name in self._groups:
                column = fields[:, self._groups.index(name)]
                column = tf.where(tf.equal(column, ""), default, column)
                parts[name] = tf.strings.to_number(column, tf.int64)
            else:
                parts[name] = tf.fill(tf.shape(text), tf.constant(int(default), tf.int64))
        valid = matched & dates.is_valid(*(parts[p] for p in dates.PARTS))
        present = tf.cast(valid, tf.float32)
        values = dates.components(parts["year"], parts["month"], parts["day"], parts["hour"])
        columns = []
        for component in self.components:
            if component == "year":  # in float64: a year's float32 spacing is 1e-4
                year = tf.cast(values[component], tf.float64)
                normalised = tf.cast((year - self.year_mean) / self.year_std, tf.float32)
                columns.append(normalised * present)
                continue
            period, start = dates.CYCLES[component]
            angle = tf.cast(values[component] - start, tf.float32) * (2 * math.pi / period)
            columns += [tf.sin(angle) * present, tf.cos(angle) * present]
        if self.missing_indicator:
            columns.append(1.0 - present)
        return tf.stack(columns, axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.width)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((inputs.shape[0], self.width), dtype="float32")

    def get_config(self):
        return {
            **super().get_config(),
            "format": self.format,
            "components": self.components,
            "missing_indicator": self.missing_indicator,
            "year_mean": self.year_mean,
            "year_std": self.year_std,
        }


@keras.saving.register_keras_serializable(package="kdp_beam")
class FillMissing(keras.layers.Layer):
    """Replaces missing values before a feature's preprocessor: NaN in a number by
    ``fill_value``, or the empty string by ``fill_value`` (a string categorical's
    missing_token). With ``indicator``, returns ``(filled, 0/1 float32 column)``."""

    def __init__(self, fill_value, indicator=False, **kwargs):
        super().__init__(**kwargs)
        self.fill_value = fill_value
        self.indicator = indicator
        keras_internals.take_inputs_as_given(self)  # no float64 autocast to float32

    def call(self, inputs):
        x = tf.convert_to_tensor(inputs)
        if x.dtype == tf.string:
            missing = tf.equal(x, "")
        else:
            missing = tf.math.is_nan(x)
        if self.fill_value is None:  # not adapted yet: missing values pass through
            filled = x
        else:
            filled = tf.where(missing, tf.constant(self.fill_value, x.dtype), x)
        if self.indicator:
            return filled, tf.cast(missing, tf.float32)
        return filled

    def compute_output_spec(self, inputs):
        filled = keras.KerasTensor(inputs.shape, dtype=inputs.dtype)
        if self.indicator:
            return filled, keras.KerasTensor(inputs.shape, dtype="float32")
        return filled

    def get_config(self):
        return {**super().get_config(), "fill_value": self.fill_value, "indicator": self.indicator}


@keras.saving.register_keras_serializable(package="kdp_beam")
class TextVectorization(keras.layers.TextVectorization):
    """keras TextVectorization whose symbolic output shape matches what it computes on
    FeatureSpace's (batch, 1) string inputs (keras declares (batch, 1, tokens) there when it
    splits, and returns (batch, tokens), which breaks the feature space's concatenation)."""

    def compute_output_shape(self, input_shape):
        # It computes on (batch, 1) as on (batch,), split or not (and keras' shape for
        # (batch,) is right either way).
        if len(input_shape) == 2 and input_shape[-1] == 1:
            input_shape = input_shape[:1]
        return super().compute_output_shape(input_shape)


def idf_weights(document_counts, document_count):
    """tf_idf weights as keras IndexLookup.adapt computes them: log(1 + N / (1 + df))."""
    counts = np.asarray(document_counts, dtype=np.float64)
    return np.log(1.0 + document_count / (1.0 + counts)).astype(np.float32)


# --- multivalent features: a dense (rows, values) input padded with "" / NaN / pad_value ----


def present_values(values, pad_value=None):
    """Where a padded list input holds a value: not "" (strings), not NaN (numbers), not
    `pad_value` (integers). A missing element and the padding are the same there."""
    if values.dtype == tf.string:
        return tf.not_equal(values, "")
    if values.dtype.is_floating:
        return tf.logical_not(tf.math.is_nan(values))
    return tf.not_equal(values, tf.constant(pad_value, values.dtype))


def _list_spec(shape, dtype):
    return keras.KerasTensor(tuple(shape), dtype=dtype)


@keras.saving.register_keras_serializable(package="kdp_beam")
class FillEmptyRows(keras.layers.Layer):
    """A number list's missing-value policy, before its preprocessor: a row with no value
    (no non-NaN element) gets one, ``fill_value``, in a column appended to the padded
    input, so that it pools to what a missing scalar encodes to. With ``indicator``,
    returns ``(values, 0/1 float32 column)``, 1 where the row had no value.

    Args:
        fill_value: the value a row with no value pools from (the mean, or the declared
            fill_value); None: no column added (not adapted yet, or a sequence output).
        indicator: also return the 0/1 column.
    """

    def __init__(self, fill_value, indicator=False, **kwargs):
        super().__init__(**kwargs)
        self.fill_value = fill_value
        self.indicator = indicator
        keras_internals.take_inputs_as_given(self)

    def call(self, inputs):
        x = tf.convert_to_tensor(inputs)
        empty = tf.logical_not(tf.reduce_any(present_values(x), axis=1, keepdims=True))
        if self.fill_value is not None:
            column = tf.where(empty, tf.constant(self.fill_value, x.dtype), tf.constant(math.nan, x.dtype))
            x = tf.concat([x, column], axis=1)
        if self.indicator:
            return x, tf.cast(empty, tf.float32)
        return x

    def compute_output_spec(self, inputs):
        width = inputs.shape[1]
        if self.fill_value is not None and width is not None:
            width += 1
        filled = _list_spec((inputs.shape[0], width), inputs.dtype)
        if self.indicator:
            return filled, _list_spec((inputs.shape[0], 1), "float32")
        return filled

    def get_config(self):
        return {**super().get_config(), "fill_value": self.fill_value, "indicator": self.indicator}


@keras.saving.register_keras_serializable(package="kdp_beam")
class ToFloat32(keras.layers.Layer):
    """A list lookup's row encoding as float32: called on ``[values, encoded]`` as
    PoolValues, returns ``encoded`` cast. keras' StringLookup and IntegerLookup compute a
    multi_hot or count output as int64 though they declare float32 (keras 3.15); a list's
    encoding is float32, as a scalar's one_hot is, whatever the keras version does."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        keras_internals.take_inputs_as_given(self)

    def call(self, inputs):
        return tf.cast(inputs[1], tf.float32)

    def compute_output_spec(self, inputs):
        return _list_spec(inputs[1].shape, "float32")


@keras.saving.register_keras_serializable(package="kdp_beam")
class PoolValues(keras.layers.Layer):
    """One row's encoding from its values' encodings: called on ``[values, encoded]``, the
    padded list input and its preprocessor's output, position by position.

    Without ``depth``, ``encoded`` is a float per value, and the row's is their ``pooling``
    ("mean", "sum" or "max") over the positions that hold a value: (rows, 1). With
    ``depth``, ``encoded`` is an index in [0, depth) per value (a hashed bin, a
    discretization bin), one-hot encoded and pooled: "sum" counts each index, "max" is
    multi_hot, "mean" the share of the row's values: (rows, depth). Positions with no value
    (padding, missing elements) never count; a row with none encodes as all zeros.

    Args:
        pooling: "mean", "sum" or "max".
        depth: None (a float per value), or the number of indices.
        pad_value: an integer list's padding (None for strings and numbers).
    """

    def __init__(self, pooling, depth=None, pad_value=None, **kwargs):
        super().__init__(**kwargs)
        if pooling not in ("mean", "sum", "max"):
            raise ValueError(f"PoolValues: pooling must be 'mean', 'sum' or 'max'. Received: pooling={pooling!r}")
        self.pooling = pooling
        self.depth = depth
        self.pad_value = pad_value
        keras_internals.take_inputs_as_given(self)

    def call(self, inputs):
        values, encoded = (tf.convert_to_tensor(x) for x in inputs)
        present = present_values(values, self.pad_value)
        count = tf.reduce_sum(tf.cast(present, tf.float32), axis=1, keepdims=True)
        if self.depth is not None:
            # Positions with no value count in an extra last index, dropped.
            indices = tf.where(present, tf.cast(encoded, tf.int64), tf.constant(self.depth, tf.int64))
            counts = tf.math.bincount(indices, minlength=self.depth + 1, maxlength=self.depth + 1, axis=-1)
            # bincount loses the static row count, which keras' call of one row (a scalar
            # beside, inside tf.data) needs to drop the batch axis as it does for the others.
            counts.set_shape([values.shape[0], self.depth + 1])
            counts = tf.cast(counts[:, : self.depth], tf.float32)
            if self.pooling == "sum":
                return counts
            if self.pooling == "max":
                return tf.minimum(counts, 1.0)
            return tf.math.divide_no_nan(counts, count)
        encoded = tf.cast(encoded, tf.float32)
        if self.pooling == "max":
            pooled = tf.reduce_max(tf.where(present, encoded, -math.inf), axis=1, keepdims=True)
            return tf.where(count > 0, pooled, 0.0)
        total = tf.reduce_sum(tf.where(present, encoded, 0.0), axis=1, keepdims=True)
        return total if self.pooling == "sum" else tf.math.divide_no_nan(total, count)

    def compute_output_spec(self, inputs):
        return _list_spec((inputs[0].shape[0], self.depth or 1), "float32")

    def get_config(self):
        return {**super().get_config(), "pooling": self.pooling, "depth": self.depth, "pad_value": self.pad_value}


@keras.saving.register_keras_serializable(package="kdp_beam")
class PadValues(keras.layers.Layer):
    """A row's values' encodings in order, truncated or padded to ``sequence_length``:
    called on ``[values, encoded]`` as PoolValues. A position with no value (padding, a
    missing element, beyond the row's end) holds 0.

    Args:
        sequence_length: positions kept, the first ones.
        depth: None (one number per position), or a one-hot of ``depth`` indices per
            position (a discretization bin): (rows, sequence_length * depth), position-major.
        shift: added to each value's encoding (1: bins 0.. become indices 1.., 0 padding).
        mask: also return a (rows, sequence_length) float32 0/1 mask, 1 where a value is.
        pad_value: an integer list's padding (None for strings and numbers).
    """

    def __init__(self, sequence_length, depth=None, shift=0, mask=False, pad_value=None, **kwargs):
        super().__init__(**kwargs)
        self.sequence_length = int(sequence_length)
        self.depth = depth
        self.shift = shift
        self.mask = mask
        self.pad_value = pad_value
        keras_internals.take_inputs_as_given(self)

    def _fixed_width(self, x):
        """`x` (rows, values) truncated or zero-padded to sequence_length columns."""
        x = x[:, : self.sequence_length]
        missing = self.sequence_length - tf.shape(x)[1]
        x = tf.pad(x, [[0, 0], [0, missing]])
        return tf.ensure_shape(x, [None, self.sequence_length])

    def call(self, inputs):
        values, encoded = (tf.convert_to_tensor(x) for x in inputs)
        present = self._fixed_width(tf.cast(present_values(values, self.pad_value), tf.int32)) > 0
        encoded = self._fixed_width(encoded)
        if self.depth is not None:
            hot = tf.one_hot(tf.where(present, tf.cast(encoded, tf.int64), -1), self.depth, dtype=tf.float32)
            output = tf.reshape(hot, [-1, self.sequence_length * self.depth])
        else:
            output = tf.where(present, encoded + tf.cast(self.shift, encoded.dtype), tf.zeros_like(encoded))
        if self.mask:
            return output, tf.cast(present, tf.float32)
        return output

    def compute_output_spec(self, inputs):
        rows = inputs[0].shape[0]
        if self.depth is not None:
            output = _list_spec((rows, self.sequence_length * self.depth), "float32")
        else:
            output = _list_spec((rows, self.sequence_length), inputs[1].dtype)
        if self.mask:
            return output, _list_spec((rows, self.sequence_length), "float32")
        return output

    def get_config(self):
        return {
            **super().get_config(),
            "sequence_length": self.sequence_length,
            "depth": self.depth,
            "shift": self.shift,
            "mask": self.mask,
            "pad_value": self.pad_value,
        }
