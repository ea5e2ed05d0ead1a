"""Draws the plots and the markdown table from benchmarks/results/results.json.

    python -m benchmarks.plot        # writes benchmarks/results/*.png and table.md

Uses the newest full-mode measurement of each point; a contender cut off or failed at a point is marked, not hidden.
"""

import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")


def newest_run(records):
    """The newest full-mode record of each (sweep, rows, features, contender)."""
    newest = {}
    for r in sorted((r for r in records if r["mode"] == "full"), key=lambda r: r["run"]):
        newest[(r["sweep"], r["rows"], r["features"], r["contender"])] = r
    return list(newest.values())


def _plot(records, sweep, x_key, y_key, y_label, file_name, title):
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for contender in dict.fromkeys(r["contender"] for r in records):
        points = sorted((r for r in records if r["sweep"] == sweep and r["contender"] == contender),
                        key=lambda r: r[x_key])
        ok = [r for r in points if r["status"] == "ok"]
        line, = axes.plot([r[x_key] for r in ok], [r[y_key] for r in ok], marker="o", label=contender)
        for r in points:
            if r["status"] != "ok":  # cut off or failed: an x at the limit it reached
                axes.plot([r[x_key]], [r[y_key]], marker="x", markersize=10, color=line.get_color())
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel(x_key)
    axes.set_ylabel(y_label)
    axes.set_title(title, fontsize=10)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(os.path.join(RESULTS, file_name), dpi=110)
    plt.close(figure)


def table(records):
    lines = ["| rows | features | contender | wall s | CPU s | peak RSS MB | status |",
             "|---:|---:|---|---:|---:|---:|---|"]
    for r in sorted(records, key=lambda r: (r["sweep"] != "rows", r["rows"], r["features"])):
        lines.append(f"| {r['rows']:,} | {r['features']} | {r['contender']} | {r['wall_s']} | "
                     f"{r['cpu_s']} | {r['peak_rss_mb']} | {r['status']} |")
    return "\n".join(lines) + "\n"


def main():
    with open(os.path.join(RESULTS, "results.json")) as f:
        records = newest_run(json.load(f))
    rows_features = next(r["features"] for r in records if r["sweep"] == "rows")
    feature_rows = next((r["rows"] for r in records if r["sweep"] == "features"), None)
    _plot(records, "rows", "rows", "wall_s", "wall time (s)", "time_vs_nr_data.png",
          f"Analysis wall time vs rows ({rows_features} features, 2 cores)")
    _plot(records, "features", "features", "wall_s", "wall time (s)", "time_vs_nr_features.png",
          f"Analysis wall time vs features ({feature_rows:,} rows, 2 cores)")
    _plot(records, "rows", "rows", "peak_rss_mb", "peak RSS of the process tree (MB)",
          "memory_vs_nr_data.png", f"Peak memory vs rows ({rows_features} features)")
    with open(os.path.join(RESULTS, "table.md"), "w") as f:
        f.write(table(records))


if __name__ == "__main__":
    main()
