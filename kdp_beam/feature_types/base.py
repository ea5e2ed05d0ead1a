"""The feature-type interface: what one kind of feature is, from declaration to report.

Built-in types and plug-ins implement the same class; everything else (the spec, the fused
analysis, the bundle loader, FeatureSpace, the summary, the report, infer) asks the type
through these methods and knows no type by name. A type module imports neither Keras nor
the analyzers at import time: analysis workers never load TensorFlow, the builder never
loads Beam; each method imports what it needs.

`options` below is always the validated declaration's options (a dict, every option
present); `stats` one feature's statistics as the bundle holds them.
"""

from kdp_beam.errors import SpecError
from kdp_beam.feature_types.options import REQUIRED, is_strict_json, plain, shown


class FeatureType:
    """One kind of feature. Subclass it, set the class attributes, override what differs,
    and register it (kdp_beam.feature_types.register_type).

    Class attributes:
        name: the declaration's "type", and the name of its constructors
            (``kdp_beam.spec.<name>(...)``, ``FeatureSpace.<name>(...)``).
        options: {option: default}, REQUIRED for one without a default; in the order of
            the Python constructor's positional arguments.
        keras_arguments: the positional arguments of ``FeatureSpace.<name>`` before
            ``name``; None (the default): every option, in order, as ``kdp_beam.spec``'s
            constructor takes them. keras.utils.FeatureSpace's own types give keras' order.
        bare_defaults: {option: FeatureSpec attribute} an option takes from the spec when
            the feature is declared by its bare name (a hashed type takes
            ``hashing_dim`` bins).
        encoding_options: the options the statistics never depend on, which only shape
            the encoding (output_mode, a fill value...): code building a model from a
            bundle may choose them differently from the bundle's declaration; every other
            option must agree (compared_options).
        missing_causes: ((statistic, word), ...) of the values the model treats as
            missing, which add up to the bundle's missing_count: nulls (empty strings
            included) and NaN; a type whose analyzers count another cause adds it.
        infer_rank: the order in which `kdp-beam infer` asks types to propose themselves
            for a column (lower first); None: never proposed.
    """

    name = None
    options = {}
    keras_arguments = None
    bare_defaults = {}
    encoding_options = ()
    missing_causes = (("null_count", "null"), ("nan_count", "NaN"))
    infer_rank = None

    # --- the declaration --------------------------------------------------------------

    def declare(self, options):
        """The options with defaults filled in, checked (SpecError naming the argument);
        numpy values read as the Python values they hold, as keras takes them."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise SpecError(f"unknown argument(s) {unknown}; accepted: {sorted(self.options)}")
        merged = {**self.options, **{option: plain(value) for option, value in options.items()}}
        missing = [k for k, v in merged.items() if v is REQUIRED]
        if missing:
            raise SpecError(f"argument(s) {missing} are required")
        # The bundle's manifest holds the declaration as strict JSON (no NaN or inf).
        for option, value in merged.items():
            if not is_strict_json(value):
                raise SpecError(f"{option} must be a JSON value (finite numbers), got {shown(value)}")
        return self.validate(merged)

    def validate(self, options):
        """Checks and normalises the options (every one present); returns them."""
        return options

    def column_kind(self, options):
        """What the values are: "float" (float64), "integer" (int64) or "string"."""
        raise NotImplementedError

    def read_kind(self, options):
        """How readers read the column (kdp_beam.columns.read_problem's kinds): the
        column kind, "list<KIND>" for a multivalent feature's list of them
        (kdp_beam.feature_types.multivalent), or "date" for text that may also come as
        typed timestamps."""
        from kdp_beam.feature_types.multivalent import is_multivalent, list_kind

        kind = self.column_kind(options)
        return list_kind(kind) if is_multivalent(options) else kind

    def crossable(self, options):
        """Whether a cross can take it: its preprocessor gives one integer or string."""
        return False

    def compared_options(self, options):
        """The options a model built from a bundle must share with the bundle's
        declaration: all but the encoding_options, so a new option is compared unless its
        type says the statistics do not depend on it."""
        return [option for option in options if option not in self.encoding_options]

    # --- the analysis -----------------------------------------------------------------

    def analyzers(self, options, profile=False):
        """{stable key: analyzer} the pass computes for the feature (kdp_beam.analyzers'
        four verbs). Counts for every feature; moments of numbers (and, with `profile`,
        their distribution sketch for reports). Written for one value per row: for a
        multivalent feature the pass feeds them every value of its lists, and adds the
        rows' own statistics (kdp_beam.analyzers.dataset.feature_analyzers)."""
        from kdp_beam.analyzers.counts import CountAnalyzer
        from kdp_beam.analyzers.moments import MomentsAnalyzer
        from kdp_beam.analyzers.quantiles import ProfileAnalyzer

        found = {"counts": CountAnalyzer()}
        if self.column_kind(options) != "string":
            found["moments"] = MomentsAnalyzer()
            if profile:
                found["profile"] = ProfileAnalyzer()
        return found

    # --- the bundle -------------------------------------------------------------------

    def vocabulary_columns(self, options):
        """The columns of its vocabulary file in the bundle ("vocabulary" first), or ()
        when it has none."""
        return ()

    def check_statistics(self, stats, options, profile=False):
        """The loader's check of its statistics (a kdp_beam.bundle.checks.Statistics):
        fails naming the key when a value is impossible. The counts and, for numbers, the
        moments; for a multivalent feature, its values per row; a type adds its own."""
        from kdp_beam.bundle import checks
        from kdp_beam.feature_types.multivalent import is_multivalent

        if self.column_kind(options) != "string":  # as analyzers() decides, without them
            checks.check_moments(stats)
            if profile:
                checks.check_profile(stats)
        if is_multivalent(options):  # as kdp_beam.analyzers.dataset.feature_analyzers adds it
            checks.check_values_per_row(stats)

    # --- the Keras model --------------------------------------------------------------

    def keras_feature(self, feature_space, name, options):
        """Its FeatureSpace feature record (``feature_space.feature(...)``, with
        ``declaration=`` set), its preprocessor unadapted (set_statistics sets it); layers
        are named ``f"{name}_..."``."""
        raise NotImplementedError(
            f"feature type {self.name!r} ({type(self).__module__}) defines no keras_feature(): "
            "it can be analysed, but no model built from it; define keras_feature (and "
            "set_statistics) to build one"
        )

    def keras_own(self, feature_space, name, options, dtype=None, **policy):
        """The record keras.utils.FeatureSpace's classmethod of this type's name makes (its
        keras_arguments taken from the options), as kdp_beam's: the declaration and the
        missing-value `policy` set, the `dtype` kdp_beam reads (int64 where keras says
        int32). For a type that is one of keras' own."""
        import keras

        made = getattr(keras.utils.FeatureSpace, self.name)(
            name=name, **{arg: options[arg] for arg in self.keras_arguments}
        )
        return feature_space.feature(
            dtype or made.dtype,
            made.preprocessor,
            made.output_mode,
            declaration={"type": self.name, **options},
            **policy,
        )

    def from_keras(self, feature):
        """Its options, when a keras FeatureSpace feature record that carries no kdp_beam
        declaration (one made by keras.utils.FeatureSpace itself, or around a keras
        layer) is of this type; else None."""
        return None

    def set_statistics(self, preprocessor, stats, options):
        """Leaves the preprocessor as its own adapt() would, with the bundle's statistics:
        sets it in place (returns None), or returns a new layer to use instead (one
        constructed with its state, where keras sets that only at construction)."""

    def missing_fill(self, options, feature):
        """(fill, indicator) of the FillMissing layer before its preprocessor, or None for
        none: `fill` replaces a missing value (None until resolved_fill gives it),
        `indicator` adds a 0/1 column."""
        return None

    def resolved_fill(self, stats, options):
        """The fill value once the statistics are known (e.g. the mean); None: as
        missing_fill said."""
        return None

    def beyond_float32(self, stats, options, inputs=False):
        """(statistic, value) of the first statistic the float32 model would hold beyond
        float32, or None (with `inputs`, also input values it could not take)."""
        return None

    # --- people -----------------------------------------------------------------------

    def summary(self, stats, options):
        """The "values" cell of its line in the table `kdp-beam analyze` prints."""
        return ""

    def report_section(self, stats, options):
        """(details, chart): two HTML fragments of its section in `kdp-beam report`
        (kdp_beam.tools.report_parts draws them; every string from the data escaped). By
        default its scalar statistics, and the histogram of a number's distribution when
        `--profile` sketched it."""
        from kdp_beam.tools import report_parts

        shown_stats = [
            (k, v) for k, v in stats.items()
            if k not in ("count", "null_count", "missing_count", "type") and not isinstance(v, (list, dict))
        ]
        return report_parts.rows(shown_stats), report_parts.profile_histogram(stats) or ""

    def propose(self, sample):
        """(declaration, reason) when `kdp-beam infer` should declare the sampled column
        (a kdp_beam.tools.infer.ColumnSample) as this type, else None."""
        return None

    def __repr__(self):
        return f"<feature type {self.name}>"
