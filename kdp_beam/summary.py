"""A plain-text table of a bundle's per-feature counts: what was missing, what was seen."""


def missing_breakdown(stats, kind):
    """"12 (10 null, 2 NaN)": what the model will fill, by the causes its type counts."""
    parts = [f"{stats[key]:,} {label}" for key, label in kind.missing_causes if stats.get(key)]
    total = stats.get("missing_count", 0)
    return f"{total:,} ({', '.join(parts)})" if parts else f"{total:,}"


def values_per_row(stats):
    """"0–7 values per row (mean 2.41, 12 rows empty)": a multivalent feature's lengths
    (its `missing` are values, not rows), or None for a feature of one value per row."""
    if "mean_values_per_row" not in stats:
        return None
    if stats["mean_values_per_row"] is None:
        return "no rows"
    return (
        f"{stats['min_values_per_row']:,}–{stats['max_values_per_row']:,} values per row "
        f"(mean {stats['mean_values_per_row']:.3g}, {stats['empty_count']:,} "
        f"{'row' if stats['empty_count'] == 1 else 'rows'} empty)"
    )


def label_line(label):
    """"label 'y': binary (inferred), positive '1' in 31.2% of 9,876 labelled rows, 124
    missing": the label's statistics (statistics.json's "label") in one line."""
    labelled = label["count"] - label["null_count"]
    kind = f"{label['label_type']}{' (inferred)' if label['inferred'] else ''}"
    if label["label_type"] == "regression":
        described = f"mean {label['mean']:.6g}, variance {label['variance']:.6g}"
    elif label["label_type"] == "binary":
        described = f"positive {label['positive_class']!r} in {label['prior'][0]:.1%}"
    else:
        shown = ", ".join(repr(c) for c in label["classes"][:5]) + (", ..." if len(label["classes"]) > 5 else "")
        count = len(label['classes'])
        described = f"{count:,} class{'' if count == 1 else 'es'} ({shown})"
    return (
        f"label {label['column']!r}: {kind}, {described} of {labelled:,} labelled rows, "
        f"{label['null_count']:,} missing"
    )


def summary_table(spec, features, row_count, label=None):
    """The table `kdp-beam analyze` prints: one line per feature, its values described by
    its type (and a multivalent feature's values per row), after the label's line when
    `label` (a bundle's label statistics) is given."""
    header = ("feature", "type", "missing", "values")
    rows = []
    for name, stats in features.items():
        kind, options = spec.features[name].kind, spec.features[name].options
        values = "; ".join(part for part in (kind.summary(stats, options), values_per_row(stats)) if part)
        rows.append((name, stats["type"], missing_breakdown(stats, kind), values))
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"{row_count:,} rows"] + ([label_line(label)] if label is not None else [])
    for row in [header, *rows]:
        lines.append("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    return "\n".join(lines)
