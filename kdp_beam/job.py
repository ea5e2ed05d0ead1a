"""The analysis job: read -> AnalyzeFeatures -> WriteArtifacts, on any Beam runner."""

import logging
import re
import time

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from kdp_beam import errors
from kdp_beam.analyze import AnalyzeFeatures
from kdp_beam.artifacts import DEAD_LETTERS, WriteArtifacts
from kdp_beam.bad_records import check_policy, is_bad_record
from kdp_beam.errors import KdpBeamError, SpecError
from kdp_beam.io import ReadInput, infer_format
from kdp_beam.io.files import require_matches
from kdp_beam.io.preflight import check_schemas
from kdp_beam.spec import FeatureSpec
from kdp_beam.staging import staged_output

# Beam's default DirectRunner first tries to download the Prism runner; the FnApiRunner is
# the same local execution without that download (and honours --direct_running_mode).
DEFAULT_LOCAL_RUNNER = "FnApiRunner"

_LOG = logging.getLogger(__name__)


def read_spec(path):
    """A FeatureSpec from a JSON file at a local or remote (gs://, s3://) path."""
    try:
        with FileSystems.open(path) as f:
            text = f.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:  # Beam's BeamIOError is an OSError
        raise SpecError(f"cannot read the features file {path}: {e}") from None
    return FeatureSpec.from_json_text(text, source=path)


def pipeline_options(pipeline_args):
    """Beam options from the arguments kdp_beam does not know, with a local default runner."""
    args = list(pipeline_args)
    if not any(a == "--runner" or a.startswith("--runner=") for a in args):
        args.append(f"--runner={DEFAULT_LOCAL_RUNNER}")
    return PipelineOptions(args)


def add_analysis(
    pipeline,
    spec,
    input_pattern,
    output_dir,
    input_format=None,
    fanout=None,
    split_size=None,
    on_bad_record="fail",
):
    """Adds the whole job to a pipeline; returns the PCollection of the written manifest.

    Under on_bad_record="skip" the records readers leave out are written as JSON lines
    under ``<output_dir>/bad_records/`` before the manifest, which lists those files.
    """
    check_policy(on_bad_record)
    input_format = input_format or infer_format(input_pattern)
    description = {"pattern": input_pattern, "format": input_format, "on_bad_record": on_bad_record}
    options = {"on_bad_record": on_bad_record}
    if split_size is not None and input_format in ("csv", "jsonl"):
        options["split_size"] = split_size
    read = pipeline | "Read" >> ReadInput(input_pattern, spec, input_format, **options)
    dead_letters = (
        read
        | "BadRecords" >> beam.Filter(is_bad_record)
        | "AsJsonLines" >> beam.Map(lambda record: record.to_json_line())
        | "WriteBadRecords"
        >> beam.io.WriteToText(
            FileSystems.join(output_dir, DEAD_LETTERS, "part"),
            file_name_suffix=".jsonl",
            skip_if_empty=True,
        )
    )
    return (
        read
        | "Analyze" >> AnalyzeFeatures(spec, fanout=fanout, state_dir=output_dir)
        | WriteArtifacts(output_dir, description, dead_letters=beam.pvalue.AsList(dead_letters))
    )


_REMOTE_ERROR = re.compile(r"kdp_beam\.errors\.(\w+): (.+?)(?: \[while running [^\]]*\])?$", re.M)


def _original_error(error):
    """The kdp_beam error a worker raised, from the text a remote or multi-process runner
    wraps it in; the runner's own error when there is none."""
    found = _REMOTE_ERROR.findall(str(error))
    if not found:
        return error
    class_name, message = found[-1]
    return getattr(errors, class_name, KdpBeamError)(message)


def _counter(result, name):
    counters = result.metrics().query(MetricsFilter().with_name(name))["counters"]
    return sum((c.committed if c.committed is not None else c.attempted) or 0 for c in counters)


def run_analysis(
    spec,
    input_pattern,
    output_dir,
    input_format=None,
    pipeline_args=(),
    fanout=None,
    split_size=None,
    on_bad_record="fail",
):
    """Runs the job to completion and returns what it read and where it wrote.

    Args:
        spec: a FeatureSpec, or the path of a features JSON file.
        input_pattern: a glob (or list of globs) of CSV or Parquet files.
        output_dir: the bundle directory (local, gs://, s3://): absent, empty, or a bundle
            it replaces whole once the job succeeds (a failed job leaves it as it was).
        input_format: "csv", "parquet", "tfrecord" or "jsonl"; None infers it from the
            extension.
        pipeline_args: Beam options, e.g. ["--runner=DataflowRunner", "--project=P"].
        fanout: intermediate keys of the global combine (None: Beam decides).
        split_size: bytes per unit of work of a large uncompressed CSV or JSON Lines file
            (0: read files whole; None: kdp_beam.io.ranges.DEFAULT_SPLIT_SIZE).
        on_bad_record: "fail" (stop at the first bad record, naming it) or "skip" (leave
            it out, count it per reason in the bundle, write it to <output>/bad_records/).
    Raises BundleError before the job starts when output_dir is a file, a directory
    holding anything but a kdp_beam bundle, or cannot be written.
    Returns:
        {"output": output_dir, "rows_read": n, "files_read": n, "batches_read": n,
         "seconds": wall time}
    """
    if not isinstance(spec, FeatureSpec):
        spec = read_spec(spec)
    require_matches(input_pattern)
    check_schemas(input_pattern, spec, input_format or infer_format(input_pattern))
    start = time.monotonic()
    pipeline = beam.Pipeline(options=pipeline_options(pipeline_args))
    # The whole bundle is written beside output_dir and replaces it only when the job
    # succeeds (kdp_beam.staging says what is guaranteed on which file system).
    with staged_output(output_dir) as staging_dir:
        add_analysis(
            pipeline, spec, input_pattern, staging_dir, input_format, fanout, split_size, on_bad_record
        )
        try:
            result = pipeline.run()
            result.wait_until_finish()
        except KdpBeamError:
            raise
        except Exception as e:
            raise _original_error(e) from e
    summary = {
        "output": output_dir,
        "rows_read": _counter(result, "rows_read"),
        "files_read": _counter(result, "files_read"),
        "batches_read": _counter(result, "batches_read"),
        "seconds": round(time.monotonic() - start, 3),
    }
    _LOG.info("kdp_beam: analysis finished: %s", summary)
    return summary
