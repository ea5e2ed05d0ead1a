"""kdp-beam validate: drift, skew and anomalies between two bundles, without the data.

Per feature, from the statistics both bundles already hold (docs/validate.md):

- values counted by a vocabulary (categoricals, text tokens, a list's values):
  ``linf``, the L-infinity distance between the two normalised value distributions
  (TFDV's categorical comparator), exact from each bundle's full token counts (its
  mergeable state); where a bundle keeps only its top tokens (approximate counting, or
  no state), the rest is pooled as one "other" value and the result says so.
  ``new_value_share``: the share of the current values the baseline never saw.
- numbers: ``jensen_shannon``, the Jensen-Shannon divergence in bits (0..1, as TFDV) of
  the two distributions binned on common edges, the baseline's equal-mass quantiles read
  from its quantile sketch (bins beyond its range catch what lies outside); ``mean_shift``
  in baseline standard deviations; the current range beyond the baseline's;
  ``inf_rate_change``, as +-inf is in no sketch or moment and not missing.
- every feature: ``missing_rate_change`` (absolute), the change of each other missing
  cause's rate (NaN, unparseable dates...); the dataset: row-count ratio and bad-record
  rate change; the schema: features removed, added, or declared with another type.

Each metric is reported with its raw value, its threshold (None: reported only) and
whether it fired; ``exit_code`` is 0 when none fired, 1 otherwise (2 is the CLI's for an
error: a bundle that does not load, or two bundles with no feature to compare).
"""

import json
import math

import numpy as np

from kdp_beam.bundle.loader import NoStateError, load_bundle
from kdp_beam.errors import KdpBeamError

DEFAULT_THRESHOLDS = {
    "linf": 0.1,
    "new_value_share": 0.05,
    "jensen_shannon": 0.1,
    "mean_shift": None,
    "missing_rate_change": 0.05,
    "cause_rate_change": None,
    "inf_rate_change": 0.05,
    "range_exceeded": None,
    "row_count_ratio": None,
    "bad_record_rate_change": 0.01,
}
# The baseline's equal-mass bins of the common binning, and the points read from each
# quantile sketch to place the edges in the other distribution.
JS_BINS = 50
SKETCH_POINTS = 1000
OTHER = "<other values>"
# Options that change what one value is (how a field splits into values, how text splits
# into tokens, how a date is parsed): features declared differently in these have no
# distributions in common. Others (max_tokens, counting, bins...) change only how much a
# bundle keeps, and are compared (a kept vocabulary is pooled, said so).
VALUE_DEFINING_OPTIONS = ("multivalent", "separator", "standardize", "split", "ngrams", "format")


class ValidationError(KdpBeamError):
    """Two bundles that cannot be compared, or thresholds that are not valid."""


def validate(baseline, current, thresholds=None):
    """The comparison of two bundles (paths, or loaded kdp_beam.bundle.loader.Bundle
    objects with their state): a ValidationResult. `thresholds`: {"default": {metric:
    value}, "features": {name: {metric: value}}} (a None value: report only), or the path
    of a JSON file holding that. Raises ValidationError, or BundleError for a bundle that
    does not load."""
    thresholds = Thresholds(thresholds)
    baseline, current = (_loaded(b) for b in (baseline, current))
    unknown = sorted(thresholds.features.keys() - baseline.features.keys() - current.features.keys())
    if unknown:
        raise ValidationError(
            f"thresholds: features {unknown[:10]} are in neither bundle (a misspelt name would leave "
            f"its thresholds unapplied); the bundles declare {sorted(baseline.features.keys() | current.features.keys())[:20]}"
        )
    common = [name for name in current.features if name in baseline.features]
    if not common:
        raise ValidationError(
            f"{baseline.path} and {current.path} declare no feature in common "
            f"({sorted(baseline.features)[:10]} and {sorted(current.features)[:10]}): nothing to compare"
        )
    result = ValidationResult(baseline, current)
    for name in baseline.features:
        if name not in current.features:
            result.schema.append({"feature": name, "change": "removed", "fired": True})
    for name in current.features:
        if name not in baseline.features:
            result.schema.append({"feature": name, "change": "added", "fired": True})
    for name in common:
        was, now = baseline.features[name]["type"], current.features[name]["type"]
        if was != now:
            result.schema.append({"feature": name, "change": "type", "baseline": was, "current": now, "fired": True})
            continue
        _refuse_other_values(name, baseline, current)
        metrics = {}
        limits = thresholds.of(name)
        for metric, value, details in _feature_metrics(baseline, current, name):
            # Each missing cause's rate change (NaN_rate_change, ...) has cause_rate_change's threshold.
            metrics[metric] = _judged(value, limits.get("cause_rate_change" if "cause" in details else metric), details)
        result.features[name] = metrics
    limits = thresholds.of(None)
    ratio = current.row_count / baseline.row_count if baseline.row_count else None
    details = {"baseline": baseline.row_count, "current": current.row_count}
    # One bundle without rows against one with them has nothing left to compare (every
    # distribution metric is None): an anomaly at any threshold, as an upstream job that
    # wrote nothing is the first thing a gate is for.
    empty = (baseline.row_count == 0) != (current.row_count == 0)
    if empty:
        details["reason"] = f"the {'current' if current.row_count == 0 else 'baseline'} bundle holds no rows"
    result.dataset["row_count_ratio"] = _judged(
        ratio, limits["row_count_ratio"], details,
        fires=lambda v, t: empty or (v is not None and t is not None and not 1 / t <= v <= t),
    )
    bad = [_bad_rate(b) for b in (baseline, current)]
    result.dataset["bad_record_rate_change"] = _judged(
        abs(bad[1] - bad[0]), limits["bad_record_rate_change"], {"baseline": bad[0], "current": bad[1]}
    )
    return result


class ValidationResult:
    """What validate found: per feature {metric: {"value", "threshold", "fired", ...}},
    the dataset's metrics, the schema changes; `anomalies` lists what fired, `exit_code`
    is 1 when something did, `to_json()` is the --json document."""

    def __init__(self, baseline, current):
        self.bundles = (baseline, current)  # the loaded bundles, for the diff page
        self.baseline = baseline.path
        self.current = current.path
        self.features = {}
        self.dataset = {}
        self.schema = []

    @property
    def anomalies(self):
        found = [{"feature": c["feature"], "metric": "schema", **c} for c in self.schema if c["fired"]]
        for name, metrics in self.features.items():
            found += [{"feature": name, "metric": m, **r} for m, r in metrics.items() if r["fired"]]
        found += [{"feature": None, "metric": m, **r} for m, r in self.dataset.items() if r["fired"]]
        return found

    @property
    def exit_code(self):
        return 1 if self.anomalies else 0

    def to_json(self):
        return {
            "baseline": self.baseline,
            "current": self.current,
            "anomaly_count": len(self.anomalies),
            "anomalies": [{"feature": a["feature"], "metric": a["metric"]} for a in self.anomalies],
            "schema": self.schema,
            "dataset": self.dataset,
            "features": self.features,
        }


class Thresholds:
    """The thresholds of each metric: the defaults, overridden globally and per feature."""

    def __init__(self, given=None):
        if isinstance(given, str):
            try:
                with open(given, encoding="utf-8") as f:
                    given = json.load(f)
            except (OSError, ValueError) as e:  # ValueError: not UTF-8, or not JSON
                raise ValidationError(f"thresholds file {given}: {e}") from None
        elif given is None:
            given = {}
        if not isinstance(given, dict) or set(given) - {"default", "features"}:
            raise ValidationError(
                'thresholds are {"default": {metric: value}, "features": {name: {metric: value}}}, '
                f"got {given!r:.80}"
            )
        self.default = {**DEFAULT_THRESHOLDS, **self._checked(given.get("default", {}), "default")}
        features = given.get("features", {})
        if not isinstance(features, dict):
            raise ValidationError('thresholds: "features" maps feature names to {metric: value}')
        self.features = {name: self._checked(t, f"features.{name}") for name, t in features.items()}

    @staticmethod
    def _checked(limits, where):
        if not isinstance(limits, dict):
            raise ValidationError(f"thresholds {where}: expected {{metric: value}}, got {limits!r:.80}")
        for metric, value in limits.items():
            if metric not in DEFAULT_THRESHOLDS:
                raise ValidationError(f"thresholds {where}: unknown metric {metric!r}; known: {sorted(DEFAULT_THRESHOLDS)}")
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf
            ):  # JSON's Infinity (or 1e400) would also make the result's JSON not strict
                raise ValidationError(f"thresholds {where}.{metric}: a finite number >= 0 or null, got {value!r:.80}")
            if metric == "row_count_ratio" and value is not None and value < 1:
                raise ValidationError(
                    f"thresholds {where}.row_count_ratio: a factor >= 1 (it fires outside [1/t, t]), got {value!r}"
                )
        return limits

    def of(self, name):
        return {**self.default, **self.features.get(name, {})}


def _refuse_other_values(name, baseline, current):
    """ValidationError when one feature's two declarations define its values differently."""
    was, now = baseline.spec.features[name].options, current.spec.features[name].options
    differ = [o for o in VALUE_DEFINING_OPTIONS if was.get(o) != now.get(o)]
    if differ:
        shown = ", ".join(f"{o}={was.get(o)!r} in the baseline, {now.get(o)!r} now" for o in differ)
        raise ValidationError(
            f"feature {name!r} is declared with {shown}: its values are not the same things in the "
            "two bundles, so their distributions cannot be compared; analyse both with one declaration"
        )


def _loaded(bundle):
    if not isinstance(bundle, str):
        return bundle
    try:
        return load_bundle(bundle, with_state=True)
    except NoStateError:  # an old bundle: compared on the statistics it keeps (pooled, said so)
        return load_bundle(bundle)


def _judged(value, threshold, details=None, fires=None):
    details = dict(details or {})
    if fires is None:
        fired = value is not None and threshold is not None and value > threshold
    else:
        fired = fires(value, threshold)
    if fired and details.get("upper_bound"):  # what the bundles cannot tell apart: reported
        fired = False
        details["reason"] = "an upper bound (the baseline pooled the values it did not keep): reported, not gated"
    return {"value": value, "threshold": threshold, "fired": bool(fired), **details}


def _bad_rate(bundle):
    bad = bundle.bad_records["count"]
    seen = bundle.row_count + bad
    return bad / seen if seen else 0.0


def _feature_metrics(baseline, current, name):
    """(metric, value, details) of one feature both bundles declare with one type."""
    b, c = baseline.features[name], current.features[name]
    kind = baseline.spec.features[name].kind
    rates = [_rate(s.get("missing_count", 0), s["count"]) for s in (b, c)]
    yield "missing_rate_change", _difference(*rates), {"baseline": rates[0], "current": rates[1]}
    for key, word in kind.missing_causes:
        if key != "null_count" and key in b and key in c:
            was, now = _rate(b[key], b["count"]), _rate(c[key], c["count"])
            yield f"{word}_rate_change".replace(" ", "_"), _difference(was, now), {"baseline": was, "current": now, "cause": key}
    if "inf_count" in b and "inf_count" in c:  # not missing (the model gets them), out of every sketch
        was, now = _rate(b["inf_count"], b["count"]), _rate(c["inf_count"], c["count"])
        yield "inf_rate_change", _difference(was, now), {"baseline": was, "current": now}
    if "vocabulary" in b and "vocabulary" in c:
        yield from _categorical_metrics(baseline, current, name)
    if "mean" in b and "variance" in b and "mean" in c:
        yield from _numeric_metrics(baseline, current, name)
    if "vocabulary" not in b and "mean" not in b:  # said, not left out silently
        yield "distribution", None, {
            "reason": "its type keeps no distribution of its values (hashed buckets, dates): only its "
            "missing values are compared"
        }


def _rate(part, whole):
    return part / whole if whole else None


def _difference(was, now):
    return None if was is None or now is None else abs(now - was)


# --- categoricals ------------------------------------------------------------------------


def value_counts(bundle, name):
    """({token: count}, pooled): a feature's counts of every value from its full token
    state, or its kept vocabulary with the rest pooled as OTHER (pooled True)."""
    tables = (bundle.state or {}).get("tokens", {}).get(name)
    if tables:
        counts = {}
        for table in tables:
            for token, count in zip(table["token"].to_pylist(), table["count"].to_pylist()):
                counts[token] = counts.get(token, 0) + count
        return counts, False
    stats = bundle.features[name]
    counts = dict(zip(stats["vocabulary"], stats["vocabulary_counts"]))
    total = _counted_values(stats)
    rest = total - sum(counts.values()) if total is not None else 0
    if rest > 0:
        counts[OTHER] = rest
    return counts, stats.get("distinct_count") != len(stats["vocabulary"])


def _counted_values(stats):
    """The values a vocabulary's counts add up to when it kept every token."""
    if "token_count" in stats:  # text: tokens, not rows
        return stats["token_count"]
    counted = stats["count"] - stats["null_count"]
    return counted if counted >= 0 else None


def _categorical_metrics(baseline, current, name):
    (was, pooled_was), (now, pooled_now) = value_counts(baseline, name), value_counts(current, name)
    total_was, total_now = sum(was.values()), sum(now.values())
    pooled = {"pooled": pooled_was or pooled_now}
    if not total_was or not total_now:
        yield "linf", None, {"reason": "no values on one side", **pooled}
        yield "new_value_share", None, {"reason": "no values on one side", **pooled}
        return
    # Where a side pooled values, both are compared on the tokens known on both sides,
    # the rest pooled alike: a token one side kept and the other pooled is not a change.
    known = [set(counts) - {OTHER} for counts, p in ((was, pooled_was), (now, pooled_now)) if p]
    was_l, now_l = (_pooled_beyond(counts, set.intersection(*known)) if known else counts for counts in (was, now))
    linf, top = 0.0, None
    for token in was_l.keys() | now_l.keys():
        gap = abs(was_l.get(token, 0) / total_was - now_l.get(token, 0) / total_now)
        if gap > linf:
            linf, top = gap, token
    new = sum(count for token, count in now.items() if token not in was and token != OTHER)
    yield "linf", linf, {"value_of_largest_change": top, **pooled}
    share = {"new_values": sum(1 for t in now if t not in was and t != OTHER)}
    if pooled_was:
        share["upper_bound"] = True  # a value pooled in the baseline may have been seen
    yield "new_value_share", new / total_now, {**share, **pooled}


def _pooled_beyond(counts, kept):
    pooled = {}
    for token, count in counts.items():
        key = token if token in kept else OTHER
        pooled[key] = pooled.get(key, 0) + count
    return pooled


# --- numbers -----------------------------------------------------------------------------


def sketch_points(bundle, name):
    """SKETCH_POINTS + 1 quantiles (min ... max) of a numeric feature from its bundle's
    quantile sketch (the discretization's when it has one, else --profile's), and the
    sketch's rank error; None when the bundle kept no sketch."""
    from kdp_beam.analyzers.quantiles import ProfileAnalyzer, QuantilesAnalyzer

    state = ((bundle.state or {}).get("analyzers") or {}).get("features", {}).get(name) or {}
    for key, analyzer in (("quantiles", QuantilesAnalyzer(2)), ("profile", ProfileAnalyzer())):
        saved = state.get(key)
        if saved and saved.get("n"):
            acc = analyzer.from_state(saved)
            return np.asarray(acc.sketch.GetQuantiles(SKETCH_POINTS).to_pylist()[0], dtype=np.float64), analyzer.epsilon
    return None


def cdf(points, x):
    """The CDF at `x` of the distribution whose quantiles at 0, 1/Q, ..., 1 are `points`:
    linear between points, jumps where points repeat (a value many rows hold)."""
    q = len(points) - 1
    j = np.searchsorted(points, x, side="right") - 1  # the last point <= x
    inside = (j >= 0) & (j < q)
    jj = np.clip(j, 0, q - 1)
    low, high = points[jj], points[jj + 1]
    step = np.where(high > low, (x - low) / np.where(high > low, high - low, 1.0), 0.0)
    return np.where(j < 0, 0.0, np.where(j >= q, 1.0, np.where(inside, (jj + step) / q, 1.0)))


def common_edges(baseline_points, bins=JS_BINS):
    """The edges of the common binning: the baseline's `bins` equal-mass quantiles."""
    return np.unique(np.quantile(baseline_points, np.linspace(0, 1, bins + 1)))


def jensen_shannon(baseline_points, current_points, bins=JS_BINS):
    """The Jensen-Shannon divergence in bits of two distributions given by their quantile
    points, on the baseline's `bins` equal-mass bins plus one below and one above its
    range."""
    edges = common_edges(baseline_points, bins)

    def masses(points):
        at = cdf(points, edges)
        below = cdf(points, np.nextafter(edges[:1], -np.inf))
        # Bins [e0, e1], (e1, e2], ...: a value many rows hold is a point mass at an edge,
        # which the right-continuous CDF puts in the bin it closes, alike on both sides.
        inner = np.diff(np.concatenate([below, at]))
        return np.concatenate([below, inner, [1.0 - at[-1]]])

    p, q = masses(baseline_points), masses(current_points)
    p, q = np.clip(p, 0, None), np.clip(q, 0, None)
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    def kl(a):
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))
    return min(1.0, max(0.0, 0.5 * kl(p) + 0.5 * kl(q)))


def _numeric_metrics(baseline, current, name):
    b, c = baseline.features[name], current.features[name]
    std = math.sqrt(b["variance"]) if b["variance"] is not None else None
    if b["mean"] is None or c["mean"] is None:
        yield "mean_shift", None, {"reason": "no finite value on one side"}
    elif not std:  # a constant baseline: no scale to measure a shift in (strict JSON: no inf)
        same = c["mean"] == b["mean"]
        yield "mean_shift", 0.0 if same else None, {
            "baseline_mean": b["mean"], "current_mean": c["mean"], "baseline_std": std,
            **({} if same else {"reason": "the baseline is constant (standard deviation 0) and the current mean differs"}),
        }
    else:
        yield "mean_shift", abs(c["mean"] - b["mean"]) / std, {"baseline_mean": b["mean"], "current_mean": c["mean"], "baseline_std": std}
    below = c["min"] is not None and b["min"] is not None and c["min"] < b["min"]
    above = c["max"] is not None and b["max"] is not None and c["max"] > b["max"]
    yield "range_exceeded", float(below) + float(above), {
        "below_baseline_min": below, "above_baseline_max": above,
        "baseline_range": [b["min"], b["max"]], "current_range": [c["min"], c["max"]],
    }
    if b["min"] is None or c["min"] is None:
        yield "jensen_shannon", None, {"reason": "no finite value on one side"}
        return
    sketches = [sketch_points(bundle, name) for bundle in (baseline, current)]
    missing = [side for side, s in zip(("baseline", "current"), sketches) if s is None]
    if missing:
        yield "jensen_shannon", None, {
            "reason": f"the {' and '.join(missing)} bundle kept no distribution sketch of this feature "
            "(analysed with --no-profile, or by kdp_beam before 0.4 without --profile): re-analyse it "
            "with profiling on (the default)"
        }
        return
    (was, error_was), (now, error_now) = sketches
    yield "jensen_shannon", jensen_shannon(was, now), {"bins": len(common_edges(was)) + 1, "sketch_rank_error": max(error_was, error_now)}
