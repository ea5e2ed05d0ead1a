"""The pieces of `kdp-beam report`'s page a feature type draws its section with: tables,
bar charts and histograms as inline HTML and SVG, every string escaped."""

import html
import math


def escape(value):
    return html.escape(str(value), quote=True)


def number(value):
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.6g}"
    return f"{value:,}" if isinstance(value, int) else escape(value)


def rows(pairs):
    cells = "".join(f"<tr><th>{escape(k)}</th><td class=n>{number(v)}</td></tr>" for k, v in pairs)
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
            f'<text x="{label_width - 6}" y="{y + 12}" text-anchor="end">{escape(text)}</text>'
            f'<rect x="{label_width}" y="{y + 2}" width="{length:.1f}" height="{row - 5}" fill="#4a7bd0"/>'
            f'<text x="{label_width + length + 4:.1f}" y="{y + 12}">{value:,}</text>'
        )
    return (
        f'<svg class="chart bars" width="{width}" height="{height}" role="img" aria-label="{escape(title)}">'
        f'<text x="0" y="12" font-weight="600">{escape(title)}</text>{"".join(bars)}</svg>'
    )


def histogram(points, title, width=460, height=170):
    """An equal-frequency histogram from quantile points q0 (min) .. qk (max): each of the
    k bins holds 1/k of the values, so its height is its density 1 / (k * width)."""
    points = [p for p in points if p is not None and math.isfinite(p)]
    if len(points) < 2 or points[-1] == points[0]:
        return "<p class=note>a single value: no histogram</p>"
    low, high, bins = points[0], points[-1], len(points) - 1
    # In units of the range (0 at min, 1 at max): scale-free, so a range of subnormals
    # (whose thousandth underflows to 0: a division by zero) draws as any other.
    at = [(p - low) / (high - low) for p in points]
    widths = [max(b - a, 1e-3) for a, b in zip(at[:-1], at[1:])]
    densities = [1 / (bins * w) for w in widths]
    top = max(densities)
    plot_w, plot_h, left = width - 20, height - 40, 10
    rects = []
    for a, w, d in zip(at[:-1], widths, densities):
        x = left + plot_w * a
        h = plot_h * d / top
        rects.append(
            f'<rect x="{x:.1f}" y="{20 + plot_h - h:.1f}" width="{max(plot_w * w, 1):.1f}" '
            f'height="{h:.1f}" fill="#4a7bd0" fill-opacity="0.75"/>'
        )
    return (
        f'<svg class="chart histogram" width="{width}" height="{height}" role="img" aria-label="{escape(title)}">'
        f'<text x="0" y="12" font-weight="600">{escape(title)}</text>{"".join(rects)}'
        f'<text x="{left}" y="{height - 4}">{number(low)}</text>'
        f'<text x="{left + plot_w}" y="{height - 4}" text-anchor="end">{number(high)}</text></svg>'
    )


def profile_histogram(stats):
    """The histogram of a number's distribution sketch (`--profile`'s profile_quantiles),
    or None when it was not sketched."""
    points = stats.get("profile_quantiles")
    return histogram(points, "distribution (equal-frequency bins)") if points else None


def vocabulary_section(stats, denominator, what, extra=()):
    """(details, chart) of a vocabulary: distinct and kept tokens, the share of the
    `denominator` values (or tokens: `what`) the kept ones cover, `extra` rows, and the
    most frequent tokens' bars."""
    kept = sum(stats["vocabulary_counts"])
    coverage = kept / denominator if denominator else 0.0
    distinct = stats["distinct_count"]
    pairs = [
        ("distinct", distinct if distinct is not None else "approximate"),
        ("kept (max_tokens)", stats["vocabulary_size"]),
        (f"coverage of {what}", f"{coverage:.1%}"),
        *extra,
    ]
    return rows(pairs), bar_chart(stats["vocabulary"], stats["vocabulary_counts"], "most frequent")


def _table(header, body, note=""):
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    # The first column names the row (a value, a class): text, the others numbers.
    cells = "".join(
        f"<tr><td>{number(row[0])}</td>" + "".join(f"<td class=n>{number(v)}</td>" for v in row[1:]) + "</tr>"
        for row in body
    )
    return f"<table class=label-table><tr>{head}</tr>{cells}</table>" + (f"<p class=note>{escape(note)}</p>" if note else "")


def _label_headers(label_type, columns):
    """What each label column's value per row is: a class's rate, or the label's mean."""
    if label_type == "regression":
        return [f"mean of {c}" for c in columns]
    return [f"rate of {c}" for c in columns]


def label_by_value(stats, max_rows=20, max_columns=10):
    """(rows, table) of a label-aware feature: its labelled rows and the prior, then per
    top value (the vocabulary's first `max_rows`, in its order) its rows, n (labelled rows
    holding it) and the label's rate per class (mean, for regression) among those n; the
    mutual-information score when the vocabulary is ranked by it."""
    columns = list(stats["label_columns"])
    shown_columns = columns[:max_columns]
    scores = stats.get("vocabulary_scores")
    header = ["value", "rows", "labelled (n)", *_label_headers(stats["label_type"], shown_columns)]
    header += ["MI (nats)"] if scores is not None else []
    body = [["prior: every labelled row", None, None, *stats["label_prior"][:max_columns]] + ([None] if scores is not None else [])]
    top = zip(stats["vocabulary"], stats["vocabulary_counts"], stats["vocabulary_label_counts"], stats["vocabulary_label_sums"])
    for i, (token, count, n, sums) in enumerate(list(top)[:max_rows]):
        rates = [s / n if n else None for s in sums[:max_columns]]
        body.append([token, count, n, *rates] + ([scores[i]] if scores is not None else []))
    notes = []
    if len(stats["vocabulary"]) > max_rows:
        notes.append(f"the first {max_rows} of {len(stats['vocabulary']):,} values")
    if len(columns) > max_columns:
        notes.append(f"the first {max_columns} of {len(columns):,} classes")
    pairs = [("labelled rows with a value", stats["label_rows"]), ("label", stats["label_type"])]
    return rows(pairs), _table(header, body, "; ".join(notes))


def label_section(label):
    """The report's section of the label itself (a bundle's top-level "label"
    statistics): its type and whether inferred, rows with and without it, its classes'
    counts and rates, or its mean and spread."""
    labelled = label["count"] - label["null_count"]
    pairs = [
        ("column", label["column"]),
        ("type", f"{label['label_type']} ({'inferred from the data' if label['inferred'] else 'declared'})"),
        ("rows", label["count"]),
        ("missing labels (left out of label statistics)", label["null_count"]),
        ("labelled rows", labelled),
    ]
    if label["label_type"] == "regression":
        variance = label.get("variance")
        pairs += [("mean (prior)", label.get("mean")), ("std", None if variance is None else math.sqrt(variance))]
        return rows(pairs), ""
    if label.get("positive_class") is not None:
        pairs.append(("positive class", label["positive_class"]))
    counts = label["class_counts"]
    body = [[c, n, n / labelled if labelled else None] for c, n in zip(label["classes"], counts)]
    note = f"the first 50 of {len(body):,} classes" if len(body) > 50 else ""
    table = _table(["class", "rows", "rate"], body[:50], note)
    return rows(pairs) + table, bar_chart(label["classes"], counts, "rows per class")
