"""Writes the sample dataset: sharded CSV and Parquet of a small tabular problem.

    python -m pipelines.sample_data --output out/sample --rows 20000 --shards 4

Deterministic (seeded). The columns exercise every feature type in
pipelines/sample/features.json, including awkward ones: a large-offset float, a
timestamp, nulls, NaN, tokens with commas, quotes, newlines and non-ASCII text, free-text
reviews and dates (some empty, some unparseable).
"""

import argparse
import os

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

REVIEW_WORDS = ["great", "slow", "support", "price", "Fast!", "app", "crashes,", "love", "it", "the", "très", "bien"]
CITIES = ["Paris", "Berlin", "Zürich", "São Paulo", "New York, NY", 'the "Big" Smoke', "Oslo\nNorth"]


def sample_table(rows, seed=0):
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 12, rows).round(1)
    age[rng.random(rows) < 0.02] = np.nan  # holes: written as empty fields
    income = rng.lognormal(10, 0.8, rows)
    city_weights = np.array([30, 25, 15, 10, 10, 6, 4], dtype=float)
    city = rng.choice(CITIES, rows, p=city_weights / city_weights.sum())
    plan = rng.choice(["free", "basic", "pro"], rows, p=[0.6, 0.3, 0.1])
    store_id = rng.integers(1, 60, rows)
    user_id = rng.integers(10**9, 10**9 + 5000, rows).astype(str)
    balance = rng.normal(1e8, 1e3, rows)  # KDP's float32 variance goes negative here
    signup_ts = rng.normal(1.6e9, 1e4, rows).round()
    label = (income > np.median(income)).astype(np.int64) ^ (plan == "pro")
    reviews = [" ".join(rng.choice(REVIEW_WORDS, n)) for n in rng.integers(0, 10, rows)]
    days = rng.integers(0, 3 * 365, rows).astype("timedelta64[D]") + np.datetime64("2022-01-01")
    hours = rng.integers(0, 24, rows)
    signup_date = [f"{d}T{h:02d}:00:00" for d, h in zip(days.astype(str), hours)]
    for i in np.flatnonzero(rng.random(rows) < 0.01):
        signup_date[i] = "" if i % 2 else "unknown"  # missing, unparseable
    return pa.table(
        {
            "age": pa.array(age, from_pandas=True),  # NaN -> null
            "income": income,
            "city": city,
            "plan": plan,
            "store_id": store_id,
            "user_id": user_id,
            "balance": balance,
            "signup_ts": signup_ts,
            "review": reviews,
            "signup_date": signup_date,
            "label": label.astype(np.int64),
        }
    )


def write_sample(output, rows=20000, shards=4, seed=0):
    """Writes output/csv/part-NNNNN.csv and output/parquet/part-NNNNN.parquet."""
    table = sample_table(rows, seed)
    for kind in ("csv", "parquet"):
        os.makedirs(os.path.join(output, kind), exist_ok=True)
    bounds = np.linspace(0, rows, shards + 1).astype(int)
    for shard, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
        part = table.slice(start, stop - start)
        pa_csv.write_csv(part, os.path.join(output, "csv", f"part-{shard:05d}.csv"))
        pq.write_table(
            part, os.path.join(output, "parquet", f"part-{shard:05d}.parquet"), row_group_size=2048
        )
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="out/sample")
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--shards", type=int, default=4)
    args = parser.parse_args(argv)
    write_sample(args.output, args.rows, args.shards)
    print(f"wrote {args.rows} rows in {args.shards} shards under {args.output}/{{csv,parquet}}")


if __name__ == "__main__":
    main()
