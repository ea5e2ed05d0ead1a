"""kdp_beam.FeatureSpace: keras.utils.FeatureSpace with one-pass statistics."""

import logging
import tempfile

import keras

from kdp_beam.artifacts import Bundle, load_bundle
from kdp_beam.builder.data import record_batches
from kdp_beam.builder.declarations import (
    check_compatible,
    declaration_of,
    keras_feature,
    spec_of,
)
from kdp_beam.builder.layer_state import set_statistics

# Not exported by keras; the identity preprocessor FeatureSpace.float() uses.
from keras.src.layers.preprocessing.feature_space import TFDIdentity
from keras.src.utils.naming import auto_name

_LOG = logging.getLogger(__name__)


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
    - ``FeatureSpace.passthrough(dtype)`` declares a feature fed to the model as is.

    Statistics go into the standard keras layers (Normalization, Discretization,
    StringLookup, IntegerLookup, ...). To load a saved one, import this class first
    (``from kdp_beam import FeatureSpace`` registers it as ``kdp_beam>FeatureSpace``;
    it imports neither Beam nor the analysis code), then ``keras.models.load_model``.
    """

    @classmethod
    def passthrough(cls, dtype="float32", name=None):
        """A feature fed to the model unchanged (an extension beyond keras)."""
        name = name or auto_name("passthrough")
        preprocessor = TFDIdentity(dtype=dtype, name=f"{name}_preprocessor")
        return cls.feature(dtype=dtype, preprocessor=preprocessor, output_mode="float")

    @classmethod
    def from_artifacts(cls, path, features=None, crosses=None, output_mode=None, **kwargs):
        """An adapted FeatureSpace from a bundle directory (local, gs://, s3://).

        Args:
            path: the bundle directory, or a loaded kdp_beam.artifacts.Bundle.
            features: None to take every feature as the bundle declares it; or a dict as
                for FeatureSpace (the code's own declarations), each of which must have
                been analysed the same way in the bundle.
            crosses: crosses as for FeatureSpace; None takes the bundle's when `features`
                is None.
            output_mode: "concat" or "dict"; None takes the bundle's.
            **kwargs: other FeatureSpace arguments (crossing_dim, hashing_dim, name, ...).
        Raises:
            BundleError: the bundle is missing or damaged, or a feature is absent from it
                or was analysed differently (type, bins, max_tokens, ...).
        """
        bundle = path if isinstance(path, Bundle) else load_bundle(path)
        spec = bundle.spec
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

    def adapt(self, dataset, pipeline_args=None, input_format=None):
        """Computes every feature's statistics in one pass over `dataset`.

        Args:
            dataset: a tf.data.Dataset of dicts, a dict of arrays/lists, a pandas
                DataFrame, or a file pattern (str or list of str) of CSV/Parquet files.
            pipeline_args: Beam options for a file pattern (default: the local runner).
            input_format: "csv" or "parquet" for a file pattern (default: by extension).
        """
        spec = spec_of(self)
        custom = [n for n in self._list_adaptable_preprocessors() if n not in spec.features]
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
        if is_pattern:
            from kdp_beam.job import run_analysis

            with tempfile.TemporaryDirectory(prefix="kdp_beam_adapt_") as bundle_dir:
                run_analysis(spec, dataset, bundle_dir, input_format, pipeline_args or [])
                statistics = load_bundle(bundle_dir).features
        else:
            from kdp_beam.analyzers import analyze_batches

            statistics = analyze_batches(spec, record_batches(dataset, spec))["features"]
        self._set_statistics(statistics, finish=not custom)
        if custom:
            # Layers kdp_beam has no analyzer for are adapted the keras way, one pass each.
            _LOG.warning("kdp_beam: adapting %s with keras' per-feature adapt()", custom)
            if type(dataset).__name__ == "DataFrame":
                dataset = {name: dataset[name].to_numpy() for name in dataset.columns}
            self._adapt_only = custom
            try:
                super().adapt(dataset)
            finally:
                del self._adapt_only

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
            set_statistics(self.preprocessors[name], statistics[name])
        if not finish:
            return
        # What keras' FeatureSpace.adapt does once its layers are adapted.
        self._is_adapted = True
        self.get_encoded_features()
        self.built = True
        self._sublayers_built = True
