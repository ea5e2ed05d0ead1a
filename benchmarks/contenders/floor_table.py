"""The floor of issue 14's targets: each file read whole by pyarrow's multi-threaded reader
(`pyarrow.csv.read_csv`, or `pyarrow.parquet.read_table` for .parquet files) in one
process, then the exact mean and variance of each float column and the value counts of
each string column, merged over the files. No framework: the least any tool must spend
reading these files and computing these statistics on this machine. With --import-beam,
the process imports apache_beam first: the least a tool built on Beam can spend.
"""

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from benchmarks.contenders import arguments


def read(path, floats, strings):
    if path.endswith(".parquet"):
        return pq.read_table(path, columns=floats + strings)
    types = {n: pa.float64() for n in floats} | {n: pa.string() for n in strings}
    return pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(column_types=types))


def merge(a, b):
    """Two (count, mean, population variance) merged: Chan, Golub & LeVeque's pairwise
    formula, as kdp_beam merges its moments (exact to float64 rounding)."""
    (n_a, mean_a, variance_a), (n_b, mean_b, variance_b) = a, b
    total = n_a + n_b
    delta = mean_b - mean_a
    return (total, mean_a + delta * n_b / total,
            (variance_a * n_a + variance_b * n_b + delta * delta * n_a * n_b / total) / total)


def main():
    args, floats, strings, files = arguments()
    if "--import-beam" in args.extra:
        # The floor with Beam's import before it: what any tool built on Beam spends at least.
        import apache_beam  # noqa: F401
    moments = {n: (0, 0.0, 0.0) for n in floats}  # (count, mean, population variance)
    counts = {n: {} for n in strings}
    for path in files:
        table = read(path, floats, strings)
        for n in floats:
            column = table.column(n)
            count = len(column) - column.null_count
            if not count:
                continue
            moments[n] = merge(moments[n], (count, pc.mean(column).as_py(), pc.variance(column, ddof=0).as_py()))
        for n in strings:
            values = pc.value_counts(table.column(n))
            for value, count in zip(values.field(0).to_pylist(), values.field(1).to_pylist()):
                counts[n][value] = counts[n].get(value, 0) + count
    print(len(files), sum(m[0] for m in moments.values()), sum(len(c) for c in counts.values()))


if __name__ == "__main__":
    main()
