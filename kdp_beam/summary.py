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


def summary_table(spec, features, row_count):
    """The table `kdp-beam analyze` prints: one line per feature, its values described by
    its type (and a multivalent feature's values per row)."""
    header = ("feature", "type", "missing", "values")
    rows = []
    for name, stats in features.items():
        kind, options = spec.features[name].kind, spec.features[name].options
        values = "; ".join(part for part in (kind.summary(stats, options), values_per_row(stats)) if part)
        rows.append((name, stats["type"], missing_breakdown(stats, kind), values))
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"{row_count:,} rows"]
    for row in [header, *rows]:
        lines.append("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    return "\n".join(lines)
