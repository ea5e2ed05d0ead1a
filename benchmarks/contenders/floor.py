"""The floor: parse the CSV with pyarrow and reduce it with numpy in one process.

The least any tool must spend reading this data on this machine: mean/variance of each
float column, value counts of each string column, no framework.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from benchmarks.contenders import arguments


def main():
    args, floats, strings, files = arguments()
    types = {n: pa.float64() for n in floats} | {n: pa.string() for n in strings}
    sums = {n: [0, 0.0, 0.0] for n in floats}
    counts = {n: {} for n in strings}
    for path in files:
        reader = pa_csv.open_csv(
            path,
            read_options=pa_csv.ReadOptions(block_size=4 << 20),
            convert_options=pa_csv.ConvertOptions(column_types=types),
        )
        for batch in reader:
            for n in floats:
                x = batch.column(n).to_numpy(zero_copy_only=False)
                s = sums[n]
                s[0] += x.size
                s[1] += x.sum()
                s[2] += x @ x
            for n in strings:
                vc = pc.value_counts(batch.column(n))
                for v, c in zip(vc.field(0).to_pylist(), vc.field(1).to_pylist()):
                    counts[n][v] = counts[n].get(v, 0) + c
    means = {n: s[1] / s[0] for n, s in sums.items()}
    print(len(means), sum(len(c) for c in counts.values()))
    assert all(np.isfinite(list(means.values())))


if __name__ == "__main__":
    main()
