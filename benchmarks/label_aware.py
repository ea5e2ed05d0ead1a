"""Issue 16's benchmark: a target-encoded categorical (its label statistics per token, in the
same pass) against the same feature counted by frequency alone, on the same files in one run.

    python -m benchmarks.label_aware            # 10M rows, 1M distinct values, 8 Parquet files
    python -m benchmarks.label_aware --quick    # 400k rows, 40k distinct values

The files (written once under out/bench-data): `city`, a string of D distinct values (half
the rows Zipf-distributed, half uniform, so nearly all D are seen and a few are frequent),
and a binary label `y` ("0" / "1", 2% missing) whose rate depends on the value. Two
declarations of `city`, each analysed in its own process by `kdp-beam analyze` (the local
FnApiRunner, the Parquet reader, the bundle with its mergeable state):

- frequency: ``"string_categorical"``: every token's count (no max_tokens: the whole
  vocabulary, spread over workers by token);
- target: ``{"type": "string_categorical", "output_mode": "target"}`` with ``"label": "y"``:
  also every token's labelled rows and positives, the label's statistics and the feature's
  totals.

The frequency run reads no label (a spec without one does not), so the difference is what a
user pays for the label: its column read, and its statistics. Measured
per run (benchmarks.run.measure_command): wall, CPU-s (user+sys, waited-for children
included) and peak RSS of the process tree; the minimum wall and CPU and the maximum peak
over the repeats, and their ratios target / frequency. Each run is appended to
results/label_aware.json (results/label_aware-quick.json) and printed.
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

# The harness (benchmarks.run, .targets: psutil, matplotlib) is imported by the functions
# that measure.

SHARDS = 8
PLANS = {
    "full": {"rows": 10_000_000, "distinct": 1_000_000, "repeats": 3},
    "quick": {"rows": 400_000, "distinct": 40_000, "repeats": 2},
}
SPECS = {
    "frequency": {"features": {"city": "string_categorical"}},
    "target": {"features": {"city": {"type": "string_categorical", "output_mode": "target"}}, "label": "y"},
}


def write_files(rows, distinct):
    """The Parquet files and the two features files (written once, reused)."""
    from benchmarks.run import DATA

    directory = os.path.join(DATA, f"label_aware_r{rows}_d{distinct}_s{SHARDS}")
    if not os.path.exists(os.path.join(directory, "_SUCCESS")):
        os.makedirs(directory, exist_ok=True)
        rng = np.random.default_rng(16)
        rate = rng.beta(2, 5, distinct)  # each value's positive rate
        bounds = np.linspace(0, rows, SHARDS + 1).astype(int)
        for shard, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
            n = stop - start
            values = np.where(rng.random(n) < 0.5, rng.zipf(1.2, n) % distinct, rng.integers(0, distinct, n))
            label = np.where(rng.random(n) < rate[values], "1", "0").astype(object)
            label[rng.random(n) < 0.02] = None
            columns = {"city": pa.array(np.char.add("v", values.astype(str))), "y": pa.array(label, pa.string())}
            pq.write_table(pa.table(columns), os.path.join(directory, f"part-{shard:05d}.parquet"))
        open(os.path.join(directory, "_SUCCESS"), "w").close()
    for name, spec in SPECS.items():
        with open(os.path.join(directory, f"{name}.json"), "w") as f:
            json.dump(spec, f, indent=1)
    return directory


def measure(directory, name, repeats):
    """The fastest of `repeats` runs (wall and CPU apart), the largest peak, and what the
    bundle holds (a check that both analysed the same tokens)."""
    from benchmarks.run import best_of, measure_command
    from kdp_beam.bundle.loader import load_bundle

    records = []
    for _ in range(repeats):
        time.sleep(2.0)
        with tempfile.TemporaryDirectory(prefix="kdp_beam_label_aware_") as workdir:
            output = os.path.join(workdir, "bundle")
            command = [sys.executable, "-m", "kdp_beam", "analyze", "--features", os.path.join(directory, f"{name}.json"),
                       "--input", os.path.join(directory, "part-*.parquet"), "--output", output]
            record = measure_command(name, command, workdir, 3600)
            print(f"  {json.dumps(record)}", file=sys.stderr, flush=True)
            if record["status"] != "ok":
                sys.exit(f"{name}: {record['status']}")
            city = load_bundle(output).features["city"]
            record["distinct_count"] = city["distinct_count"]
            record["labelled_rows"] = city.get("label_rows")
        records.append(record)
    return best_of(records)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="400k rows, to check a change")
    args = parser.parse_args(argv)
    from benchmarks.run import HERE, machine
    from benchmarks.targets import commit

    mode = "quick" if args.quick else "full"
    plan = PLANS[mode]
    directory = write_files(plan["rows"], plan["distinct"])
    os.sync()
    run = {"run": time.strftime("%Y-%m-%dT%H:%M:%S"), "mode": mode, "plan": plan, "machine": machine(),
           "commit": commit(), "load_before": round(os.getloadavg()[0], 2)}
    for name in SPECS:
        run[name] = measure(directory, name, plan["repeats"])
    run["target_over_frequency"] = {
        key: round(run["target"][key] / run["frequency"][key], 2) for key in ("wall_s", "cpu_s", "peak_rss_mb")
    }
    run["load_after"] = round(os.getloadavg()[0], 2)
    path = os.path.join(HERE, "results", "label_aware.json" if mode == "full" else "label_aware-quick.json")
    runs = json.load(open(path)) if os.path.exists(path) else []
    with open(path, "w") as f:
        json.dump(runs + [run], f, indent=1)
    distinct = run["frequency"]["runs"][0]["distinct_count"]
    print(f"kdp_beam {run['commit']}, {mode}, {plan['rows']:,} rows, {distinct:,} distinct values; "
          f"load {run['load_before']} -> {run['load_after']}")
    for name in SPECS:
        r = run[name]
        print(f"  {name:9} {r['wall_s']} s, {r['cpu_s']} CPU-s, {r['peak_rss_mb']:.0f} MB")
    ratios = run["target_over_frequency"]
    print(f"  target / frequency: wall {ratios['wall_s']}x, CPU {ratios['cpu_s']}x, peak RSS {ratios['peak_rss_mb']}x")


if __name__ == "__main__":
    main()
