"""Scale-out benchmark: rows to 10M, a 5M-distinct categorical, one 2 GB file, 1M rows
as Parquet / JSON Lines / TFRecord; 1 and 2 local workers. Records wall time, CPU time and peak RSS of the process tree, as run.py.

    python -m benchmarks.scale                 # all points (about 15 minutes here)
    python -m benchmarks.scale --points rows-1000000

Results: benchmarks/results/scale.json, summarised in benchmarks/README.md.
"""

import argparse
import json
import os
import time

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from benchmarks.data import write_dataset
from benchmarks.run import DATA, HERE, machine, measure

RESULTS = os.path.join(HERE, "results", "scale.json")
CHUNK = 1_000_000
DISTINCT = 5_000_000


def write_cardinality_dataset(directory, rows, distinct, shards=4, seed=0):
    """`rows` rows of (amount float, user_id string with exactly `distinct` values, each
    appearing rows/distinct times: every count ties, the hardest case for ranking)."""
    pattern = os.path.join(directory, "part-*.csv")
    features = os.path.join(directory, "features.json")
    if not os.path.exists(os.path.join(directory, "_SUCCESS")):
        os.makedirs(directory, exist_ok=True)
        rng = np.random.default_rng(seed)
        ids = rng.permutation(rows) % distinct
        bounds = np.linspace(0, rows, shards + 1).astype(int)
        for shard, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
            path = os.path.join(directory, f"part-{shard:05d}.csv")
            schema = pa.schema([("amount", pa.float64()), ("user_id", pa.string())])
            with pa_csv.CSVWriter(path, schema) as writer:
                for lo in range(start, stop, CHUNK):
                    hi = min(lo + CHUNK, stop)
                    users = pa.compute.binary_join_element_wise("u", pa.array(ids[lo:hi]).cast(pa.string()), "")
                    writer.write_table(pa.table({"amount": rng.lognormal(3, 1, hi - lo), "user_id": users}, schema=schema))
        spec = {"features": {"amount": "float_normalized",
                             "user_id": {"type": "string_categorical", "max_tokens": 100_000}}}
        with open(features, "w") as f:
            json.dump(spec, f)
        open(os.path.join(directory, "_SUCCESS"), "w").close()
    return pattern, features


def write_single_file(directory, source_pattern, source_features):
    """The shards of another dataset concatenated into one CSV file (one header)."""
    path = os.path.join(directory, "all.csv")
    if not os.path.exists(os.path.join(directory, "_SUCCESS")):
        os.makedirs(directory, exist_ok=True)
        import glob

        with open(path, "wb") as out:
            for i, shard in enumerate(sorted(glob.glob(source_pattern))):
                with open(shard, "rb") as f:
                    if i:
                        f.readline()  # the header, once
                    while chunk := f.read(64 << 20):
                        out.write(chunk)
        open(os.path.join(directory, "_SUCCESS"), "w").close()
    return path, source_features


def write_format(directory, fmt, source_pattern, source_features):
    """The shards of a CSV dataset rewritten as Parquet, JSON Lines or TFRecord (tf.Example
    encoded by tfx_bsl), with the same declarations."""
    pattern = os.path.join(directory, f"part-*.{fmt}")
    if not os.path.exists(os.path.join(directory, "_SUCCESS")):
        import glob

        import pyarrow.parquet as pq

        from kdp_beam.columns import column_types
        from kdp_beam.job import read_spec

        os.makedirs(directory, exist_ok=True)
        types = column_types(read_spec(source_features))
        for i, shard in enumerate(sorted(glob.glob(source_pattern))):
            table = pa_csv.read_csv(shard, convert_options=pa_csv.ConvertOptions(column_types=types))
            path = os.path.join(directory, f"part-{i:05d}.{fmt}")
            if fmt == "parquet":
                pq.write_table(table, path)
            elif fmt == "jsonl":
                with open(path, "w", encoding="utf-8") as f:
                    for batch in table.to_batches(100_000):
                        f.writelines(json.dumps(row) + "\n" for row in batch.to_pylist())
            else:
                _write_tfrecord(table, path)
        open(os.path.join(directory, "_SUCCESS"), "w").close()
    return pattern, source_features


_EXAMPLE_TYPES = {pa.float64(): pa.float32(), pa.string(): pa.binary()}


def _write_tfrecord(table, path):
    import tensorflow as tf
    from tfx_bsl.coders.example_coder import RecordBatchToExamples

    with tf.io.TFRecordWriter(path) as writer:
        for batch in table.to_batches(100_000):
            # tf.Example features are lists (one value, or none for a null) of float32,
            # int64 or bytes.
            lists = [
                pa.ListArray.from_arrays(
                    pa.array(np.append(0, np.cumsum(column.is_valid().to_numpy(zero_copy_only=False))), pa.int32()),
                    column.drop_null().cast(_EXAMPLE_TYPES.get(column.type, column.type)),
                )
                for column in batch.columns
            ]
            for example in RecordBatchToExamples(pa.RecordBatch.from_arrays(lists, batch.schema.names)):
                writer.write(example)


def points():
    found = {}
    for rows in (1_000_000, 3_000_000, 10_000_000):
        found[f"rows-{rows}"] = lambda rows=rows: write_dataset(
            os.path.join(DATA, f"r{rows}_f20"), rows, 20
        )
    for distinct in (100, DISTINCT):
        found[f"distinct-{distinct}"] = lambda distinct=distinct: write_cardinality_dataset(
            os.path.join(DATA, f"card_r10000000_d{distinct}"), 10_000_000, distinct
        )
    for fmt in ("parquet", "jsonl", "tfrecord"):
        found[f"format-{fmt}-1000000"] = lambda fmt=fmt: write_format(
            os.path.join(DATA, f"{fmt}_r1000000_f20"), fmt, *write_dataset(os.path.join(DATA, "r1000000_f20"), 1_000_000, 20)
        )
    found["one-file-10000000"] = lambda: write_single_file(
        os.path.join(DATA, "single_r10000000_f20"), *write_dataset(os.path.join(DATA, "r10000000_f20"), 10_000_000, 20)
    )
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", nargs="*", default=None)
    parser.add_argument("--contenders", nargs="*",
                        default=["floor (pyarrow+numpy)", "kdp_beam", "kdp_beam 2 workers"])
    parser.add_argument("--limit", type=float, default=1800)
    args = parser.parse_args(argv)
    results = json.load(open(RESULTS)) if os.path.exists(RESULTS) else []
    run_id = time.strftime("%Y-%m-%dT%H:%M:%S")
    for point, make in points().items():
        if args.points and point not in args.points:
            continue
        pattern, features = make()
        size = sum(os.path.getsize(p) for p in __import__("glob").glob(pattern))
        for name in args.contenders:
            time.sleep(3)
            record = measure(name, pattern, features, args.limit)
            record |= {"run": run_id, "point": point, "input_bytes": size,
                       "machine": machine()}
            results.append(record)
            print(json.dumps(record), flush=True)
            with open(RESULTS, "w") as f:
                json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
