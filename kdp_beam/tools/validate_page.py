"""kdp-beam validate --output: one self-contained HTML page of a comparison of two bundles.

Like `kdp-beam report`'s page (inline CSS and SVG, no script, no network, every string
from the data escaped): the schema changes and dataset metrics first, then each compared
feature, those with a fired anomaly first, with both distributions on one axis (numbers:
densities on both sides' quantile bins; values: the top values' shares side by side)
and every metric with its threshold.
"""

import numpy as np

from kdp_beam.tools.report import CSS
from kdp_beam.tools.report_parts import escape as _e
from kdp_beam.tools.report_parts import number
from kdp_beam.tools.validate import OTHER, cdf, common_edges, sketch_points, value_counts

BASELINE_COLOUR, CURRENT_COLOUR = "#4a7bd0", "#e07b39"
_CSS = CSS + """
tr.fired td{background:#fde8e4;color:#8f1d0b;font-weight:600} .badge{background:#c0341d;color:#fff;border-radius:4px;padding:1px 6px;font-size:12px}
.ok{background:#2f7d4a;color:#fff;border-radius:4px;padding:1px 6px;font-size:12px}
"""


def render_diff(result):
    """The page of a kdp_beam.tools.validate.ValidationResult, as an HTML string."""
    baseline, current = result.bundles
    fired = {a["feature"] for a in result.anomalies}
    order = sorted(result.features, key=lambda name: (name not in fired, list(result.features).index(name)))
    sections = [_feature_section(i, name, result, name in fired) for i, name in enumerate(order)]
    verdict = (
        f'<span class=badge>{len(result.anomalies)} anomalies</span>' if result.anomalies else '<span class=ok>no anomaly</span>'
    )
    schema = "".join(
        f"<tr class=fired><td>{_e(c['feature'])}</td><td>{_e(_schema_words(c))}</td></tr>" for c in result.schema
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>kdp_beam validate: {_e(result.current)}</title><style>{_CSS}</style></head><body>"
        f"<h1>Validation {verdict}</h1><p class=meta>baseline {_e(result.baseline)} ({baseline.row_count:,} rows) · "
        f"current {_e(result.current)} ({current.row_count:,} rows) · "
        f'<span style="color:{BASELINE_COLOUR}">■ baseline</span> <span style="color:{CURRENT_COLOUR}">■ current</span></p>'
        f'<section id="dataset"><h2>Dataset</h2>{_metrics_table(result.dataset)}'
        + (f"<h2>Schema changes</h2><table><tr><th>feature</th><th>change</th></tr>{schema}</table>" if schema else "")
        + f"</section>{''.join(sections)}</body></html>"
    )


def _schema_words(change):
    if change["change"] == "type":
        return f"declared {change['baseline']} in the baseline, {change['current']} now: not compared"
    return {"removed": "in the baseline only", "added": "in the current bundle only"}[change["change"]]


def _metrics_table(metrics):
    rows = []
    for metric, found in metrics.items():
        detail = found.get("reason") or ""
        if found.get("pooled"):
            detail = "values beyond a bundle's kept vocabulary pooled as one"
        rows.append(
            f'<tr class="{"fired" if found["fired"] else ""}"><td>{_e(metric)}</td><td class=n>{number(found["value"])}</td>'
            f'<td class=n>{number(found["threshold"])}</td><td>{"fired" if found["fired"] else ""}</td>'
            f"<td class=note>{_e(detail)}</td></tr>"
        )
    return f"<table><tr><th>metric</th><th>value</th><th>threshold</th><th></th><th></th></tr>{''.join(rows)}</table>"


def _feature_section(index, name, result, fired):
    baseline, current = result.bundles
    stats = baseline.features[name]
    chart = ""
    if "vocabulary" in stats:
        chart = value_bars(value_counts(baseline, name)[0], value_counts(current, name)[0])
    elif "mean" in stats:
        sketches = [sketch_points(bundle, name) for bundle in result.bundles]
        if None not in sketches:
            chart = overlaid_densities(sketches[0][0], sketches[1][0])
        else:
            chart = f"<p class=note>no histogram: {_e(result.features[name].get('jensen_shannon', {}).get('reason', 'no sketch'))}</p>"
    badge = " <span class=badge>anomaly</span>" if fired else ""
    return (
        f'<section class="feature-section" id="feature-{index}"><h2>{_e(name)} <span class=type>{_e(stats["type"])}</span>{badge}</h2>'
        f"<div class=feature><div>{_metrics_table(result.features[name])}</div><div>{chart}</div></div></section>"
    )


def value_bars(was, now, top=15, width=520):
    """The top values' shares of both sides, paired bars per value, as inline SVG."""
    total_was, total_now = sum(was.values()) or 1, sum(now.values()) or 1
    shares = {t: (was.get(t, 0) / total_was, now.get(t, 0) / total_now) for t in was.keys() | now.keys()}
    ranked = sorted(shares, key=lambda t: (-max(shares[t]), t == OTHER, str(t)))[:top]
    if not ranked:
        return "<p class=note>no values</p>"
    highest = max(max(shares[t]) for t in ranked) or 1
    row, label_width = 24, 150
    parts = []
    for i, token in enumerate(ranked):
        y = 20 + i * row
        text = str(token) if len(str(token)) <= 24 else str(token)[:23] + "…"
        parts.append(f'<text x="{label_width - 6}" y="{y + 14}" text-anchor="end">{_e(text)}</text>')
        for j, (share, colour) in enumerate(zip(shares[token], (BASELINE_COLOUR, CURRENT_COLOUR))):
            length = (width - label_width - 60) * share / highest
            parts.append(
                f'<rect class="{("baseline", "current")[j]}" x="{label_width}" y="{y + 2 + j * 10}" width="{length:.1f}" height="9" fill="{colour}"/>'
                f'<text x="{label_width + length + 4:.1f}" y="{y + 10 + j * 10}">{share:.1%}</text>'
            )
    height = 28 + row * len(ranked)
    return (
        f'<svg class="chart bars" width="{width}" height="{height}" role="img" aria-label="top values, both sides">'
        f'<text x="0" y="12" font-weight="600">share of values</text>{"".join(parts)}</svg>'
    )


def overlaid_densities(baseline_points, current_points, width=520, height=190):
    """Both sides' densities on one axis spanning both ranges, on the validation's bins
    (the baseline's equal-mass quantiles; beyond its range, the current's), as two
    outlined step curves."""
    # Interleaving both sides' edges would make bins narrower than the sketches' quantile
    # gaps (spikes of noise): the baseline's, and the current's only beyond its range.
    baseline_edges, current_edges = common_edges(baseline_points), common_edges(current_points)
    beyond = (current_edges < baseline_edges[0]) | (current_edges > baseline_edges[-1])
    edges = np.concatenate([baseline_edges, current_edges[beyond]])
    low = min(baseline_points[0], current_points[0])
    high = max(baseline_points[-1], current_points[-1])
    if high <= low:
        return "<p class=note>a single value on both sides: no histogram</p>"
    # The bins beyond the baseline's range reach the current range's ends.
    grid = np.unique(np.concatenate([[low], edges, [high]]))
    plot_w, plot_h, left = width - 20, height - 44, 10
    curves = []
    densities = []
    for points in (baseline_points, current_points):
        mass = np.diff(cdf(points, grid))
        mass[0] += cdf(points, grid[:1])[0]  # a point mass at the low end
        densities.append(mass / np.maximum(np.diff(grid), (high - low) * 1e-3))
    top = max(float(d.max()) for d in densities) or 1.0
    for density, colour, side in zip(densities, (BASELINE_COLOUR, CURRENT_COLOUR), ("baseline", "current")):
        path = []
        for a, b, d in zip(grid[:-1], grid[1:], density):
            xa, xb = left + plot_w * (a - low) / (high - low), left + plot_w * (b - low) / (high - low)
            y = 20 + plot_h - plot_h * d / top
            path.append(f"L{xa:.1f},{y:.1f} L{xb:.1f},{y:.1f}")
        start = f"M{left},{20 + plot_h}"
        end = f"L{left + plot_w},{20 + plot_h}"
        curves.append(
            f'<path class="{side}" d="{start} {" ".join(path)} {end}" fill="{colour}" fill-opacity="0.18" stroke="{colour}" stroke-width="1.5"/>'
        )
    return (
        f'<svg class="chart histogram" width="{width}" height="{height}" role="img" aria-label="distributions, both sides">'
        f'<text x="0" y="12" font-weight="600">density (common bins)</text>{"".join(curves)}'
        f'<text x="{left}" y="{height - 6}">{number(float(low))}</text>'
        f'<text x="{left + plot_w}" y="{height - 6}" text-anchor="end">{number(float(high))}</text></svg>'
    )
