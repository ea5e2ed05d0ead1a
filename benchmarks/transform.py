"""Issue 18's benchmark: `kdp-beam transform` against the same FeatureSpace applied in
tf.data, and training from its output against encoding on the fly, on the same files in one
run.

    python -m benchmarks.transform            # 5M rows x 20 seed-style features, 8 CSV files
    python -m benchmarks.transform --quick    # 200k rows

The data and declarations are the seed benchmark's (benchmarks.data: 10 float_normalized,
10 string_categorical of 100 Zipf-distributed values, one-hot: 1,020 floats per encoded
row). Its bundle is analysed once, unmeasured. Then, each in its own process, measured by
benchmarks.run.measure_command (wall, CPU-s of the process tree, peak RSS):

- transform: `kdp-beam transform --format tfrecord` (the local FnApiRunner in-process, and
  with two worker processes; and `--format parquet` in-process), against benchmarks.contenders.tfdata_transform (tf.data's CSV
  reader, ``map(fs, AUTOTUNE)``, tfx_bsl's tf.Example encoder, tf.io.TFRecordWriter);
  rows/s = rows / wall.
- training input: one epoch of `kdp_beam.transformed_dataset` over kdp_beam's TFRecord and
  Parquet outputs against tf.data's CSV reader ``.map(fs)``, both batches of 1024 rows of the same encoded
  dict (benchmarks.contenders.training_input); rows/s from the first batch to the last.

Each run is appended to results/transform.json (transform-quick.json) and printed.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

PLANS = {"full": {"rows": 5_000_000, "repeats": 1}, "quick": {"rows": 200_000, "repeats": 1}}
FEATURES, SHARDS = 20, 8
TWO_WORKERS = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]


def analysed(data, workdir):
    """The data's bundle (analysed once per run, not measured)."""
    import subprocess

    bundle = os.path.join(workdir, "bundle")
    subprocess.run([sys.executable, "-m", "kdp_beam", "analyze", "--features", data["features"], "--input",
                    data["pattern"], "--output", bundle], check=True, stdout=subprocess.DEVNULL)
    return bundle


def run(name, command, workdir, limit=7200):
    from benchmarks.run import measure_command

    os.sync()
    time.sleep(2.0)
    record = measure_command(name, command, workdir, limit)
    print(f"  {json.dumps(record)}", file=sys.stderr, flush=True)
    if record["status"] != "ok":
        sys.exit(f"{name}: {record['status']}")
    result = os.path.join(workdir, "result.json")
    if os.path.exists(result):
        with open(result) as f:
            record.update(json.load(f))
    return record


def directory_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def transform_runs(data, bundle, workdir):
    """The transform contenders; returns ({name: record}, {format: kdp_beam's output})."""
    contenders = {
        "kdp-beam transform": ("tfrecord", []),
        "kdp-beam transform, 2 workers": ("tfrecord", TWO_WORKERS),
        "kdp-beam transform --format parquet": ("parquet", []),
    }
    records, kept = {}, {}
    for name, (file_format, extra) in contenders.items():
        output = os.path.join(workdir, name.replace(" ", "_").replace(",", "").replace("-", ""))
        command = [sys.executable, "-m", "kdp_beam", "transform", "--bundle", bundle, "--input", data["pattern"],
                   "--output", output, "--format", file_format, "--runner=FnApiRunner", *extra]
        record = run(name, command, workdir)
        with open(os.path.join(output, "manifest.json")) as f:
            record["rows"] = json.load(f)["row_count"]
        if record["rows"] != data["rows"]:
            sys.exit(f"{name}: {record['rows']} rows written, not {data['rows']}")
        record["output_bytes"] = directory_bytes(output)
        records[name] = record
        if file_format not in kept:
            kept[file_format] = output
        else:
            shutil.rmtree(output)
    reference = os.path.join(workdir, "tfdata")
    os.makedirs(reference)
    command = [sys.executable, "-m", "benchmarks.contenders.tfdata_transform", "--pattern", data["pattern"],
               "--features", data["features"], "--workdir", reference, "--bundle", bundle]
    record = run("tf.data map(fs)", command, reference)
    if record["rows"] != data["rows"]:
        sys.exit(f"tf.data map(fs): {record['rows']} rows written, not {data['rows']}")
    record["output_bytes"] = directory_bytes(reference)
    records["tf.data map(fs)"] = record
    shutil.rmtree(reference)
    for record in records.values():
        record["rows_per_s"] = round(record["rows"] / record["wall_s"])
    return records, kept


def training_runs(data, bundle, encoded, workdir):
    records = {}
    contenders = {f"transformed_dataset ({file_format})": ["--mode", "transformed", "--encoded", output]
                  for file_format, output in encoded.items()}
    contenders["raw CSV .map(fs)"] = ["--mode", "on_the_fly", "--bundle", bundle]
    for name, extra in contenders.items():
        here = tempfile.mkdtemp(prefix="kdp_beam_input_", dir=workdir)
        command = [sys.executable, "-m", "benchmarks.contenders.training_input", "--pattern", data["pattern"],
                   "--features", data["features"], "--workdir", here, *extra]
        record = run(name, command, here)
        if record["rows"] != data["rows"]:
            sys.exit(f"{name}: {record['rows']} rows, not {data['rows']}")
        record["rows_per_s"] = round(record["rows"] / record["seconds"])
        records[name] = record
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200k rows, to check a change")
    args = parser.parse_args(argv)
    from benchmarks.run import HERE, machine
    from benchmarks.targets import commit, dataset

    mode = "quick" if args.quick else "full"
    plan = PLANS[mode]
    data = dataset(plan["rows"], SHARDS)
    result = {"run": time.strftime("%Y-%m-%dT%H:%M:%S"), "mode": mode, "plan": plan, "machine": machine(),
              "commit": commit(), "load_before": round(os.getloadavg()[0], 2), "input_bytes": data["input_bytes"]}
    with tempfile.TemporaryDirectory(prefix="kdp_beam_transform_bench_", dir=os.path.dirname(data["pattern"])) as workdir:
        bundle = analysed(data, workdir)
        result["transform"], encoded = transform_runs(data, bundle, workdir)
        result["training_input"] = training_runs(data, bundle, encoded, workdir)
    t, i = result["transform"], result["training_input"]
    result["ratios"] = {
        "transform over tf.data (rows/s)": round(t["kdp-beam transform"]["rows_per_s"] / t["tf.data map(fs)"]["rows_per_s"], 2),
        "transform 2 workers over tf.data (rows/s)": round(
            t["kdp-beam transform, 2 workers"]["rows_per_s"] / t["tf.data map(fs)"]["rows_per_s"], 2),
    }
    for file_format in ("tfrecord", "parquet"):
        result["ratios"][f"transformed_dataset ({file_format}) over on-the-fly (rows/s)"] = round(
            i[f"transformed_dataset ({file_format})"]["rows_per_s"] / i["raw CSV .map(fs)"]["rows_per_s"], 2)
    result["load_after"] = round(os.getloadavg()[0], 2)
    path = os.path.join(HERE, "results", "transform.json" if mode == "full" else "transform-quick.json")
    runs = json.load(open(path)) if os.path.exists(path) else []
    with open(path, "w") as f:
        json.dump(runs + [result], f, indent=1)
    print(f"kdp_beam {result['commit']}, {mode}, {plan['rows']:,} rows x {FEATURES}; load "
          f"{result['load_before']} -> {result['load_after']}")
    for group in ("transform", "training_input"):
        for name, r in result[group].items():
            print(f"  {name:38} {r['rows_per_s']:>9,} rows/s  wall {r['wall_s']} s, {r['cpu_s']} CPU-s, "
                  f"{r['peak_rss_mb']:.0f} MB")
    for name, value in result["ratios"].items():
        print(f"  {name}: {value}x")


if __name__ == "__main__":
    main()
