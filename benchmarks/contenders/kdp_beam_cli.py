"""kdp_beam as users run it: the `kdp-beam analyze` CLI on the local Beam runner.

Extra arguments (e.g. --direct_running_mode=multi_processing --direct_num_workers=2) are
passed to Beam.
"""

import os
import sys

from benchmarks.contenders import arguments
from kdp_beam.cli import main

if __name__ == "__main__":
    args, _, _, _ = arguments()
    output = os.path.join(args.workdir, "bundle")
    sys.exit(
        main(
            ["analyze", "--features", args.features, "--input", args.pattern, "--output", output]
            + args.extra
        )
    )
