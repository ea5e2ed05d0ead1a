"""passthrough: a column fed to the model unchanged (an extension beyond keras)."""

from kdp_beam.feature_types.base import FeatureType
from kdp_beam.feature_types.options import one_of
from kdp_beam.feature_types.registry import register_type

# dtype -> the column kind it is read as.
DTYPES = {"float32": "float", "float64": "float", "int32": "integer", "int64": "integer", "string": "string"}
_CROSSABLE_DTYPES = ("int32", "int64", "string")


@register_type
class Passthrough(FeatureType):
    """A feature fed to the model as is, of `dtype`."""

    name = "passthrough"
    options = {"dtype": "float32"}

    def validate(self, options):
        one_of(options["dtype"], "dtype", DTYPES)
        return options

    def column_kind(self, options):
        return DTYPES[options["dtype"]]

    def crossable(self, options):
        return options["dtype"] in _CROSSABLE_DTYPES

    def keras_feature(self, feature_space, name, options):
        from kdp_beam.builder.keras_internals import identity_layer

        dtype = options["dtype"]
        preprocessor = identity_layer(dtype, f"{name}_preprocessor")
        return feature_space.feature(dtype, preprocessor, "float", declaration={"type": self.name, **options})

    def from_keras(self, feature):
        from kdp_beam.builder.keras_internals import is_identity_layer

        if is_identity_layer(feature.preprocessor) and feature.dtype in DTYPES:
            return {"dtype": feature.dtype}
        return None
