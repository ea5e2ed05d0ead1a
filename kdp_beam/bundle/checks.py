"""The loader's check of a bundle's statistics: structure and values.

Checksums catch a damaged file, not a consistent edit (a file changed and its checksum
re-signed). This check makes such a bundle fail when it is loaded, with a BundleError
naming the file, the feature and the key, rather than later inside Keras or as NaN in a
model's output. Every rule is one the writer keeps (docs/bundle-format.md). The counts
and the missing count are checked here for every feature; the rest by the feature's type
(FeatureType.check_statistics), with the checks below, from its declaration exactly as
it decides what the pass computes (tests/test_bundle_validation.py checks that the two
agree on every type). Label statistics are checked by kdp_beam.bundle.label_checks.
"""

import datetime
import math
import numbers
import re
from collections import Counter

from kdp_beam.errors import BundleError

INT64_RANGE = (-(2**63), 2**63 - 1)
_SLACK = 1e-9  # relative: a mean or quantile computed in float64 may pass its bound by rounding
_DAMAGED = "the bundle was edited or is damaged. Re-run the analysis."
# A number's shares of its finite values (kdp_beam.analyzers.moments writes them; here, not
# there, so that loading a bundle imports no analyzer).
SHARES = ("zero_fraction", "integer_fraction", "positive_fraction", "negative_fraction")
SHAPE = ("skewness", "kurtosis", *SHARES)  # written together; bundles of kdp_beam 0.4.0 and older have none


def check_document(statistics, spec, file):
    """Checks the top level of statistics.json: row_count, bad_records, and one object per
    declared feature, in declaration order."""
    if not isinstance(statistics, dict) or not isinstance(statistics.get("features"), dict):
        raise BundleError(f'{file}: not a statistics document (an object with "features"); {_DAMAGED}')
    if not _is_count(statistics.get("row_count")):
        row_count = statistics.get("row_count")
        raise BundleError(f"{file}: row_count {row_count!r:.80} is not a count; {_DAMAGED}")
    names, declared = list(statistics["features"]), list(spec.features)
    if names != declared:
        raise BundleError(f"{file}: features {names!r:.300} are not the declared {declared!r:.300}")
    for name, stats in statistics["features"].items():
        if not isinstance(stats, dict):
            raise BundleError(f"{file}: feature {name!r}: {stats!r:.80} is not an object; {_DAMAGED}")
    _check_bad_records(statistics.get("bad_records"), file)


def _check_bad_records(bad, file):
    if bad is None:  # bundles of kdp_beam < 0.2
        return
    by_reason = bad.get("by_reason") if isinstance(bad, dict) else None
    files = bad.get("files", []) if isinstance(bad, dict) else None
    if (
        not isinstance(by_reason, dict)
        or not all(isinstance(r, str) and _is_count(n) for r, n in by_reason.items())
        or bad.get("count") != sum(by_reason.values())
        or not isinstance(files, list)
        or not all(isinstance(f, str) and re.fullmatch(r"bad_records/[^/]+", f) for f in files)
    ):
        raise BundleError(
            f'{file}: bad_records {bad!r:.200} is not {{"count", "by_reason", "files"}} with '
            f"count the sum of by_reason and files in bad_records/; {_DAMAGED}"
        )


def check_features(spec, features, row_count, format_version, path_of, label=None):
    """Checks every feature's statistics (vocabularies read in) against its declaration,
    and the top-level `label` statistics (check_label) the label-aware ones refer to.

    `path_of(relative name)` gives a bundle file's path, for the error messages.
    """
    from kdp_beam.feature_types.multivalent import is_multivalent

    from kdp_beam.bundle.label_checks import check_label

    check_label(label, spec, path_of, row_count)
    vocabulary_owners = {}  # vocabulary file -> the feature it belongs to
    for name, declaration in spec.features.items():
        kind, options = declaration.kind, declaration.options
        stats = Statistics(name, features[name], path_of, kind.vocabulary_columns(options), row_count)
        stats.label = label
        if stats.required("type") != declaration.type:
            stats.fail("type", f"is {stats.get('type')!r:.80}, but it is declared {declaration.type!r}")
        _check_counts(stats, row_count, is_multivalent(options))
        if kind.vocabulary_columns(options):
            file_name = stats.get("vocabulary_file")
            owner = vocabulary_owners.setdefault(file_name, name)
            if owner != name:
                stats.fail("vocabulary_file", f"{file_name!r} is feature {owner!r}'s vocabulary")
        kind.check_statistics(stats, options, spec.profile)
        _check_missing_count(stats, kind, format_version)


class Statistics:
    """One feature's statistics (`what` they are of: or the "label"'s), and where each key
    was read from (for errors): its `vocabulary_columns` from its vocabulary file, the rest
    from statistics.json; the bundle's `row_count`, and its `label` statistics (None
    without a label)."""

    def __init__(self, name, stats, path_of, vocabulary_columns=(), row_count=None, what="feature"):
        self.name, self._stats, self._path_of = name, stats, path_of
        self._vocabulary_columns = vocabulary_columns
        self.row_count = row_count
        self.what = what
        self.label = None

    def get(self, key, default=None):
        return self._stats.get(key, default)

    def has(self, key):
        return key in self._stats

    def fail(self, key, problem):
        source = "statistics.json"
        if key in self._vocabulary_columns:  # read from the vocabulary file (a string: checked)
            source = self._stats.get("vocabulary_file", source)
        raise BundleError(f"{self._path_of(source)}: {self.what} {self.name!r}: {key} {problem}; {_DAMAGED}")

    def required(self, key):
        if key not in self._stats:
            self.fail(key, "is missing")
        return self._stats[key]

    def count(self, key, at_most=None, what=None):
        """A required non-negative integer, at most `at_most` (named `what`)."""
        value = self.required(key)
        if not _is_count(value):
            self.fail(key, f"is {value!r:.80}, not a count (an integer >= 0)")
        if at_most is not None and value > at_most:
            self.fail(key, f"is {value}, more than {what} ({at_most})")
        return value

    def number(self, key, nullable=True):
        """A required finite number, or None when `nullable`."""
        value = self.required(key)
        if value is None and nullable:
            return None
        if not _is_finite(value):
            self.fail(key, f"is {value!r:.80}, not a finite number")
        return float(value)

    def numbers(self, key):
        """A required list of finite numbers, in non-decreasing order."""
        values = self.required(key)
        if not isinstance(values, list) or not all(_is_finite(v) for v in values):
            self.fail(key, f"is {values!r:.80}, not a list of finite numbers")
        values = [float(v) for v in values]
        if any(a > b for a, b in zip(values, values[1:])):
            self.fail(key, f"{values!r:.80} is not sorted")
        return values


def _check_counts(stats, row_count, multivalent=False):
    """count: every row, or a multivalent feature's every value (check_values_per_row)."""
    count = stats.count("count")
    if count != row_count and not multivalent:
        stats.fail("count", f"is {count}, but the bundle has {row_count} rows (every row counts)")
    stats.count("null_count", count, "count")


def check_values_per_row(stats):
    """A multivalent feature's lengths agree with its `count` of values and the rows:
    empty_count at most the rows; min <= max; no row shorter than min_values_per_row nor
    longer than max_values_per_row (min 0 exactly when a row is empty, so the values of
    the other rows are between their number times max(min, 1) and times max);
    mean_values_per_row = count / rows; the lengths' quantiles sorted integers in
    [min, max]. With no rows: no min, max, mean or quantiles."""
    rows, values = stats.row_count, stats.get("count")
    empty = stats.count("empty_count", rows, "the rows")
    keys = ("min_values_per_row", "max_values_per_row", "mean_values_per_row")
    _check_epsilon(stats, "values_per_row_epsilon")
    quantiles = stats.numbers("values_per_row_quantiles")
    if rows == 0:
        for key in (*keys, "values_per_row_quantiles"):
            if stats.required(key) not in (None, []):
                stats.fail(key, "is given, but the bundle has no rows")
        return
    low, high = stats.count("min_values_per_row"), stats.count("max_values_per_row")
    if low > high:
        stats.fail("min_values_per_row", f"{low} is above max_values_per_row {high}")
    if (low == 0) != (empty > 0):
        stats.fail("min_values_per_row", f"is {low}, but {empty} of the {rows} rows have no values")
    filled = rows - empty
    if not filled * max(low, 1) <= values <= filled * high:
        stats.fail(
            "count",
            f"is {values}, impossible for {filled} rows with values holding "
            f"{low} to {high} values each",
        )
    mean = stats.number("mean_values_per_row", nullable=False)
    if not math.isclose(mean, values / rows, rel_tol=_SLACK):
        stats.fail("mean_values_per_row", f"is {mean!r}, not count / rows ({values} / {rows})")
    if not quantiles or not all(_is_integer(q) for q in stats.get("values_per_row_quantiles")):
        stats.fail("values_per_row_quantiles", f"{quantiles!r:.80} are not the lengths' quantiles (integers)")
    if not low <= quantiles[0] <= quantiles[-1] <= high:
        stats.fail("values_per_row_quantiles", f"lie outside [min_values_per_row, max_values_per_row] [{low}, {high}]")


def _check_missing_count(stats, kind, format_version):
    """After the counts it adds up are checked (format version 1 had no missing_count)."""
    if format_version >= 2 or stats.has("missing_count"):
        parts = [key for key, _ in kind.missing_causes]
        expected = sum(stats.count(key) for key in parts if stats.has(key))
        missing = stats.count("missing_count")
        if missing != expected:
            stats.fail("missing_count", f"is {missing}, not {' + '.join(parts)} ({expected})")


def check_moments(stats):
    count, null_count = stats.get("count"), stats.get("null_count")
    nan_count, inf_count = stats.count("nan_count"), stats.count("inf_count")
    value_count = stats.count("value_count")
    if null_count + nan_count + inf_count + value_count != count:
        stats.fail(
            "value_count",
            f"{value_count} + null_count {null_count} + nan_count {nan_count} + inf_count "
            f"{inf_count} is not count {count}",
        )
    moments = {key: stats.number(key) for key in ("mean", "variance", "min", "max")}
    _check_moment_values(stats, moments, value_count, ("mean", "variance", "min", "max"))
    if any(stats.has(key) for key in SHAPE):  # all or none (an older bundle)
        _check_shape(stats, value_count > 0 and moments["min"] < moments["max"], value_count)
        _check_shares(stats, value_count, moments["min"], moments["max"])


def _check_shape(stats, spread, value_count):
    """skewness and (excess) kurtosis: both null or both numbers; null without spread (a
    constant column: undefined), null with spread only when unknown (a merge with a kdp_beam
    0.4 state); else within what n values allow: Pearson's inequality
    kurtosis + 3 >= skewness**2 + 1, and kurtosis + 3 <= n (m4 <= n * m2**2)."""
    skewness, kurtosis = stats.number("skewness"), stats.number("kurtosis")
    if (skewness is None) != (kurtosis is None):
        stats.fail("skewness", f"is {skewness!r} but kurtosis {kurtosis!r}: both or neither are known")
    if skewness is None:
        return
    if not spread:
        stats.fail("skewness", f"is {skewness!r}, but the values have no spread (min == max, or none)")
    beta = kurtosis + 3
    if beta < (skewness * skewness + 1) * (1 - _SLACK) or beta > value_count * (1 + _SLACK):
        stats.fail(
            "kurtosis",
            f"{kurtosis!r} is impossible with skewness {skewness!r} for {value_count} values "
            "(kurtosis + 3 must lie in [skewness**2 + 1, value_count])",
        )


def _check_shares(stats, value_count, low, high):
    """zero/integer/positive/negative_fraction: all null (no value counted, or unknown
    after a merge with a kdp_beam 0.4 state) or each a count of the value_count values,
    zero + positive + negative exactly all of them, whole values at least the zeros, and
    each agreeing with [min, max] (a positive value exactly when max > 0, a negative one
    exactly when min < 0, a zero only in between)."""
    shares = {key: stats.number(key) for key in SHARES}
    known = [key for key, share in shares.items() if share is not None]
    if not known:
        return
    if value_count == 0:
        stats.fail(known[0], f"is {shares[known[0]]!r}, but no value was counted")
    if len(known) < len(SHARES):
        unknown = next(key for key in SHARES if key not in known)
        stats.fail(unknown, f"is null, but {known[0]} is {shares[known[0]]!r}: the shares are all known or all null")
    counts = {}
    for key, share in shares.items():  # share = count / n, rounded: n * share is within ~n ulps of it
        counts[key] = round(share * value_count)
        if not 0 <= share <= 1 or abs(share * value_count - counts[key]) > 1e-3:
            stats.fail(key, f"{share!r} is not a share (count / n) of the {value_count} values")
    zero, whole, positive, negative = (counts[key] for key in SHARES)
    if zero + positive + negative != value_count:
        stats.fail(SHARES[0], f"zero + positive + negative ({zero} + {positive} + {negative}) are not the {value_count} values")
    if whole < zero:
        stats.fail("integer_fraction", f"counts {whole} whole values, fewer than the {zero} zeros")
    for key, impossible in (
        ("zero_fraction", zero > 0 and not low <= 0 <= high),
        ("positive_fraction", (positive > 0) != (high > 0)),
        ("negative_fraction", (negative > 0) != (low < 0)),
    ):
        if impossible:
            stats.fail(key, f"is {shares[key]!r}, impossible for values in [{low!r}, {high!r}]")


def _check_moment_values(stats, moments, value_count, keys):
    """mean, variance, min, max (named `keys`): all null when no value was counted, else
    variance >= 0, min <= mean <= max, and variance at most ((max - min) / 2) ** 2."""
    mean_key, variance_key, min_key, max_key = keys
    mean, variance, low, high = (moments[k] for k in keys)
    for key in keys:
        if (moments[key] is None) != (value_count == 0):
            state = "null" if value_count else "not null"
            stats.fail(key, f"is {state}, but {value_count} values were counted")
    if value_count == 0:
        return
    if low > high:
        stats.fail(min_key, f"{low!r} is above {max_key} {high!r}")
    if not _within(mean, low, high):
        stats.fail(mean_key, f"{mean!r} is outside [{min_key}, {max_key}] = [{low!r}, {high!r}]")
    half_range = (high - low) / 2
    if variance < 0 or variance > half_range * half_range * (1 + _SLACK) + 1e-300:
        stats.fail(variance_key, f"{variance!r} is impossible for values in [{low!r}, {high!r}]")


def check_profile(stats):
    quantiles = stats.numbers("profile_quantiles")
    _check_epsilon(stats, "profile_epsilon")
    if stats.get("value_count") == 0 and quantiles:
        stats.fail("profile_quantiles", "are given, but no value was counted")
    if quantiles and not _all_within(quantiles, stats):
        stats.fail("profile_quantiles", f"lie outside [min, max] {_range(stats)}")


def check_quantiles(stats, num_bins):
    boundaries = stats.numbers("bin_boundaries")
    _check_epsilon(stats, "quantile_epsilon")
    expected = num_bins - 1 if stats.get("value_count") else 0
    if len(boundaries) != expected:
        stats.fail("bin_boundaries", f"has {len(boundaries)} values, not {expected} ({num_bins} bins)")
    if boundaries and not _all_within(boundaries, stats):
        stats.fail("bin_boundaries", f"lie outside [min, max] {_range(stats)}")


def _check_epsilon(stats, key):
    epsilon = stats.number(key, nullable=False)
    if not 0 < epsilon < 1:
        stats.fail(key, f"is {epsilon!r}, not a rank error in (0, 1)")


def check_vocabulary(stats, valid_tokens, reserved, max_tokens, reserved_indices, by_count=True):
    """Checks a vocabulary: tokens `valid_tokens(stats, tokens)` accepts, each once, none
    of the `reserved` ones the layer keeps; counts integers >= 1, in descending order when
    ranked `by_count` (a vocabulary ranked by score: check_label_vocabulary); at most
    `max_tokens - reserved_indices` tokens. Returns the counts."""
    tokens, counts = stats.required("vocabulary"), stats.required("vocabulary_counts")
    valid_tokens(stats, tokens)
    distinct = set(tokens)
    if len(distinct) != len(tokens):
        twice = next(t for t, n in Counter(tokens).items() if n > 1)
        stats.fail("vocabulary", f"has the token {twice!r:.80} twice")
    taken = [t for t in reserved if t in distinct]
    if taken:
        stats.fail("vocabulary", f"has {taken[0]!r}, a token the layer reserves")
    # type(), not isinstance: a bool is an int, and these loops run once per token.
    if not all(type(c) is int and c >= 1 for c in counts):
        stats.fail("vocabulary_counts", "are not all integers >= 1")
    if by_count and any(a < b for a, b in zip(counts, counts[1:])):
        stats.fail("vocabulary_counts", "are not in descending order (the vocabulary is by rank)")
    size = stats.count("vocabulary_size")
    if size != len(tokens):
        stats.fail("vocabulary_size", f"is {size}, but the vocabulary file has {len(tokens)} tokens")
    if max_tokens is not None and size > max_tokens - reserved_indices:
        stats.fail("vocabulary", f"has {size} tokens, more than max_tokens allows ({max_tokens - reserved_indices})")
    return counts


def check_string_tokens(stats, tokens):
    """Tokens that are strings a layer can hold (valid Unicode)."""
    bad = [t for t in tokens if type(t) is not str]
    if bad:
        stats.fail("vocabulary", f"has the token {bad[0]!r:.80}, not a string")
    try:
        "".join(tokens).encode("utf-8")
    except UnicodeEncodeError:  # JSON can spell lone surrogates, which no layer can hold
        stats.fail("vocabulary", "has a token that is not valid Unicode (a lone surrogate)")


def _check_documents(stats, counts, documents_at_most, what):
    """vocabulary_document_counts: per token, an integer between 1 and both its count and
    `documents_at_most` (`what` they are)."""
    documents = stats.required("vocabulary_document_counts")
    if len(documents) != len(counts) or not all(
        _is_integer(d) and 1 <= d <= min(c, documents_at_most) for d, c in zip(documents, counts)
    ):
        stats.fail(
            "vocabulary_document_counts",
            f"are not integers between 1 and both the token's count and {what}",
        )


def check_document_counts(stats, counts):
    """Text: each token's documents between 1 and both its count and the documents; the
    distinct tokens and the token count bound the vocabulary."""
    _check_documents(stats, counts, stats.get("count"), "the number of documents")
    check_distinct(stats, len(counts))
    token_count = stats.count("token_count")
    if sum(counts) > token_count:
        stats.fail("vocabulary_counts", f"add up to {sum(counts)}, more than token_count {token_count}")


def check_rows_holding_tokens(stats, counts):
    """A multivalent vocabulary: each token in between 1 and both its count (of values)
    and the rows with values (after check_values_per_row)."""
    filled = stats.row_count - stats.get("empty_count")
    _check_documents(stats, counts, filled, f"the {filled} rows with values")


def check_distinct(stats, kept):
    distinct = stats.count("distinct_count")
    if distinct < kept:
        stats.fail("distinct_count", f"is {distinct}, fewer than the {kept} tokens kept")


def check_approximate(stats, counts):
    if stats.required("distinct_count") is not None:  # a sketch does not know it
        stats.fail("distinct_count", "is given, but approximate counting cannot know it (null)")
    if stats.required("vocabulary_approximate") is not True:
        stats.fail("vocabulary_approximate", f"is {stats.get('vocabulary_approximate')!r}, not true")
    bound = stats.count("vocabulary_count_error_bound")
    if counts and counts[0] > stats.get("count") + bound:
        stats.fail("vocabulary_counts", f"reach {counts[0]}, more than count + the error bound")


def check_date(stats):
    count, null_count = stats.get("count"), stats.get("null_count")
    unparseable = stats.count("unparseable_count", count - null_count, "count - null_count")
    parsed = count - null_count - unparseable
    moments = {key: stats.number(key) for key in ("year_mean", "year_variance", "year_min", "year_max")}
    _check_moment_values(stats, moments, parsed, ("year_mean", "year_variance", "year_min", "year_max"))
    moments_of_dates = {}
    for key, year_key in (("min_date", "year_min"), ("max_date", "year_max")):
        value = stats.required(key)
        if (value is None) != (parsed == 0):
            stats.fail(key, f"is {'null' if parsed else 'not null'}, but {parsed} dates parsed")
        if value is None:
            continue
        try:
            moments_of_dates[key] = datetime.datetime.fromisoformat(value)
        except (TypeError, ValueError):
            stats.fail(key, f"is {value!r:.80}, not an ISO 8601 date")
        if moments_of_dates[key].tzinfo is not None:
            stats.fail(key, f"is {value!r}, not a wall-clock time (no time zone)")
        if moments_of_dates[key].year != moments[year_key]:
            stats.fail(key, f"{value!r} is not in {year_key} {moments[year_key]!r}")
    if parsed and moments_of_dates["min_date"] > moments_of_dates["max_date"]:
        stats.fail("min_date", "is after max_date")


def _range(stats):
    return f"[{stats.get('min')!r}, {stats.get('max')!r}]"


def _all_within(sorted_values, stats):
    """Quantiles of the finite values lie in [min, max]."""
    low, high = stats.get("min"), stats.get("max")
    return _within(sorted_values[0], low, high) and _within(sorted_values[-1], low, high)


def _within(value, low, high):
    slack = _SLACK * max(abs(low), abs(high))
    return low - slack <= value <= high + slack


def _is_integer(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_count(value):
    return _is_integer(value) and value >= 0


def _is_finite(value):
    """A JSON number that is a finite float64 (json.loads reads NaN, Infinity and
    integers too large for a float)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False
