"""kdp_beam as users run it: the `kdp-beam analyze` CLI on the local Beam runner.

Extra arguments (e.g. --direct_running_mode=multi_processing --direct_num_workers=2) are
passed to Beam.
"""

import os
import sys

from kdp_beam.cli import main

if __name__ == "__main__":
    known, beam_args = sys.argv[1:7], sys.argv[7:]
    options = dict(zip(known[::2], known[1::2]))
    sys.exit(
        main(
            [
                "analyze",
                "--features", options["--features"],
                "--input", options["--pattern"],
                "--output", os.path.join(options["--workdir"], "bundle"),
                *beam_args,
            ]
        )
    )
