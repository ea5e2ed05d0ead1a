"""The analysis job as a plain Beam main, to launch as-is on Dataflow, Flink or locally.

    python -m pipelines.analyze --features gs://b/features.json --input 'gs://b/data/*.parquet' \
        --output gs://b/artifacts --runner DataflowRunner --project P --region R \
        --temp_location gs://b/tmp --setup_file ./setup.py

The same arguments as `kdp-beam analyze`; every option it does not know goes to Beam's
PipelineOptions unchanged. The features file may be local or remote.
"""

import sys

from kdp_beam.cli import main

if __name__ == "__main__":
    sys.exit(main(["analyze", *sys.argv[1:]], own_process=True))  # as kdp-beam's own process
