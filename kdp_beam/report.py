"""kdp-beam report: one self-contained HTML page describing a bundle's data.

Drawn from the bundle alone (no data is read) with inline CSS and SVG: no script, no
network, so it opens anywhere and can be mailed. Every string from the data (feature
names, tokens) is HTML-escaped.
"""

import html
import math

from kdp_beam.bundle.loader import load_bundle
from kdp_beam.output_files import check_output_file, write_output_file
from kdp_beam.summary import missing_breakdown

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2733;max-width:1100px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 6px;border-bottom:1px solid #d8dee6;padding-bottom:4px}
.meta{color:#5a6877} table{border-collapse:collapse;margin:8px 0} td,th{padding:3px 10px;text-align:left;border-bottom:1px solid #eef1f4}
th{color:#5a6877;font-weight:600} td.n{text-align:right;font-variant-numeric:tabular-nums}
.feature{display:flex;gap:28px;flex-wrap:wrap} .type{background:#e8f0fb;color:#23508e;border-radius:4px;padding:1px 6px;font-size:12px}
.note{color:#5a6877;font-size:12px} svg text{font:11px system-ui,sans-serif;fill:#33414f}
"""


def _e(value):
    return html.escape(str(value), quote=True)


def _number(value):
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.6g}"
    return f"{value:,}" if isinstance(value, int) else _e(value)


def _rows(pairs):
    cells = "".join(f"<tr><th>{_e(k)}</th><td class=n>{_number(v)}</td></tr>" for k, v in pairs)
    return f"<table>{cells}</table>"


def bar_chart(labels, values, title, width=460, max_bars=20):
    """Horizontal bars of the first `max_bars` (label, value) pairs, as inline SVG."""
    labels, values = list(labels)[:max_bars], list(values)[:max_bars]
    if not values:
        return "<p class=note>no values</p>"
    top, row, label_width = max(values) or 1, 18, 150
    height = row * len(values) + 24
    bars = []
    for i, (label, value) in enumerate(zip(labels, values)):
        y = 20 + i * row
        length = (width - label_width - 70) * value / top
        text = str(label) if len(str(label)) <= 24 else str(label)[:23] + "…"
        bars.append(
            f'<text x="{label_width - 6}" y="{y + 12}" text-anchor="end">{_e(text)}</text>'
            f'<rect x="{label_width}" y="{y + 2}" width="{length:.1f}" height="{row - 5}" fill="#4a7bd0"/>'
            f'<text x="{label_width + length + 4:.1f}" y="{y + 12}">{value:,}</text>'
        )
    return (
        f'<svg class="chart bars" width="{width}" height="{height}" role="img" aria-label="{_e(title)}">'
        f'<text x="0" y="12" font-weight="600">{_e(title)}</text>{"".join(bars)}</svg>'
    )


def histogram(points, title, width=460, height=170):
    """An equal-frequency histogram from quantile points q0 (min) .. qk (max): each of the
    k bins holds 1/k of the values, so its height is its density 1 / (k * width)."""
    points = [p for p in points if p is not None and math.isfinite(p)]
    if len(points) < 2 or points[-1] == points[0]:
        return "<p class=note>a single value: no histogram</p>"
    low, high, bins = points[0], points[-1], len(points) - 1
    span = high - low
    widths = [max(b - a, span * 1e-3) for a, b in zip(points[:-1], points[1:])]
    densities = [1 / (bins * w) for w in widths]
    top = max(densities)
    plot_w, plot_h, left = width - 20, height - 40, 10
    rects = []
    for a, w, d in zip(points[:-1], widths, densities):
        x = left + plot_w * (a - low) / span
        h = plot_h * d / top
        rects.append(
            f'<rect x="{x:.1f}" y="{20 + plot_h - h:.1f}" width="{max(plot_w * w / span, 1):.1f}" '
            f'height="{h:.1f}" fill="#4a7bd0" fill-opacity="0.75"/>'
        )
    return (
        f'<svg class="chart histogram" width="{width}" height="{height}" role="img" aria-label="{_e(title)}">'
        f'<text x="0" y="12" font-weight="600">{_e(title)}</text>{"".join(rects)}'
        f'<text x="{left}" y="{height - 4}">{_number(low)}</text>'
        f'<text x="{left + plot_w}" y="{height - 4}" text-anchor="end">{_number(high)}</text></svg>'
    )


def _numeric(stats):
    mean, variance = stats.get("mean"), stats.get("variance")
    std = None if variance is None else math.sqrt(variance)
    pairs = [("mean", mean), ("std", std), ("min", stats.get("min"))]
    points = stats.get("profile_quantiles") or []
    if points:
        for percent in (25, 50, 75):
            pairs.append((f"{percent}%", points[round(percent / 100 * (len(points) - 1))]))
    pairs += [("max", stats.get("max")), ("NaN", stats.get("nan_count")), ("±inf", stats.get("inf_count"))]
    if points:
        chart = histogram(points, "distribution (equal-frequency bins)")
    elif stats.get("bin_boundaries"):
        edges = [stats["min"], *stats["bin_boundaries"], stats["max"]]
        chart = histogram(edges, "distribution (the discretization bins)")
    else:
        chart = "<p class=note>histogram: analyse with --profile</p>"
    return _rows(pairs), chart


def _vocabulary(stats, declaration):
    kept = sum(stats["vocabulary_counts"])
    if stats["type"] == "text":
        denominator, what = stats.get("token_count") or 0, "tokens"
    else:
        counted_missing = declaration.options.get("missing_token") is not None
        denominator = stats["count"] - (0 if counted_missing else stats["null_count"])
        what = "values"
    coverage = kept / denominator if denominator else 0.0
    distinct = stats["distinct_count"]
    pairs = [
        ("distinct", distinct if distinct is not None else "approximate"),
        ("kept (max_tokens)", stats["vocabulary_size"]),
        (f"coverage of {what}", f"{coverage:.1%}"),
    ]
    if stats["type"] == "text":
        per_document = stats["token_count"] / stats["count"] if stats["count"] else 0
        pairs += [("tokens", stats["token_count"]), ("tokens per document", f"{per_document:.2f}")]
    chart = bar_chart(stats["vocabulary"], stats["vocabulary_counts"], "most frequent")
    return _rows(pairs), chart


def _date(stats):
    std = None if stats["year_variance"] is None else math.sqrt(stats["year_variance"])
    pairs = [
        ("first", stats["min_date"]),
        ("last", stats["max_date"]),
        ("unparseable", stats["unparseable_count"]),
        ("year mean", stats["year_mean"]),
        ("year std", std),
    ]
    return _rows(pairs), ""


def render_report(bundle):
    """The report of a loaded Bundle as an HTML string."""
    sections, overview = [], []
    for index, (name, stats) in enumerate(bundle.features.items()):
        declaration = bundle.spec.features[name]
        counts = _rows(
            [("rows", stats["count"]), ("missing", missing_breakdown(stats)), ("nulls", stats["null_count"])]
        )
        if "vocabulary" in stats:
            details, chart = _vocabulary(stats, declaration)
        elif stats["type"] == "date":
            details, chart = _date(stats)
        elif stats["type"] == "custom":
            shown = ("count", "null_count", "missing_count", "type")
            details = _rows([(k, v) for k, v in stats.items() if k not in shown and not isinstance(v, (list, dict))])
            chart = f"<p class=note>statistic {_e(declaration.options['statistic'])} (a plug-in)</p>"
        elif "mean" in stats:
            details, chart = _numeric(stats)
        else:
            details, chart = "", "<p class=note>hashed: no statistics beyond counts</p>"
        anchor = f"feature-{index}"
        overview.append(
            f'<tr><td><a href="#{anchor}">{_e(name)}</a></td><td>{_e(stats["type"])}</td>'
            f'<td class=n>{_e(missing_breakdown(stats))}</td></tr>'
        )
        sections.append(
            f'<section class="feature-section" id="{anchor}"><h2>{_e(name)} '
            f'<span class=type>{_e(stats["type"])}</span></h2>'
            f'<div class=feature><div>{counts}{details}</div><div>{chart}</div></div></section>'
        )
    manifest, bad = bundle.manifest, bundle.bad_records
    bad_line = (
        f"{bad['count']:,} bad records left out: {_e(bad['by_reason'])}" if bad["count"] else "no bad records"
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>kdp_beam report: {_e(bundle.path)}</title><style>{_CSS}</style></head><body>"
        f"<h1>Data profile</h1><p class=meta>{_e(bundle.path)} · {bundle.row_count:,} rows · "
        f"{len(bundle.features)} features · written {_e(manifest.get('created_at'))} by kdp_beam "
        f"{_e(manifest.get('kdp_beam_version'))} · input {_e(manifest.get('input'))} · {bad_line}</p>"
        '<section id="overview"><h2>Features</h2><table><tr><th>feature</th><th>type</th>'
        f"<th>missing</th></tr>{''.join(overview)}</table></section>"
        f"{''.join(sections)}</body></html>"
    )


def write_report(bundle_path, output):
    """Loads a bundle and writes its report to `output` (local or remote).

    Raises KdpBeamError before loading anything when `output` cannot be a file (a
    directory, under a file, not writable), BundleError for a bundle that does not load.
    """
    check_output_file(output, "report")
    page = render_report(load_bundle(bundle_path))
    write_output_file(output, page.encode("utf-8"), "report")
    return output
