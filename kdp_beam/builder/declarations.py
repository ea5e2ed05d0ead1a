"""Between kdp_beam declarations and keras.utils.FeatureSpace features, both ways, for any
registered feature type (kdp_beam.feature_types)."""

from kdp_beam import spec as kspec
from kdp_beam.builder.names import layer_name
from kdp_beam.errors import BundleError, SpecError
from kdp_beam.feature_types import registered_types
from kdp_beam.feature_types.label_aware import needs_label


def keras_feature(feature_space_class, name, declaration):
    """The FeatureSpace feature (an unadapted preprocessor) for a declaration, its layers
    named after layer_name(name), which any column name has."""
    return declaration.kind.keras_feature(feature_space_class, layer_name(name), declaration.options)


def declaration_of(name, feature):
    """The kdp_beam declaration of a keras FeatureSpace feature: the one it carries when
    kdp_beam made it, else the first type that recognises its preprocessor.

    Returns None for a preprocessor no type knows (adapted the keras way). Raises SpecError
    naming the feature when its options are invalid.
    """
    try:
        carried = getattr(feature, "declaration", None)
        if carried is not None:
            return kspec.declared(dict(carried), None)  # a JSON object: no bare sizes
        for kind in registered_types():
            options = kind.from_keras(feature)
            if options is not None:
                return kspec.Feature(kind.name, **options)
    except SpecError as e:
        raise SpecError(f"feature {name!r}: {e}") from None
    return None


# What spec_of names the label of a FeatureSpace given none, whose features use one:
# FeatureSpace(...) takes the label then, or adapt(label=...) later. Not a column name
# (a column named so would be refused as a feature beside it).
LABEL_AT_ADAPT = "<the label given to adapt()>"


def spec_of(feature_space, label_at_adapt=False):
    """The FeatureSpec of a keras FeatureSpace's features, crosses and label (features no
    type knows, and crosses of them, left out); None when no type knows any feature.

    `label_at_adapt`: a FeatureSpace without a label whose features use one is checked as
    if it had one (its label comes with adapt()); else that is a SpecError."""
    declarations = {}
    for name, feature in feature_space.features.items():
        declaration = declaration_of(name, feature)
        if declaration is not None:
            declarations[name] = declaration
    if not declarations:
        return None
    crosses = [
        kspec.Cross(c.feature_names, c.crossing_dim, c.output_mode)
        for c in feature_space.crosses
        if all(name in declarations for name in c.feature_names)
    ]
    label, label_type, fold_key = (getattr(feature_space, a, None) for a in ("label", "label_type", "fold_key"))
    if label is None:
        aware = [name for name, d in declarations.items() if needs_label(d.options)]
        if aware and not label_at_adapt:
            raise SpecError(
                f"feature(s) {aware} use the label (output_mode 'target', rank_by "
                "'mutual_information' or folds): give its column, FeatureSpace(..., label=COLUMN) "
                "or adapt(data, label=COLUMN)"
            )
        if label_at_adapt and (aware or label_type is not None or fold_key is not None):
            label = LABEL_AT_ADAPT
    return kspec.FeatureSpec(
        declarations,
        crosses=crosses,
        output_mode=feature_space.output_mode,
        crossing_dim=feature_space.crossing_dim,
        hashing_dim=feature_space.hashing_dim,
        num_discretization_bins=feature_space.num_discretization_bins,
        label=label,
        label_type=label_type,
        fold_key=fold_key,
    )


def check_compatible(name, code_declaration, bundle_spec, source):
    """Raises BundleError when the bundle did not analyse `name` as the code declares it:
    another type, or another value of any option the type compares (every option that
    changes the statistics or the encoding: FeatureType.compared_options)."""
    if name not in bundle_spec.features:
        raise BundleError(
            f"feature {name!r} is not in the bundle at {source}; it has "
            f"{sorted(bundle_spec.features)}. Re-run the analysis with this feature declared."
        )
    analysed = bundle_spec.features[name]
    if analysed.type != code_declaration.type:
        raise BundleError(
            f"feature {name!r} is declared {code_declaration.type} here, but the bundle at "
            f"{source} analysed it as {analysed.type}. Re-run the analysis or fix the code."
        )
    for option in code_declaration.kind.compared_options(code_declaration.options):
        here, there = code_declaration.options.get(option), analysed.options.get(option)
        if here != there:
            raise BundleError(
                f"feature {name!r}: {option}={here!r} here, but the bundle at {source} was "
                f"analysed with {option}={there!r}. Re-run the analysis or fix the code."
            )
