"""Issue 15's benchmark: what a list of values per row costs the analysis, per value,
against the scalar categorical path, on the same Parquet files in one run.

    python -m benchmarks.multivalent            # 5M rows, 8 files, each point 3 times
    python -m benchmarks.multivalent --quick    # 200k rows, to check a change

The files (written once under out/bench-data): the seed's 20 scalar features (half
float_normalized, half string_categorical), a `tags` list of 0-10 Zipf-distributed
tokens of 1,000 (5 values per row on average), and five scalar columns `tag_0`..`tag_4`
drawn the same way, one token per row: as many values as `tags` holds, on the scalar path.
Three feature sets are analysed by `kdp-beam analyze` over the same files:

- base: one float_normalized column (the job's fixed cost, and a scalar beside the rest);
- base + tags, declared ``{"type": "string_categorical", "multivalent": true}``;
- base + tag_0..tag_4, five string_categoricals.

The cost per value of each addition (reading its column included) is its time beyond base
over the values it adds; the target is the multivalent one within 1.5x of the scalar one,
in wall and CPU time (the minimum of the repeats, which is what noise cannot lower; the
20 scalar features are in the files, not analysed: beside them each addition is a small
difference of two large, noisy times). Each run is appended to
results/multivalent.json and printed.
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.data import feature_names, seed_columns
from benchmarks.run import DATA, HERE, best_of, machine, measure_command
from benchmarks.targets import KDP_BEAM, commit

FEATURES, SHARDS, TOKENS, MAX_TAGS, SCALAR_TAG_COLUMNS = 20, 8, 1000, 10, 5
PLANS = {"full": {"rows": 5_000_000, "repeats": 5}, "quick": {"rows": 200_000, "repeats": 2}}
TARGET = 1.5


def write_files(rows):
    """The Parquet files and the three features files (written once, reused)."""
    directory = os.path.join(DATA, f"multivalent_r{rows}_s{SHARDS}")
    done = os.path.join(directory, "_SUCCESS")
    floats, strings = feature_names(FEATURES)
    base = {floats[0]: "float_normalized"}
    specs = {
        "base": base,
        "tags": base | {"tags": {"type": "string_categorical", "multivalent": True}},
        "scalar": base | {f"tag_{i}": "string_categorical" for i in range(SCALAR_TAG_COLUMNS)},
    }
    if not os.path.exists(done):
        os.makedirs(directory, exist_ok=True)
        rng = np.random.default_rng(15)
        tokens = np.array([f"t{j:04d}" for j in range(TOKENS)])
        bounds = np.linspace(0, rows, SHARDS + 1).astype(int)
        for shard, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
            n = stop - start
            columns = seed_columns(rng, n, floats, strings)
            lengths = rng.integers(0, MAX_TAGS + 1, n)
            offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
            values = pa.array(tokens[rng.zipf(1.3, int(offsets[-1])) % TOKENS])
            columns["tags"] = pa.ListArray.from_arrays(pa.array(offsets), values)
            columns |= {f"tag_{i}": tokens[rng.zipf(1.3, n) % TOKENS] for i in range(SCALAR_TAG_COLUMNS)}
            pq.write_table(pa.table(columns), os.path.join(directory, f"part-{shard:05d}.parquet"))
        open(done, "w").close()
    for name, features in specs.items():
        with open(os.path.join(directory, f"{name}.json"), "w") as f:
            json.dump({"features": features}, f, indent=1)
    parts = [os.path.join(directory, n) for n in os.listdir(directory) if n.endswith(".parquet")]
    tag_values = sum(pc.sum(pc.list_value_length(pq.read_table(p, columns=["tags"])["tags"])).as_py() for p in parts)
    return directory, tag_values


def analyze(directory, spec, repeats):
    """The fastest of `repeats` runs of kdp-beam analyze (wall and CPU separately)."""
    records = []
    for _ in range(repeats):
        time.sleep(2.0)
        with tempfile.TemporaryDirectory(prefix="kdp_beam_multivalent_") as workdir:
            command = [KDP_BEAM, "analyze", "--features", os.path.join(directory, f"{spec}.json"),
                       "--input", os.path.join(directory, "part-*.parquet"),
                       "--output", os.path.join(workdir, "bundle")]
            record = measure_command(spec, command, workdir, 900)
        print(f"  {json.dumps(record)}", file=sys.stderr, flush=True)
        if record["status"] != "ok":
            sys.exit(f"{spec}: {record['status']}")
        records.append(record)
    return best_of(records)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200k rows, to check a change")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    plan = PLANS[mode]
    directory, tag_values = write_files(plan["rows"])
    os.sync()
    run = {"run": time.strftime("%Y-%m-%dT%H:%M:%S"), "mode": mode, "plan": plan, "machine": machine(),
           "commit": commit(), "tag_values": tag_values,
           "scalar_values": plan["rows"] * SCALAR_TAG_COLUMNS, "load_before": round(os.getloadavg()[0], 2)}
    for spec in ("base", "tags", "scalar"):
        run[spec] = analyze(directory, spec, plan["repeats"])
    for key in ("wall_s", "cpu_s"):
        per_tag = (run["tags"][key] - run["base"][key]) / tag_values
        per_scalar = (run["scalar"][key] - run["base"][key]) / run["scalar_values"]
        run[f"{key[:-2]}_ns_per_value"] = {"multivalent": round(per_tag * 1e9, 1), "scalar": round(per_scalar * 1e9, 1),
                                           "ratio": round(per_tag / per_scalar, 2) if per_scalar > 0 else None}
    ratios = [run[k]["ratio"] for k in ("wall_ns_per_value", "cpu_ns_per_value")]
    run["held"] = None if None in ratios else all(r <= TARGET for r in ratios)
    run["load_after"] = round(os.getloadavg()[0], 2)
    path = os.path.join(HERE, "results", "multivalent.json" if mode == "full" else "multivalent-quick.json")
    runs = json.load(open(path)) if os.path.exists(path) else []
    with open(path, "w") as f:
        json.dump(runs + [run], f, indent=1)
    print(f"kdp_beam {run['commit']}, {mode}, {plan['rows']:,} rows, {tag_values:,} tag values, "
          f"{run['scalar_values']:,} scalar tag values; load {run['load_before']} -> {run['load_after']}")
    for spec in ("base", "tags", "scalar"):
        r = run[spec]
        print(f"  {spec:7} {r['wall_s']} s, {r['cpu_s']} CPU-s, {r['peak_rss_mb']:.0f} MB")
    for key in ("wall_ns_per_value", "cpu_ns_per_value"):
        r = run[key]
        print(f"  {key}: multivalent {r['multivalent']} ns, scalar {r['scalar']} ns, ratio {r['ratio']}x "
              f"(target <= {TARGET}x)")
    print(f"  target {'held' if run['held'] else 'MISSED' if run['held'] is False else 'not measured'}")


if __name__ == "__main__":
    main()
