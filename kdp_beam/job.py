"""The analysis job: read -> AnalyzeFeatures -> WriteArtifacts, on any Beam runner."""

import builtins
import contextlib
import io
import json
import logging
import re
import time

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from kdp_beam import errors
from kdp_beam.analyzers.dataset import dictionary_features
from kdp_beam.beam.analyze import AnalyzeFeatures
from kdp_beam.bundle.layout import DEAD_LETTERS, MANIFEST, join
from kdp_beam.bundle.loader import read_bytes
from kdp_beam.bundle.writer import WriteArtifacts
from kdp_beam.bad_records import BadRecord, check_policy
from kdp_beam.errors import KdpBeamError, SpecError
from kdp_beam.io import ReadInput, infer_format
from kdp_beam.io.files import BAD_RECORDS, BATCHES, require_matches
from kdp_beam.io.preflight import check_schemas
from kdp_beam.progress import matched_sizes
from kdp_beam.spec import FeatureSpec
from kdp_beam.bundle.staging import staged_output

# Beam's default DirectRunner first tries to download the Prism runner; the FnApiRunner is
# the same local execution without that download (and honours --direct_running_mode).
DEFAULT_LOCAL_RUNNER = "FnApiRunner"

_LOG = logging.getLogger(__name__)


def read_spec(path):
    """A FeatureSpec from a JSON file at a local or remote (gs://, s3://) path."""
    try:
        with FileSystems.open(path) as f:
            text = f.read().decode("utf-8-sig")  # a BOM, as Windows editors write: not JSON's
    except (OSError, UnicodeDecodeError) as e:  # Beam's BeamIOError is an OSError
        raise SpecError(f"cannot read the features file {path}: {e}") from None
    return FeatureSpec.from_json_text(text, source=path)


def pipeline_options(pipeline_args):
    """Beam options from the arguments kdp_beam does not know, with a local default runner.

    Parsed at once: a value Beam refuses is a KdpBeamError here, not argparse's exit from
    inside Beam; options Beam does not know either are passed on to the runner (as Beam
    does: Flink and Spark take options of their own) with a warning naming them.
    """
    args = list(pipeline_args)
    if not any(a == "--runner" or a.startswith("--runner=") for a in args):
        args.append(f"--runner={DEFAULT_LOCAL_RUNNER}")
    options = PipelineOptions(args)
    refused = io.StringIO()
    try:
        with contextlib.redirect_stderr(refused):  # argparse's usage text, inside Beam
            known = options.get_all_options()
            given = options.get_all_options(retain_unknown_options=True)
    except SystemExit:
        problem = refused.getvalue().strip().splitlines()[-1].split("error: ", 1)[-1]
        raise KdpBeamError(f"Beam refuses an option: {problem}") from None
    unknown_names = set(given) - set(known)
    unknown = [
        a.split("=", 1)[0]
        for a in args
        if a.startswith("--") and a[2:].split("=", 1)[0].replace("-", "_") in unknown_names
    ]
    if unknown:
        _LOG.warning(
            "kdp_beam: neither kdp-beam nor Beam knows %s: passed to the runner as is; check "
            "the spelling",
            ", ".join(unknown),
        )
    return options


def new_pipeline(options):
    try:
        return beam.Pipeline(options=options)
    except (ValueError, ImportError) as e:  # an unknown --runner, a runner not installed
        raise KdpBeamError(f"cannot start Beam: {e}") from None


def add_read(
    pipeline, spec, input_pattern, input_format, split_size, on_bad_record, dictionaries=(), **reader_options
):
    """The job's read (ReadInput's outputs) and the input's description for the manifest:
    {pattern, format, on_bad_record}. `dictionaries`: the string columns Parquet and CSV
    give dictionary-encoded (ReadParquet, ReadCsv). `reader_options` go to ReadInput as
    they are."""
    check_policy(on_bad_record)
    input_format = input_format or infer_format(input_pattern)
    description = {"pattern": input_pattern, "format": input_format, "on_bad_record": on_bad_record}
    options = {"on_bad_record": on_bad_record, **reader_options}
    if split_size is not None and input_format in ("csv", "jsonl"):
        options["split_size"] = split_size
    if dictionaries and input_format in ("parquet", "csv"):
        options["dictionaries"] = dictionaries
    return pipeline | "Read" >> ReadInput(input_pattern, spec, input_format, **options), description


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
    read, description = add_read(
        pipeline, spec, input_pattern, input_format, split_size, on_bad_record, dictionary_features(spec)
    )
    if on_bad_record == "fail":  # a bad record stops the job: none to count or keep
        return (
            read[BATCHES]
            | "Analyze" >> AnalyzeFeatures(spec, fanout=fanout, state_dir=output_dir)
            | WriteArtifacts(output_dir, description)
        )
    dead_letters = (
        read[BAD_RECORDS]
        | "AsJsonLines" >> beam.Map(BadRecord.to_json_line)
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
        | WriteArtifacts(output_dir, description, dead_letters=dead_letters)
    )


_IN_STEP = r"(?: \[while running [^\]]*\])?$"  # Beam's suffix naming the step that failed
_REMOTE_ERROR = re.compile(r"kdp_beam\.errors\.(\w+): (.+?)" + _IN_STEP, re.M)
_ERROR_NAME = r"((?:[A-Za-z_]\w*\.)*\w*(?:Error|Exception))"  # e.g. apache_beam.io.filesystem.BeamIOError
_RAISED = re.compile(r"^" + _ERROR_NAME + r": (.+?)" + _IN_STEP, re.M)
_NESTED = re.compile(_ERROR_NAME + r": (.+)", re.S)  # "OSError: ..." inside a RuntimeError's message
_OS_ERRORS = {"BeamIOError"} | {
    name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, OSError)
}


def _original_error(error):
    """The error a worker raised, from the text a runner wraps it in (a remote or
    multi-process runner wraps it whole, traceback and all; the in-process runner appends
    "[while running 'Read/ReadRange']", a step name that means nothing to the person who
    reads the error): a kdp_beam error as its own class, an OSError (a path, a permission,
    a full disk) as an OSError, anything else as a RuntimeError "Class: message" of the
    last error in the worker's traceback. None when the runner's error is the original one."""
    if isinstance(error, KdpBeamError):
        message = re.sub(_IN_STEP, "", str(error))
        return None if message == str(error) else type(error)(message)
    found = _REMOTE_ERROR.findall(str(error))
    if found:
        class_name, message = found[-1]
        return getattr(errors, class_name, KdpBeamError)(message)
    found = _RAISED.findall(str(error))
    if not found or isinstance(error, OSError):
        return None
    class_name, message = found[-1]
    while nested := _NESTED.fullmatch(message):
        class_name, message = nested.groups()
    class_name = class_name.rsplit(".", 1)[-1]
    if class_name in _OS_ERRORS:
        return OSError(message)
    return RuntimeError(f"{class_name}: {message}") if "\n" in str(error) else None


def run_pipeline(pipeline, watch):
    """Runs the pipeline to its end inside the context manager `watch` (the progress
    display); returns the result. A worker's error is raised as the error it was
    (_original_error), not the runner's wrapping of it."""
    try:
        with watch:
            result = pipeline.run()
            result.wait_until_finish()
    except Exception as e:
        original = _original_error(e)
        if original is None:
            raise  # raising e "from e" would make it its own cause
        raise original from e
    return result


def read_counters(result):
    """{name: total} of the readers' counters (kdp_beam.io.files.READ_METRICS), committed
    values where the runner has them; {} from a runner that keeps no metrics (Beam's Dask
    runner raises NotImplementedError), returns none, or fails to return them: the job has
    succeeded, and run_analysis then counts from the bundle and the matched files."""
    try:
        counters = result.metrics().query(MetricsFilter().with_namespace("kdp_beam"))["counters"]
    except NotImplementedError:
        return {}
    except Exception as e:  # noqa: BLE001 - the bundle is written; the counts have a fallback
        _LOG.warning("kdp_beam: the runner returned no metrics (%s); counting from the bundle", e)
        return {}
    totals = {}
    for counter in counters:
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + (value or 0)
    return totals


def _bundle_row_count(output_dir):
    manifest = json.loads(read_bytes(join(output_dir, MANIFEST)).decode("utf-8"))
    return manifest["row_count"]


def run_analysis(
    spec,
    input_pattern,
    output_dir,
    input_format=None,
    pipeline_args=(),
    fanout=None,
    split_size=None,
    on_bad_record="fail",
    progress=None,
):
    """Runs the job to completion and returns what it read and where it wrote.

    Args:
        spec: a FeatureSpec, a features JSON object (a dict), or the path of a features
            JSON file.
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
        progress: None, or a callable (the matched files as {path: bytes}, the
            PipelineOptions) -> a context manager held while the job runs: the CLI's
            display (kdp_beam.progress.watching).
    Raises BundleError before the job starts when output_dir is a file, a directory
    holding anything but a kdp_beam bundle, or cannot be written.
    Returns:
        {"output": output_dir, "rows_read": n, "files_read": n, "batches_read": n,
         "seconds": wall time}: the readers' counters, or where the runner keeps no
        metrics the bundle's row count, the number of matched files and None batches.
    """
    if isinstance(spec, dict):
        spec = FeatureSpec.from_json(spec)
    elif not isinstance(spec, FeatureSpec):
        spec = read_spec(spec)
    require_matches(input_pattern)
    check_schemas(input_pattern, spec, input_format or infer_format(input_pattern))
    start = time.monotonic()
    options = pipeline_options(pipeline_args)
    pipeline = new_pipeline(options)
    matched = matched_sizes(input_pattern)
    watch = progress(matched, options) if progress else contextlib.nullcontext()
    # The whole bundle is written beside output_dir and replaces it only when the job
    # succeeds (kdp_beam.bundle.staging says what is guaranteed on which file system).
    with staged_output(output_dir) as staging_dir:
        add_analysis(
            pipeline, spec, input_pattern, staging_dir, input_format, fanout, split_size, on_bad_record
        )
        result = run_pipeline(pipeline, watch)
    counters = read_counters(result)
    # The counters prove one pass (rows read once whatever the features); a runner without
    # metrics still gets right numbers, from the bundle and the matching (and no batches).
    summary = {
        "output": output_dir,
        "rows_read": counters.get("rows_read", 0) if counters else _bundle_row_count(output_dir),
        "files_read": counters.get("files_read", 0) if counters else len(matched),
        "batches_read": counters.get("batches_read", 0) if counters else None,
        "seconds": round(time.monotonic() - start, 3),
    }
    _LOG.info("kdp_beam: analysis finished: %s", summary)
    return summary
