"""kdp-beam report: one self-contained HTML page describing a bundle's data.

Drawn from the bundle alone (no data is read) with inline CSS and SVG: no script, no
network, so it opens anywhere and can be mailed. Every string from the data (feature
names, tokens, classes) is HTML-escaped. With a label: its own section (type, classes,
prior, missing labels), and per label-aware feature the label per top value.
"""

from kdp_beam.bundle.loader import load_bundle
from kdp_beam.output_files import check_output_file, write_output_file
from kdp_beam.tools.report_parts import escape as _e
from kdp_beam.tools.report_parts import label_section, rows
from kdp_beam.summary import missing_breakdown

# The page's style, which kdp-beam validate's page extends.
CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2733;max-width:1100px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 6px;border-bottom:1px solid #d8dee6;padding-bottom:4px}
.meta{color:#5a6877} table{border-collapse:collapse;margin:8px 0} td,th{padding:3px 10px;text-align:left;border-bottom:1px solid #eef1f4}
th{color:#5a6877;font-weight:600} td.n{text-align:right;font-variant-numeric:tabular-nums}
.feature{display:flex;gap:28px;flex-wrap:wrap} .type{background:#e8f0fb;color:#23508e;border-radius:4px;padding:1px 6px;font-size:12px}
.note{color:#5a6877;font-size:12px} svg text{font:11px system-ui,sans-serif;fill:#33414f}
"""


def render_report(bundle):
    """The report of a loaded Bundle as an HTML string."""
    sections, overview = [], []
    for index, (name, stats) in enumerate(bundle.features.items()):
        declaration = bundle.spec.features[name]
        missing = missing_breakdown(stats, declaration.kind)
        if "mean_values_per_row" in stats:  # a list per row: counts of values, then rows'
            counts = rows([
                ("rows", bundle.row_count), ("values", stats["count"]), ("missing values", missing),
                ("null values", stats["null_count"]), *values_per_row_rows(stats),
            ])
        else:
            counts = rows([("rows", stats["count"]), ("missing", missing), ("nulls", stats["null_count"])])
        details, chart = declaration.kind.report_section(stats, declaration.options)
        anchor = f"feature-{index}"
        overview.append(
            f'<tr><td><a href="#{anchor}">{_e(name)}</a></td><td>{_e(stats["type"])}</td>'
            f'<td class=n>{_e(missing)}</td></tr>'
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
        f"<title>kdp_beam report: {_e(bundle.path)}</title><style>{CSS}</style></head><body>"
        f"<h1>Data profile</h1><p class=meta>{_e(bundle.path)} · {bundle.row_count:,} rows · "
        f"{len(bundle.features)} features · written {_e(manifest.get('created_at'))} by kdp_beam "
        f"{_e(manifest.get('kdp_beam_version'))} · input {_e(manifest.get('input'))} · {bad_line}</p>"
        '<section id="overview"><h2>Features</h2><table><tr><th>feature</th><th>type</th>'
        f"<th>missing</th></tr>{''.join(overview)}</table></section>"
        f"{_label_section(bundle)}{''.join(sections)}</body></html>"
    )


def _label_section(bundle):
    """The section of the spec's label, before the features' ("" without a label)."""
    label = bundle.label  # None without a label
    if label is None:
        return ""
    details, chart = label_section(label)
    return (
        f'<section class="label-section" id="label"><h2>label {_e(label["column"])} '
        f'<span class=type>{_e(label["label_type"])}</span></h2>'
        f"<div class=feature><div>{details}</div><div>{chart}</div></div></section>"
    )


def values_per_row_rows(stats):
    """A multivalent feature's lengths: range, mean, median and 95% (from the lengths'
    21-point sketch), rows with no value."""
    points = stats["values_per_row_quantiles"]
    low, high = stats["min_values_per_row"], stats["max_values_per_row"]
    return [
        ("values per row", "–" if low is None else f"{low:,}–{high:,}"),
        ("mean per row", stats["mean_values_per_row"]),
        ("median per row", points[len(points) // 2] if points else None),
        ("95% of rows at most", points[-2] if points else None),
        ("empty rows", stats["empty_count"]),
    ]


def write_report(bundle_path, output):
    """Loads a bundle and writes its report to `output` (local or remote).

    Raises KdpBeamError before loading anything when `output` cannot be a file (a
    directory, under a file, not writable), BundleError for a bundle that does not load.
    """
    check_output_file(output, "report")
    page = render_report(load_bundle(bundle_path))
    write_output_file(output, page.encode("utf-8"), "report")
    return output
