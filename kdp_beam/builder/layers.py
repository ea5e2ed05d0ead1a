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
