"""Issue 14's targets, measured side by side in one run on the same files: `kdp-beam
analyze` as a user runs it (the CLI installed next to this python, the local FnApiRunner
in process) against the floor (benchmarks/contenders/floor_table.py: one process reading
each file whole with pyarrow's multi-threaded reader, plus exact mean/variance and value
counts per column).

    python -m benchmarks.targets            # full sizes, each point run once
    python -m benchmarks.targets --quick    # 200k rows: a couple of minutes, to check a change
    python -m benchmarks.targets --quick --rows 1000000 --workloads csv parquet

Data (benchmarks/data.py, written once under out/bench-data): half float_normalized, half
string_categorical with 100 Zipf-distributed tokens, 20 features, 8 shards. One line per
workload is printed; every run is appended to results/targets.json (targets-quick.json
with --quick) and the newest is drawn as results/targets.md and results/targets.png.
"""

import argparse
import compileall
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.data import write_dataset
from benchmarks.plot import plot_targets
from benchmarks.run import DATA, HERE, ROOT, machine, measure_command

FEATURES, SHARDS = 20, 8
PLANS = {
    "full": {"csv_rows": 5_000_000, "parquet_rows": 10_000_000, "repeats": 5, "size_repeats": 3, "cooldown": 3.0,
             "limit": 900},
    "quick": {"csv_rows": 200_000, "parquet_rows": 200_000, "repeats": 3, "size_repeats": 1, "cooldown": 1.0,
              "limit": 300},
}
# (target ratio, what it bounds): kdp_beam's time over the reference's.
TARGETS = {
    "csv": (1.4, "wall and CPU"),
    "csv_bare": (1.4, "wall and CPU"),  # the same target, for the floor's statistics only
    # The floor in a process that imports Beam first: the least any Beam job spends here.
    "csv_bound": (None, "for comparison"),
    "parquet": (1.5, "wall and CPU"),
    "fixed": (1.15, "wall"),
    "multi": (1.0, "wall"),  # "not slower than in-process"
}
# Peak RSS at 10x the rows over peak RSS at 1x: at most the allocator's residue (before
# issue 14: 322 -> 382 MB, x1.19, for 1M -> 10M rows of CSV).
MEMORY_GROWTH = 1.25
WORKLOADS = ("fixed", "csv", "csv_bare", "csv_bound", "multi", "parquet", "memory")
TWO_WORKERS = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
KDP_BEAM = os.path.join(os.path.dirname(sys.executable), "kdp-beam")


def dataset(rows, shards=SHARDS, file_format="csv"):
    name = f"{'pq_' if file_format == 'parquet' else ''}r{rows}_f{FEATURES}_s{shards}"
    pattern, features = write_dataset(os.path.join(DATA, name), rows, FEATURES, shards=shards,
                                      file_format=file_format)
    size = sum(os.path.getsize(path) for path in glob.glob(pattern))
    return {"pattern": pattern, "features": features, "rows": rows, "shards": shards,
            "format": file_format, "input_bytes": size}


def prepare(plan, workloads):
    """Writes every dataset the workloads read before the first measurement, and flushes
    them to disk, so that no writing competes with a measured run."""
    rows = plan["csv_rows"]
    if "fixed" in workloads:
        dataset(10, shards=1)
    if {"csv", "csv_bare", "csv_bound", "multi", "memory"} & set(workloads):
        bare_features(dataset(rows))
    if "parquet" in workloads:
        dataset(plan["parquet_rows"], file_format="parquet")
    if "memory" in workloads:
        for r in memory_rows(rows):
            dataset(r)
    os.sync()


class Runner:
    """Runs one measured command at a time, after a cool-down, each in a fresh directory."""

    def __init__(self, plan):
        self.plan = plan

    def _run(self, name, command_in):
        time.sleep(self.plan["cooldown"])
        load = os.getloadavg()[0]
        with tempfile.TemporaryDirectory(prefix="kdp_beam_targets_") as workdir:
            record = measure_command(name, command_in(workdir), workdir, self.plan["limit"])
        print(f"  {json.dumps(record)}", file=sys.stderr, flush=True)
        return record | {"load_before": round(load, 2)}

    def kdp_beam(self, data, extra=(), name="kdp_beam"):
        return self._run(name, lambda workdir: [
            KDP_BEAM, "analyze", "--features", data["features"], "--input", data["pattern"],
            "--output", os.path.join(workdir, "bundle"), *extra])

    def floor(self, data, import_beam=False):
        name = "floor after import apache_beam" if import_beam else "floor"
        return self._run(name, lambda workdir: [
            sys.executable, "-m", "benchmarks.contenders.floor_table", "--pattern", data["pattern"],
            "--features", data["features"], "--workdir", workdir, *(["--import-beam"] if import_beam else [])])

    def import_beam(self):
        return self._run("import apache_beam", lambda _: [sys.executable, "-c", "import apache_beam"])


def ratio(a, b, key):
    if a["status"] != "ok" or b["status"] != "ok" or not b[key]:
        return None
    return round(a[key] / b[key], 2)


def judged(workload, title, kdp, reference, reference_name, **extra):
    """A workload's record: both measurements, the ratios and whether the target held."""
    limit, bounds = TARGETS[workload]
    wall, cpu = ratio(kdp, reference, "wall_s"), ratio(kdp, reference, "cpu_s")
    checked = [wall, cpu] if bounds == "wall and CPU" else [wall]
    if limit is None:
        held, target = "comparison", bounds
    else:
        held, target = None if None in checked else all(r <= limit for r in checked), f"{bounds} <= {limit}x"
    return {"workload": workload, "title": title, "kdp_beam": kdp, "reference_name": reference_name,
            "reference": reference, "wall_ratio": wall, "cpu_ratio": cpu,
            "target": target, "held": held, **extra}


def median_record(name, records):
    """The median wall and CPU of repeated runs (each kept under "runs")."""
    ok = [r for r in records if r["status"] == "ok"]
    status = "ok" if len(ok) == len(records) else next(r["status"] for r in records if r["status"] != "ok")
    return {"contender": name, "status": status,
            "wall_s": round(statistics.median(r["wall_s"] for r in ok), 2) if ok else None,
            "cpu_s": round(statistics.median(r["cpu_s"] for r in ok), 2) if ok else None,
            "peak_rss_mb": max((r["peak_rss_mb"] for r in ok), default=None), "runs": records}


def fixed_cost(runner, plan):
    data = dataset(10, shards=1)
    got = interleaved({"import apache_beam": runner.import_beam, "kdp_beam": lambda: runner.kdp_beam(data)},
                      plan["repeats"])
    return judged("fixed", f"10-row CSV, median of {plan['repeats']} (fixed cost)", got["kdp_beam"],
                  got["import apache_beam"], 'python -c "import apache_beam"', data=data)


def interleaved(contenders, repeats):
    """{name: the median record of `repeats` runs}, the contenders run in turn each round:
    on a shared machine one run of each can differ by a third (benchmarks/README.md), and
    a drifting load then touches all of them alike."""
    runs = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, run in contenders.items():
            runs[name].append(run())
    return {name: median_record(name, records) for name, records in runs.items()}


def csv_and_multi(runner, plan, workloads):
    data = dataset(plan["csv_rows"])
    contenders = {"kdp_beam": lambda: runner.kdp_beam(data)}
    if {"csv", "csv_bare", "csv_bound"} & set(workloads):
        contenders["floor"] = lambda: runner.floor(data)
    if "csv_bound" in workloads:
        contenders["floor after import apache_beam"] = lambda: runner.floor(data, import_beam=True)
    if "csv_bare" in workloads:
        bare = bare_features(data)
        contenders["kdp_beam, profile off"] = lambda: runner.kdp_beam(bare, name="kdp_beam, profile off")
    if "multi" in workloads:
        contenders["kdp_beam 2 workers"] = lambda: runner.kdp_beam(data, TWO_WORKERS, "kdp_beam 2 workers")
    got = interleaved(contenders, plan["size_repeats"])
    kdp, label, found = got["kdp_beam"], f"CSV {rows_label(data)}{median_of(plan)}", {}
    if "csv" in workloads:
        found["csv"] = judged("csv", label, kdp, got["floor"], "floor: pyarrow.csv.read_csv", data=data)
    if "csv_bare" in workloads:
        found["csv_bare"] = judged("csv_bare", f"{label}, profile off", got["kdp_beam, profile off"], got["floor"],
                                   "floor: pyarrow.csv.read_csv", data=data)
    if "csv_bound" in workloads:
        found["csv_bound"] = judged("csv_bound", f"{label}: the floor after `import apache_beam`, the least a Beam job "
                                    "spends", got["floor after import apache_beam"], got["floor"], "floor: pyarrow.csv.read_csv",
                                    data=data)
    if "multi" in workloads:
        found["multi"] = judged("multi", f"{label}, 2 local workers", got["kdp_beam 2 workers"], kdp,
                                "kdp_beam in process", data=data, flags=" ".join(TWO_WORKERS))
    return found, kdp, data


def median_of(plan):
    return f", median of {plan['size_repeats']}" if plan["size_repeats"] > 1 else ""


def bare_features(data):
    """`data` with a features file of the same declarations and the profile off (spec
    "profile": false: no quantile sketch, no shape statistics beyond the moments), so that
    kdp_beam computes about what the floor does: counts, mean and variance, vocabularies."""
    path = os.path.join(os.path.dirname(data["features"]), "features-profile-off.json")
    if not os.path.exists(path):
        with open(data["features"]) as f:
            spec = json.load(f)
        with open(path, "w") as f:
            json.dump({**spec, "profile": False}, f, indent=1)
    return {**data, "features": path}


def parquet(runner, plan):
    data = dataset(plan["parquet_rows"], file_format="parquet")
    got = interleaved({"kdp_beam": lambda: runner.kdp_beam(data), "floor": lambda: runner.floor(data)},
                      plan["size_repeats"])
    return judged("parquet", f"Parquet {rows_label(data)}{median_of(plan)}", got["kdp_beam"], got["floor"],
                  "floor: pyarrow.parquet.read_table", data=data)


def memory(runner, plan, csv_point):
    points = [csv_point] + [point(runner, dataset(r)) for r in memory_rows(plan["csv_rows"])]
    points.sort(key=lambda p: p["rows"])
    growth = ratio(points[-1]["kdp_beam"], points[0]["kdp_beam"], "peak_rss_mb")
    return {"workload": "memory", "title": f"peak RSS, CSV {points[0]['rows']:,} -> {points[-1]['rows']:,} rows",
            "points": points, "rss_ratio": growth, "target": f"peak RSS at 10x the rows <= {MEMORY_GROWTH}x",
            "held": None if growth is None else growth <= MEMORY_GROWTH}


def memory_rows(csv_rows):
    """The rows of the memory points besides the csv workload's: 10x apart, around it."""
    return csv_rows // 5, csv_rows * 2


def point(runner, data, kdp=None):
    """A memory point: rows, input size and kdp_beam's measurement (run unless given)."""
    return {"rows": data["rows"], "input_bytes": data["input_bytes"], "kdp_beam": kdp or runner.kdp_beam(data)}


def rows_label(data):
    rows = data["rows"]
    count = (f"{rows // 1_000_000}M" if rows % 1_000_000 == 0
             else f"{rows // 1000}k" if rows % 1000 == 0 else str(rows))
    size = data["input_bytes"]
    size = f"{size / 1e9:.2f} GB" if size >= 1e9 else f"{size / 1e6:.1f} MB"
    return f"{count} x {FEATURES} ({size}, {data['shards']} files)"


def commit():
    """The measured code's commit, "+dirty" when kdp_beam/ has uncommitted changes."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = git("status", "--porcelain", "--", "kdp_beam")
    return git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")


HELD = {True: "held", False: "MISSED", None: "not measured", "comparison": "-"}


def measured(r):
    return f"{r['wall_s']} s, {r['cpu_s']} CPU-s, {r['peak_rss_mb']:.0f} MB" if r["status"] == "ok" else r["status"]


def peaks(w, arrow):
    return f" {arrow} ".join(f"{p['kdp_beam']['peak_rss_mb']:.0f} MB ({p['rows']:,} rows)" for p in w["points"])


def summary_line(w):
    """One line per workload: the ratios and the target first, then both measurements."""
    if w["workload"] == "memory":
        return (f"{w['workload']:8} peak RSS x{w['rss_ratio']} ({w['target']}: {HELD[w['held']]}); "
                f"kdp_beam {peaks(w, '->')}")
    return (f"{w['workload']:8} wall {w['wall_ratio']}x, CPU {w['cpu_ratio']}x ({w['target']}: {HELD[w['held']]}); "
            f"{w['title']}: {w['kdp_beam']['contender']} {measured(w['kdp_beam'])}; {w['reference_name']} "
            f"{measured(w['reference'])}")


def markdown(run):
    lines = [f"Run {run['run']} ({run['mode']}), {run['machine']}, kdp_beam {run['commit']}, "
             f"load average {run['load_before']} before, {run['load_after']} after.", "",
             "| workload | kdp_beam | reference | wall ratio | CPU ratio | target | held? |",
             "|---|---|---|---:|---:|---|---|"]
    for w in run["workloads"]:
        held = HELD[w["held"]].replace("MISSED", "**missed**")
        if w["workload"] == "memory":
            lines.append(f"| {w['title']} | {peaks(w, '→')} | | {w['rss_ratio']}x (RSS) | | {w['target']} | {held} |")
        else:
            lines.append(f"| {w['title']} | {measured(w['kdp_beam'])} | {w['reference_name']}: "
                         f"{measured(w['reference'])} | {w['wall_ratio']}x | {w['cpu_ratio']}x | {w['target']} | {held} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (200k rows), a couple of minutes")
    parser.add_argument("--rows", type=int, help="rows of the CSV and Parquet workloads (instead of the plan's)")
    parser.add_argument("--workloads", nargs="*", choices=WORKLOADS, default=list(WORKLOADS))
    args = parser.parse_args(argv)
    if not os.path.exists(KDP_BEAM):
        sys.exit(f"no kdp-beam next to {sys.executable}: run with the python of a venv where "
                 "kdp_beam is installed (pip install -e .), e.g. make bench-targets")
    mode = "quick" if args.quick else "full"
    plan = dict(PLANS[mode])
    if args.rows:
        plan |= {"csv_rows": args.rows, "parquet_rows": args.rows}
    runner = Runner(plan)
    run = {"run": time.strftime("%Y-%m-%dT%H:%M:%S"), "mode": mode, "plan": plan, "machine": machine(),
           "commit": commit(), "kdp_beam_cli": KDP_BEAM, "load_before": round(os.getloadavg()[0], 2)}
    prepare(plan, args.workloads)
    # kdp_beam's bytecode, as pip writes it when it installs the package: run from a
    # checkout with PYTHONDONTWRITEBYTECODE set, every measured run would compile it again.
    compileall.compile_dir(os.path.join(ROOT, "kdp_beam"), quiet=1)
    found = {}
    if "fixed" in args.workloads:
        found["fixed"] = fixed_cost(runner, plan)
    if {"csv", "csv_bare", "csv_bound", "multi", "memory"} & set(args.workloads):
        measured, kdp, data = csv_and_multi(runner, plan, args.workloads)
        found |= measured
        csv_point = point(runner, data, kdp)
    if "parquet" in args.workloads:
        found["parquet"] = parquet(runner, plan)
    if "memory" in args.workloads:
        found["memory"] = memory(runner, plan, csv_point)
    run["workloads"] = [found[w] for w in WORKLOADS if w in found]
    run["load_after"] = round(os.getloadavg()[0], 2)

    name = "targets" if mode == "full" else "targets-quick"
    results_path = os.path.join(HERE, "results", f"{name}.json")
    runs = json.load(open(results_path)) if os.path.exists(results_path) else []
    with open(results_path, "w") as f:
        json.dump(runs + [run], f, indent=1)
    with open(os.path.join(HERE, "results", f"{name}.md"), "w") as f:
        f.write(markdown(run))
    plot_targets(run, os.path.join(HERE, "results", f"{name}.png"))
    print(f"kdp_beam {run['commit']}, {mode}, load average {run['load_before']} -> {run['load_after']}")
    for w in run["workloads"]:
        print(summary_line(w))


if __name__ == "__main__":
    main()
