"""date: an ISO 8601 (or `format`, strftime-style) date or timestamp, encoded by kdp_beam's
DateEncoding layer as the normalised year and sin/cos of its cyclical components (an
extension beyond keras.utils.FeatureSpace)."""

from kdp_beam.errors import SpecError
from kdp_beam.feature_types.base import FeatureType
from kdp_beam.feature_types.options import boolean, shown
from kdp_beam.feature_types.registry import register_type

COMPONENTS = ("year", "month", "day", "day_of_week", "day_of_year", "hour")
DEFAULT_COMPONENTS = ["year", "month", "day", "day_of_week", "day_of_year"]


@register_type
class Date(FeatureType):
    """A date or timestamp; a missing or unparseable value encodes as 0 everywhere, plus a
    1 in the indicator column with missing_indicator."""

    name = "date"
    options = {"format": None, "components": DEFAULT_COMPONENTS, "missing_indicator": False}
    encoding_options = ("components", "missing_indicator")
    missing_causes = (*FeatureType.missing_causes, ("unparseable_count", "unparseable"))
    infer_rank = 10

    def validate(self, options):
        from kdp_beam.dates import date_pattern  # validates the format

        components = options["components"]
        if components is None:  # the constructors' default
            components = DEFAULT_COMPONENTS
        if (
            not isinstance(components, (list, tuple))
            or not components
            or not all(isinstance(c, str) and c in COMPONENTS for c in components)
            or len(set(components)) != len(components)
        ):
            raise SpecError(f"components must be distinct names from {COMPONENTS}, got {shown(components)}")
        options["components"] = list(components)
        boolean(options["missing_indicator"], "missing_indicator")
        try:
            date_pattern(options["format"])
        except SpecError as e:
            raise SpecError(str(e).removeprefix("date: ")) from None
        return options

    def column_kind(self, options):
        return "string"

    def read_kind(self, options):
        # ISO text also comes as typed timestamps and dates; a format describes text only.
        return "date" if options["format"] is None else "string"

    def analyzers(self, options, profile=False):
        from kdp_beam.analyzers.dates import DateAnalyzer

        found = super().analyzers(options, profile)
        found["date"] = DateAnalyzer(options["format"])
        return found

    def check_statistics(self, stats, options, profile=False):
        from kdp_beam.bundle import checks

        super().check_statistics(stats, options, profile)
        checks.check_date(stats)

    def keras_feature(self, feature_space, name, options):
        from kdp_beam.builder.layers import DateEncoding

        preprocessor = DateEncoding(
            format=options["format"],
            components=options["components"],
            missing_indicator=options["missing_indicator"],
            name=f"{name}_preprocessor",
        )
        return feature_space.feature("string", preprocessor, "float", declaration={"type": self.name, **options})

    def from_keras(self, feature):
        from kdp_beam.builder.layers import DateEncoding

        p = feature.preprocessor
        if isinstance(p, DateEncoding):
            return {"format": p.format, "components": p.components, "missing_indicator": p.missing_indicator}
        return None

    def set_statistics(self, preprocessor, stats, options):
        preprocessor.set_statistics(stats["year_mean"], stats["year_variance"])

    def summary(self, stats, options):
        return f"{stats['min_date'] or '-'} .. {stats['max_date'] or '-'}"

    def report_section(self, stats, options):
        import math

        from kdp_beam.tools import report_parts

        std = None if stats["year_variance"] is None else math.sqrt(stats["year_variance"])
        pairs = [
            ("first", stats["min_date"]),
            ("last", stats["max_date"]),
            ("unparseable", stats["unparseable_count"]),
            ("year mean", stats["year_mean"]),
            ("year std", std),
        ]
        return report_parts.rows(pairs), ""

    def propose(self, sample):
        import pyarrow as pa

        if pa.types.is_timestamp(sample.kind) or pa.types.is_date(sample.kind):
            return self.name, f"{sample.kind} values ({sample.share}): a date, read as ISO text"
        share = sample.iso_date_share
        if share is not None and share >= 0.95:
            return self.name, f"{share:.0%} of {sample.n:,} values parse as ISO dates"
        return None
