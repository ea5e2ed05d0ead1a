"""One module per contender; each is run in its own process by benchmarks.run:

    python -m benchmarks.contenders.NAME --pattern 'dir/part-*.csv' --features dir/features.json
"""

import argparse
import glob
import json


def arguments():
    """(args, float feature names, string feature names, files); arguments the parser does
    not know are kept in args.extra (the kdp_beam contender passes them to Beam)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--pattern", required=True)
    parser.add_argument("--features", required=True)
    parser.add_argument("--workdir", required=True)
    args, args.extra = parser.parse_known_args()
    with open(args.features) as f:
        spec = json.load(f)["features"]
    kinds = {n: t if isinstance(t, str) else t["type"] for n, t in spec.items()}
    floats = [n for n, t in kinds.items() if t == "float_normalized"]
    strings = [n for n, t in kinds.items() if t == "string_categorical"]
    return args, floats, strings, sorted(glob.glob(args.pattern))
