"""kdp_beam.FeatureSpace: keras.utils.FeatureSpace with one-pass statistics."""

import logging
import tempfile

import keras
import tensorflow as tf

from kdp_beam.builder import keras_internals
from kdp_beam.bundle.loader import Bundle, load_bundle
from kdp_beam.io.memory import record_batches
from kdp_beam.builder.declarations import (
    check_compatible,
    declaration_of,
    keras_feature,
    spec_of,
)
from kdp_beam.builder import multivalent
from kdp_beam.builder.inputs import checked_inputs
from kdp_beam.builder.names import auto_name, layer_name
from kdp_beam.errors import BundleError, InputDataError, SpecError
from kdp_beam.feature_types import on_register
from kdp_beam.model_limits import float32_problem, float32_remedy
from kdp_beam.spec import Feature as Declaration
from kdp_beam.spec import bound_arguments, declared

_LOG = logging.getLogger(__name__)
INDICATOR_SUFFIX = "_missing"


@keras.saving.register_keras_serializable(package="kdp_beam")
class Feature(keras_internals.KerasFeature):
    """keras' FeatureSpace feature record plus kdp_beam's missing-value policy.

    Args (beyond keras'):
        fill_value: numbers: what a missing value (NaN, None) becomes; None: the mean.
        missing_indicator: numbers: add a 0/1 column, 1 where the value was missing.
        missing_token: categoricals: what a missing value ("" or None) is looked up as;
            None: the OOV index.
        fill: the resolved fill value (set from the statistics; saved with the model).
        encoder: a kdp_beam layer applied to the preprocessor's output after crosses
            took it, holding statistics of its own (set_statistics(stats, options)), saved
            with the record: a target encoding's TargetEncoding after its lookup's index.
        declaration: the kdp_beam declaration it was made from (a JSON dict with "type"),
            None for records keras made.
        statistic, statistic_options: read from models saved by kdp_beam < 0.3 (a plug-in's
            name and options), as the declaration.
    """

    def __init__(
        self,
        dtype,
        preprocessor,
        output_mode,
        fill_value=None,
        missing_indicator=False,
        missing_token=None,
        fill=None,
        declaration=None,
        statistic=None,
        statistic_options=None,
        encoder=None,
    ):
        super().__init__(dtype, preprocessor, output_mode)
        self.fill_value = fill_value
        self.missing_indicator = missing_indicator
        self.missing_token = missing_token
        self.fill = fill
        if isinstance(encoder, dict):  # as keras' record deserializes its preprocessor
            encoder = keras.saving.deserialize_keras_object(encoder)
        self.encoder = encoder
        if declaration is None and statistic is not None:
            declaration = {"type": statistic, **(statistic_options or {})}
        self.declaration = declaration

    def get_config(self):
        return {
            **super().get_config(),
            "fill_value": self.fill_value,
            "missing_indicator": self.missing_indicator,
            "missing_token": self.missing_token,
            "fill": self.fill,
            "declaration": self.declaration,
            # Only when set: the records of other features keep the config they had.
            **({} if self.encoder is None else {"encoder": keras.saving.serialize_keras_object(self.encoder)}),
        }


@keras.saving.register_keras_serializable(package="kdp_beam")
class FeatureSpace(keras.utils.FeatureSpace):
    """keras.utils.FeatureSpace whose statistics come from one pass, or from a bundle.

    Every constructor, argument, default, method and attribute of keras.utils.FeatureSpace
    is inherited unchanged (it is a subclass), so code written for it keeps working when
    its import changes. What differs:

    - ``adapt(data)`` reads the data once for all features (keras reads it once per
      feature). ``data`` may be a tf.data.Dataset of dicts, a dict of arrays/lists, a
      pandas DataFrame (analysed in this process), or a file pattern of CSV/Parquet files
      (analysed by the Beam pipeline; ``pipeline_args`` are Beam options).
    - ``FeatureSpace.from_artifacts(path)`` builds an adapted FeatureSpace from a bundle
      written by ``kdp-beam analyze``, touching no data.
    - A constructor per registered type (kdp_beam.feature_types): keras' own, with the
      same arguments, kdp_beam's extensions and plug-ins. A feature may also be declared
      as in the features JSON (a type's name, ``{"type": ..., option: value}``) or by a
      kdp_beam.spec declaration.
    - Any column name works ("x/y", "a b", "é"): inputs are keyed by it, layers are named
      by kdp_beam.builder.names.layer_name and kept unique.
    - A call checks every value against its feature and raises an InputDataError naming
      the feature, the dtype, the value and the fix (kdp_beam.builder.inputs); it takes a
      pandas DataFrame as the dict of its columns.
    - A multivalent feature (a list of values per row, kdp_beam.builder.multivalent) takes
      lists of lists, arrays of lists, a tf.RaggedTensor or tf.SparseTensor, or a dense
      (rows, values) tensor padded with "", NaN or its pad_value (the model's input).
    - A categorical or text feature with no value in the data maps everything to OOV.
    - Label-aware features (docs/label-aware.md): ``label=``, ``label_type=`` and
      ``fold_key=`` (constructor keywords; ``adapt(data, label=...)`` too) name the label
      the analysis reads beside the features. The label is never an input; a call with a
      dict that also holds it ignores it. A categorical with ``output_mode="target"``
      keeps its lookup as preprocessor (crosses take its index) and encodes the index by
      its smoothed label mean (kdp_beam.builder.target.TargetEncoding, ``encoders``).
    - Statistics a float32 model cannot hold (a mean, variance or bin boundary beyond
      ~3.4e38, e.g. of values ~1e50) are refused with an InputDataError naming the feature and
      how to scale it, by from_artifacts and adapt: in the model they would be inf, and
      every output NaN or 0 (kdp_beam.model_limits).

    Statistics go into the standard keras layers (Normalization, Discretization,
    StringLookup, IntegerLookup, ...). To load a saved one, import this class first
    (``from kdp_beam import FeatureSpace`` registers it as ``kdp_beam>FeatureSpace``;
    it imports neither Beam nor the analysis code), then ``keras.models.load_model``.
    """

    # --- constructors: keras' own, plus missing-value options and int64 integers --------

    @classmethod
    def feature(cls, dtype, preprocessor, output_mode, **missing):
        return Feature(dtype, preprocessor, output_mode, **missing)

    def __init__(self, features, *args, label=None, label_type=None, fold_key=None, **kwargs):
        super().__init__(features, *args, **kwargs)
        self.label = label
        self.label_type = label_type
        self.fold_key = fold_key
        self.fill_layers = {}
        self.values_layers = {}  # multivalent features': the row's encoding from its values'
        # Layers after a preprocessor that crosses do not see (a target encoding's).
        self.encoders = {}
        for name, feature in self.features.items():
            declaration = declaration_of(name, feature)
            if declaration is None:
                continue
            options = declaration.options
            encoder = getattr(feature, "encoder", None)
            if encoder is not None:  # it makes the row's encoding of a list, too
                self.encoders[name] = encoder
            elif multivalent.is_list_feature(feature):
                layer = multivalent.values_layer(declaration.kind, options, f"{layer_name(name)}_values")
                self.values_layers[name] = layer
                if getattr(layer, "mask", False):
                    self._check_output_name(name, multivalent.MASK_SUFFIX, "mask")
            policy = declaration.kind.missing_fill(options, feature)
            if policy is None:
                continue
            fill, indicator = policy
            if indicator:
                self._check_output_name(name, INDICATOR_SUFFIX, "missing indicator")
            fill_name = f"{layer_name(name)}_fill_missing"
            self.fill_layers[name] = multivalent.fill_layer(options, fill, indicator, fill_name)
        self._indicator_concat = None
        # A cross no type can take is refused here, as the features JSON refuses it, not by
        # keras' HashedCrossing once from_artifacts has built the layers. (The label may
        # come with adapt().)
        spec_of(self, label_at_adapt=True)

    def get_config(self):
        config = super().get_config()
        if self.label is not None:  # (a FeatureSpace without a label keeps its config)
            config.update(label=self.label, label_type=self.label_type, fold_key=self.fold_key)
        return config

    def _check_output_name(self, name, suffix, what):
        if f"{name}{suffix}" in self.features:
            raise SpecError(
                f"feature {name!r}: its {what} would be named {name + suffix!r}, which is another feature's name"
            )

    def _extra_output_names(self):
        """The outputs beside the features' own, in the order concat mode appends them:
        missing indicators and multivalent sequences' masks, by name."""
        names = [name + INDICATOR_SUFFIX for name, fill in self.fill_layers.items() if fill.indicator]
        names += [
            name + multivalent.MASK_SUFFIX for name, layer in self.values_layers.items() if getattr(layer, "mask", False)
        ]
        return sorted(names)

    @classmethod
    def from_artifacts(cls, path, features=None, crosses=None, output_mode=None, **kwargs):
        """An adapted FeatureSpace from a bundle directory (local, gs://, s3://).

        Args:
            path: the bundle directory, or a loaded kdp_beam.bundle.loader.Bundle.
            features: None to take every feature as the bundle declares it; or a dict as
                for FeatureSpace (the code's own declarations), each of which must have
                been analysed the same way in the bundle.
            crosses: crosses as for FeatureSpace; None takes the bundle's when `features`
                is None.
            output_mode: "concat" or "dict"; None takes the bundle's.
            **kwargs: other FeatureSpace arguments (crossing_dim, hashing_dim, name, ...);
                label, label_type and fold_key are the bundle's (given, they must be).
        Raises:
            BundleError: the bundle is missing or damaged, or a feature is absent from it
                or was analysed differently (type, bins, max_tokens, label, ...), or a
                feature declared output_mode "target" here has no label statistics there.
            InputDataError: a statistic the float32 model would hold is beyond float32.
        """
        bundle = path if isinstance(path, Bundle) else load_bundle(path)
        spec = bundle.spec
        for option in ("label", "label_type", "fold_key"):
            analysed, given = getattr(spec, option), kwargs.pop(option, None)
            if option == "label_type" and analysed is None:  # inferred: as the bundle records it
                analysed = (bundle.label or {}).get("label_type")
            if given is not None and given != analysed:
                raise BundleError(
                    f"{option}={given!r} here, but the bundle at {bundle.path} was analysed with "
                    f"{option}={analysed!r}. Re-run the analysis or fix the code."
                )
            kwargs[option] = getattr(spec, option)
        if features is None:
            features = {
                name: keras_feature(cls, name, declaration)
                for name, declaration in spec.features.items()
            }
            if crosses is None:
                crosses = [cls.cross(c.feature_names, c.crossing_dim, c.output_mode) for c in spec.crosses]
            for option in ("crossing_dim", "hashing_dim", "num_discretization_bins"):
                kwargs.setdefault(option, getattr(spec, option))
        feature_space = cls(
            features, output_mode=output_mode or spec.output_mode, crosses=crosses, **kwargs
        )
        feature_space._set_statistics(bundle.features, bundle_spec=spec, source=bundle.path)
        return feature_space

    def adapt(self, dataset, pipeline_args=None, input_format=None, label=None):
        """Computes every feature's statistics in one pass over `dataset`.

        Args:
            dataset: a tf.data.Dataset of dicts, a dict of arrays/lists, a pandas
                DataFrame, or a file pattern (str or list of str) of CSV/Parquet files.
                With a label: its column beside the features (a dict key, a DataFrame
                column, a file column), or a tf.data.Dataset of (features, label).
            pipeline_args: Beam options for a file pattern (default: the local runner).
            input_format: "csv", "parquet", "tfrecord" or "jsonl" for a file pattern
                (default: by extension).
            label: the label's column, for label-aware features (docs/label-aware.md);
                None: the FeatureSpace's own ``label``. Given, it becomes the
                FeatureSpace's.
        """
        if self.encoded_features is not None and self._list_adaptable_preprocessors():
            # Its one-hot and multi-hot widths are the first vocabularies' (keras builds them
            # once): a new vocabulary would encode into the old widths, or keras refuses it.
            raise SpecError(
                "this FeatureSpace is already adapted and built: its one-hot and multi-hot widths "
                "are its first vocabularies'; build a new FeatureSpace from the same declarations "
                "and adapt that"
            )
        previous, self.label = self.label, self.label if label is None else label
        try:
            spec = spec_of(self)
        except SpecError:
            self.label = previous  # (a refused label, as a feature's name, is not the label)
            raise
        declared = {} if spec is None else spec.features
        custom = [n for n in keras_internals.keras_adaptable(self) if n not in declared]
        is_pattern = isinstance(dataset, str) or (
            isinstance(dataset, (list, tuple)) and dataset and isinstance(dataset[0], str)
        )
        if custom and is_pattern:
            raise NotImplementedError(
                f"feature(s) {custom} use preprocessors kdp_beam has no analyzer for "
                f"({[type(self.preprocessors[n]).__name__ for n in custom]}); adapt() on "
                "files cannot compute their statistics. Adapt those layers yourself, or pass "
                "in-memory data."
            )
        statistics = {}  # none when every preprocessor is the user's own
        if spec is not None and is_pattern:
            from kdp_beam.job import run_analysis

            with tempfile.TemporaryDirectory(prefix="kdp_beam_adapt_") as bundle_dir:
                run_analysis(spec, dataset, bundle_dir, input_format, pipeline_args or [])
                statistics = load_bundle(bundle_dir).features
        elif spec is not None:
            from kdp_beam.analyzers import analyze_batches

            statistics = analyze_batches(spec, record_batches(dataset, spec))["features"]
        self._set_statistics(statistics, finish=not custom)
        if custom:
            # Layers kdp_beam has no analyzer for are adapted the keras way, one pass each.
            _LOG.warning("kdp_beam: adapting %s with keras' per-feature adapt()", custom)
            if type(dataset).__name__ == "DataFrame":
                dataset = {name: dataset[name].to_numpy() for name in dataset.columns}
            if isinstance(dataset, dict):  # as keras 3.15 does; earlier ones refuse a dict
                dataset = tf.data.Dataset.from_tensor_slices(dataset)
            self._adapt_the_keras_way(dataset, custom)

    def _adapt_the_keras_way(self, dataset, names):
        """keras' own FeatureSpace.adapt over the preprocessors `names` only; with none, what
        it does once its layers are adapted (marks the space adapted, builds it), no data read."""
        self._adapt_only = names
        try:
            super().adapt(dataset)
        finally:
            del self._adapt_only

    # --- layer names: any column name; inputs keep it as their key --------------------------

    def _standardize_feature(self, name, feature):
        # Declared as in the features JSON (keras' own dicts, saved configs, have no "type").
        if isinstance(feature, (str, Declaration)) or (isinstance(feature, dict) and "type" in feature):
            try:
                declaration = declared(feature, self)
            except SpecError as e:
                raise SpecError(f"feature {name!r}: {e}") from None
            return keras_feature(type(self), name, declaration)
        return super()._standardize_feature(layer_name(name), feature)

    def _feature_to_input(self, name, feature):
        # Named as its layer, kept unique ignoring case (model.export() names the serving
        # signature's inputs so); get_inputs() keys it by the column name. A multivalent
        # feature's: (rows, values), padded (kdp_beam.builder.multivalent).
        shape = (None,) if multivalent.is_list_feature(feature) else (1,)
        return keras.Input(shape=shape, dtype=feature.dtype, name=layer_name(name, self.features))

    def _cross_to_crosser(self, cross):
        return keras.layers.HashedCrossing(cross.crossing_dim, name=layer_name(cross.name))

    def get_encoded_features(self):
        built = self.encoded_features is not None
        encoded = super().get_encoded_features()
        if not built:
            self._make_layer_names_unique()
        return encoded

    def _make_layer_names_unique(self):
        """Renames the layers whose name an input or an earlier layer has (a column named
        "a_fill_missing" beside "a", or like keras' "category_encoding"): a functional model
        needs unique names. The order is fixed, so a reloaded model gets the same names."""
        taken = {layer_name(name, self.inputs) for name in self.inputs}
        named = [
            *self.fill_layers.values(),
            *self.preprocessors.values(),
            *self.values_layers.values(),
            *self.encoders.values(),
            *self.crossers.values(),
            *self.one_hot_encoders.values(),
            self.concat,
            self._indicator_concat,
        ]
        for layer in filter(None, named):
            name, suffix = layer.name, 1
            while name in taken:
                name, suffix = f"{layer.name}_{suffix}", suffix + 1
            layer.name = name
            taken.add(name)

    # --- missing values: filled before each preprocessor, indicators after the merge ------

    def __call__(self, data):
        one_row = False
        frame = type(data).__name__ == "DataFrame" and hasattr(data, "columns")
        if frame:  # of lists, too
            data = {name: data[name].to_numpy() for name in data.columns}
        if isinstance(data, dict):  # (keras refuses anything else, as before)
            # A row's label (and fold key) may come with its features: never an input.
            ignored = {self.label, self.fold_key} - {None}
            data = {name: value for name, value in data.items() if name not in ignored}
            data, one_row = checked_inputs(self.features, data, columns=frame)
        merged = super().__call__(data)
        if one_row and not any(len(x.shape) == 0 for x in data.values()):
            # One row of a list (a 1-D value, as an unbatched tf.data element gives): its
            # batch axis goes, as keras drops it for a scalar (when one is there, keras did).
            if self.output_mode == "concat":
                return tf.squeeze(merged, axis=0)
            return {name: tf.squeeze(x, axis=0) for name, x in merged.items()}
        return merged

    def _preprocess_features(self, features):
        preprocessed = {}
        for name, x in features.items():
            fill = self.fill_layers.get(name)
            if fill is not None:
                x = fill(x)
                if fill.indicator:
                    x, preprocessed[name + INDICATOR_SUFFIX] = x
            encoded = self.preprocessors[name](x)
            values = self.values_layers.get(name)
            if values is not None:
                encoded = values([x, encoded])
                if getattr(values, "mask", False):
                    encoded, preprocessed[name + multivalent.MASK_SUFFIX] = encoded
            preprocessed[name] = encoded
        return preprocessed

    def _merge_features(self, preprocessed_features, crossed_features):
        # The crosses took the preprocessors' outputs (a target feature's index); the
        # encoders make the features' own outputs of them.
        preprocessed_features = {
            name: self.encoders[name](x) if name in self.encoders else x for name, x in preprocessed_features.items()
        }
        indicator_names = self._extra_output_names()
        if not indicator_names:
            return super()._merge_features(preprocessed_features, crossed_features)
        features = dict(preprocessed_features)
        indicators = [features.pop(name) for name in indicator_names]
        merged = super()._merge_features(features, crossed_features)
        if self.output_mode == "dict":
            return {**merged, **dict(zip(indicator_names, indicators))}
        # Indicator and mask columns come after keras' concatenation, in name order, joined by a layer
        # of the class keras just concatenated with (a DataLayer, which keeps working inside
        # tf.data on any backend, as keras.layers.Concatenate does not; keras exports none).
        if self._indicator_concat is None:
            self._indicator_concat = type(self.concat)(axis=-1)
        return self._indicator_concat([merged, *indicators])

    def _list_adaptable_preprocessors(self):
        only = getattr(self, "_adapt_only", None)
        return only if only is not None else super()._list_adaptable_preprocessors()

    def _set_statistics(self, statistics, bundle_spec=None, source=None, finish=True):
        for name, feature in self.features.items():
            declaration = declaration_of(name, feature)
            if declaration is None:
                continue  # a custom preprocessor, adapted (or not adaptable) by the user
            if bundle_spec is not None:
                check_compatible(name, declaration, bundle_spec, source)
            kind, options, stats = declaration.kind, declaration.options, statistics[name]
            found = kind.beyond_float32(stats, options)
            if found:  # the data's values, not the declaration, are at fault
                raise InputDataError(
                    f"feature {name!r}: {float32_problem(*found)}, so the model would give NaN "
                    f"or 0 for every row; {float32_remedy(*found)}"
                )
            try:
                layer = kind.set_statistics(self.preprocessors[name], stats, options)
                if name in self.encoders:
                    self.encoders[name].set_statistics(stats, options)
            except (SpecError, BundleError, InputDataError) as e:
                raise type(e)(f"feature {name!r}: {e}") from None
            if layer is not None:  # a new layer holding the statistics (keras_internals.with_vocabulary)
                feature.preprocessor = self.preprocessors[name] = layer
            fill = kind.resolved_fill(stats, options)
            if fill is not None:
                feature.fill = self.fill_layers[name].fill_value = fill
        if not finish:
            return
        self._adapt_the_keras_way(tf.data.Dataset.range(0), [])


def _add_constructor(kind):
    """FeatureSpace.<type name>(...): keras' classmethod for its own types (the same
    positional arguments, then name), kdp_beam's for every other registered type; the
    options are checked as declarations are (SpecError naming the argument).

    Raises SpecError for a plug-in named like an attribute FeatureSpace has (adapt,
    feature, cross...), which its constructor would replace; the built-in types replace
    keras' constructors of their names on purpose."""
    existing = getattr(FeatureSpace, kind.name, None)
    built_in = type(kind).__module__.startswith("kdp_beam.feature_types.")
    if existing is not None and getattr(existing, "feature_type", None) != kind.name and not built_in:
        raise SpecError(
            f"feature type {kind.name!r} ({type(kind).__module__}): FeatureSpace.{kind.name} is "
            "FeatureSpace's own, which its constructor would replace; rename the type"
        )
    arguments = kind.options if kind.keras_arguments is None else kind.keras_arguments
    positional = (*arguments, "name")

    def construct(cls, *args, **kwargs):
        options = bound_arguments(kind.name, positional, args, kwargs)
        name = options.pop("name", None) or auto_name(kind.name)
        declaration = Declaration(kind.name, **options)
        return kind.keras_feature(cls, name, declaration.options)

    construct.__name__ = construct.__qualname__ = kind.name
    construct.__doc__ = kind.__doc__
    construct.feature_type = kind.name
    setattr(FeatureSpace, kind.name, classmethod(construct))


on_register(_add_constructor)
