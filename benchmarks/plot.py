"""Draws the plots and the markdown table from benchmarks/results/results.json.

    python -m benchmarks.plot        # writes benchmarks/results/*.png and table.md

(benchmarks.targets draws its own plot with plot_targets.)

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


# What each timed workload of benchmarks.targets compares, for the x axis.
TARGET_LABELS = {"fixed": "10-row CSV\nvs import apache_beam", "csv": "{rows}\nvs read_csv",
                 "csv_bare": "{rows}\nprofile off\nvs read_csv",
                 "csv_bound": "{rows}\nthe floor after\nimport apache_beam\nvs read_csv", "multi": "{rows}\n2 workers\nvs in process",
                 "parquet": "{rows}\nvs read_table"}


def plot_targets(run, path):
    """Issue 14's targets (one run of benchmarks.targets): kdp_beam's bars beside its
    reference's for wall time and CPU time, each labelled with the ratio (and the target,
    where it bounds that time), and kdp_beam's peak RSS against rows."""
    timed = [w for w in run["workloads"] if w["workload"] != "memory"]
    memory = next((w for w in run["workloads"] if w["workload"] == "memory"), None)
    panels = [("wall_s", "wall time (s)", "wall_ratio", "wall"), ("cpu_s", "CPU time, user+sys (s)", "cpu_ratio", "CPU")]
    figure, axes = plt.subplots(1, len(panels) + bool(memory), figsize=(6 * (len(panels) + bool(memory)), 4.8))
    labels = [TARGET_LABELS[w["workload"]].format(rows=w["title"].split(" (")[0]) for w in timed]
    for ax, (key, y_label, ratio_key, measure) in zip(axes, panels):
        xs = range(len(timed))
        kdp = [w["kdp_beam"][key] or 0 for w in timed]
        ax.bar([x - 0.2 for x in xs], kdp, 0.4, label="kdp_beam")
        ax.bar([x + 0.2 for x in xs], [w["reference"][key] or 0 for w in timed], 0.4,
               label="reference: floor, import, in process")
        for x, w, height in zip(xs, timed, kdp):
            if w[ratio_key] is not None:
                target = f"\ntarget {w['target'].split('<= ')[-1]}" if measure in w["target"] else ""
                ax.annotate(f"{w[ratio_key]}x{target}", (x - 0.2, height), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(list(xs), labels, fontsize=7)
        ax.set_ylabel(y_label)
        ax.margins(y=0.2)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    if memory:
        ax = axes[-1]
        points = [p for p in memory["points"] if p["kdp_beam"]["status"] == "ok"]
        peaks = [p["kdp_beam"]["peak_rss_mb"] for p in points]
        ax.plot([p["rows"] for p in points], peaks, marker="o", label="kdp_beam")
        ax.set_xscale("log")
        ax.set_xticks([p["rows"] for p in points], [f"{p['rows']:,}" for p in points], fontsize=7)
        ax.minorticks_off()
        ax.set_ylim(0, max(peaks, default=1) * 1.3)
        ax.set_xlabel("rows (CSV, 20 features, 8 files)")
        ax.set_ylabel("peak RSS of the process tree (MB)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    figure.suptitle(f"kdp_beam vs the floor, one run ({run['run']}, {run['mode']}, {run['machine']})", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


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
