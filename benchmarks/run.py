"""Runs every contender on the same files, each in its own process, and records wall time,
CPU time and peak memory (RSS of the whole process tree).

    python -m benchmarks.run            # full: rows 10k..2M at 20 features, 4..64 features
    python -m benchmarks.run --quick    # a few minutes, for checking the harness

Results are appended to benchmarks/results/results.json (quick.json for --quick); plots and the table are drawn
from it by benchmarks.plot.
"""

import argparse
import contextlib
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import psutil

from benchmarks.data import write_dataset

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = {"full": os.path.join(HERE, "results", "results.json"),
           "quick": os.path.join(HERE, "results", "quick.json")}
DATA = os.path.join(ROOT, "out", "bench-data")

CONTENDERS = {
    "floor (pyarrow+numpy)": ["-m", "benchmarks.contenders.floor"],
    "kdp_beam": ["-m", "benchmarks.contenders.kdp_beam_cli"],
    "kdp_beam 2 workers": ["-m", "benchmarks.contenders.kdp_beam_cli"],
    "keras FeatureSpace": ["-m", "benchmarks.contenders.keras_featurespace"],
    "KDP 1.13": ["-m", "benchmarks.contenders.kdp"],
    "tf.Transform 1.21": ["-m", "benchmarks.contenders.tf_transform"],
}
EXTRA_ARGS = {
    "kdp_beam": ["--runner=FnApiRunner"],
    "kdp_beam 2 workers": [
        "--runner=FnApiRunner",
        "--direct_running_mode=multi_processing",
        "--direct_num_workers=2",
    ],
}
FULL = {"rows": [10_000, 100_000, 1_000_000, 2_000_000], "rows_features": 20,
        "features": [4, 8, 16, 32, 64], "features_rows": 200_000, "limit": 900}
QUICK = {"rows": [10_000, 50_000], "rows_features": 8,
         "features": [4, 16], "features_rows": 20_000, "limit": 180}


def machine():
    return f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB"


def tree_rss(process):
    try:
        tree = [process, *process.children(recursive=True)]
    except psutil.Error:  # it has just ended
        return 0
    total = 0
    for p in tree:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def measure(name, pattern, features_path, limit):
    """Runs one contender to completion or `limit` seconds; returns its measurements."""
    with tempfile.TemporaryDirectory(prefix="kdp_beam_bench_") as workdir:
        command = [sys.executable, *CONTENDERS[name], "--pattern", pattern,
                   "--features", features_path, "--workdir", workdir, *EXTRA_ARGS.get(name, [])]
        return measure_command(name, command, workdir, limit)


def measure_command(name, command, workdir, limit):
    """Runs `command` (cwd and PYTHONPATH: the repository; its stderr kept in `workdir`) to
    completion or `limit` seconds; returns its measurements."""
    gc.collect()
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    log_path = os.path.join(workdir, "stderr.log")
    start = time.monotonic()
    with open(log_path, "wb") as log:
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                 stderr=log, start_new_session=True)
    # wait4 (not poll) so the child's CPU time, and its waited-for workers', is kept; in a
    # thread of its own so the end is timed when the child exits, not at the next sample.
    ended = {}

    def reap():
        ended["wait4"] = os.wait4(child.pid, 0)
        ended["at"] = time.monotonic()

    watched, peak, status = psutil.Process(child.pid), 0, "ok"
    reaper = threading.Thread(target=reap, daemon=True)
    reaper.start()
    while reaper.is_alive():
        peak = max(peak, tree_rss(watched))
        if status == "ok" and time.monotonic() - start > limit:
            with contextlib.suppress(ProcessLookupError):  # unless it has just ended
                os.killpg(child.pid, signal.SIGKILL)
            status = f"cut off at {limit} s"
        reaper.join(0.1)
    _, wait_status, usage = ended["wait4"]
    wall = ended["at"] - start
    code = os.waitstatus_to_exitcode(wait_status)
    with open(log_path, errors="replace") as log:
        stderr = log.read()
    if status == "ok" and code != 0:
        status = "failed: " + stderr.strip().splitlines()[-1][:300] if stderr.strip() else "failed"
    return {"contender": name, "status": status, "wall_s": round(wall, 2),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "peak_rss_mb": round(peak / 2**20, 1)}


def best_of(records):
    """The fastest of repeated runs (wall and CPU apart), the largest peak, and the runs."""
    return {"wall_s": min(r["wall_s"] for r in records), "cpu_s": min(r["cpu_s"] for r in records),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in records), "runs": records}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--contenders", nargs="*", default=list(CONTENDERS))
    parser.add_argument("--points", nargs="*", help="only these sweep points, as ROWSxFEATURES")
    parser.add_argument("--cooldown", type=float, default=3.0)
    parser.add_argument("--limit", type=float, help="seconds before a contender is cut off")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    points = [("rows", r, plan["rows_features"]) for r in plan["rows"]]
    points += [("features", plan["features_rows"], f) for f in plan["features"]]
    results_path = RESULTS["quick" if args.quick else "full"]
    os.makedirs(os.path.dirname(results_path), exist_ok=True)
    results = json.load(open(results_path)) if os.path.exists(results_path) else []
    run_id = time.strftime("%Y-%m-%dT%H:%M:%S")
    if args.points:
        points = [p for p in points if f"{p[1]}x{p[2]}" in args.points]
    for sweep, rows, features in points:
        pattern, features_path = write_dataset(os.path.join(DATA, f"r{rows}_f{features}"), rows, features)
        for name in args.contenders:
            time.sleep(args.cooldown)
            record = measure(name, pattern, features_path, args.limit or plan["limit"])
            record |= {"run": run_id, "mode": "quick" if args.quick else "full",
                       "sweep": sweep, "rows": rows, "features": features,
                       "machine": machine()}
            results.append(record)
            print(json.dumps(record), flush=True)
            with open(results_path, "w") as f:
                json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
