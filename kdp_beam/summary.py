"""A plain-text table of a bundle's per-feature counts: what was missing, what was seen."""


def missing_breakdown(stats, kind):
    """"12 (10 null, 2 NaN)": what the model will fill, by the causes its type counts."""
    parts = [f"{stats[key]:,} {label}" for key, label in kind.missing_causes if stats.get(key)]
    total = stats.get("missing_count", 0)
    return f"{total:,} ({', '.join(parts)})" if parts else f"{total:,}"


def summary_table(spec, features, row_count):
    """The table `kdp-beam analyze` prints: one line per feature, its values described by
    its type."""
    header = ("feature", "type", "missing", "values")
    rows = []
    for name, stats in features.items():
        kind, options = spec.features[name].kind, spec.features[name].options
        rows.append((name, stats["type"], missing_breakdown(stats, kind), kind.summary(stats, options)))
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"{row_count:,} rows"]
    for row in [header, *rows]:
        lines.append("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    return "\n".join(lines)
