"""The transform job: read -> TransformFeatures -> WriteDataset, on any Beam runner, and
optionally the analysis before it (kdp-beam transform --analyze-and-transform)."""

import contextlib
import logging
import time

from kdp_beam.bad_records import check_policy
from kdp_beam.bundle.loader import load_bundle
from kdp_beam.bundle.staging import DATASET, staged_output
from kdp_beam.io import infer_format
from kdp_beam.io.files import BAD_RECORDS, BATCHES, require_matches
from kdp_beam.io.preflight import check_schemas
from kdp_beam.job import add_read, new_pipeline, pipeline_options, read_counters, run_analysis, run_pipeline
from kdp_beam.progress import matched_sizes
from kdp_beam.transform.manifest import bundle_identity, read_manifest
from kdp_beam.transform.write import WriteDataset, check_format

_LOG = logging.getLogger(__name__)


def run_transform(
    bundle,
    input_pattern,
    output_dir,
    output_format="tfrecord",
    keep=(),
    input_format=None,
    on_bad_record="fail",
    pipeline_args=(),
    split_size=None,
    progress=None,
    features=None,
    out_of_fold=False,
):
    """Encodes the input with the bundle's model and writes it as a transformed dataset.

    Args:
        bundle: the bundle directory (local, gs://, s3://: the workers read it).
        input_pattern: a glob (or list of globs) of the raw data, as for run_analysis.
        output_dir: the dataset directory: absent, empty, or a transformed dataset it
            replaces whole once the job succeeds (kdp_beam.bundle.staging); never a bundle.
        output_format: "tfrecord" (tf.Example) or "parquet" (fixed-size lists).
        keep: columns copied beside the encodings: names, "NAME:KIND" texts or a {name:
            kind} dict (kinds: kdp_beam.transform.encode.keep_kinds).
        input_format, pipeline_args, split_size, on_bad_record, progress: as for
            run_analysis; under "skip" the records left out (by the readers, or rows the
            model refuses) are counted in the manifest and written to bad_records/.
        features: None, or a spec (a FeatureSpec, a dict or a features JSON path): first
            analyse the input into `bundle` (run_analysis: a pipeline of its own, which
            must succeed), then transform with that bundle.
        out_of_fold: encode each target feature declared with folds with the statistics
            of the other folds than the row's (kdp_beam.transform.folds; docs/transform.md):
            for the training rows the bundle was analysed from. The manifest says so.
    Raises the errors run_analysis raises, before the job for a bad bundle, output, keep
    column or input schema.
    Returns:
        {"output", "format", "rows_written", "files_written", "bytes_written",
         "rows_read", "files_read", "bad_records": {"count", "by_reason"}, "seconds",
         "analysis": run_analysis' summary or None, "out_of_fold": the features encoded
         out of fold}.
    """
    from kdp_beam.transform.beam import TransformFeatures
    from kdp_beam.transform.encode import keep_kinds, shared_encoder

    check_policy(on_bad_record)
    check_format(output_format)
    start = time.monotonic()
    analysis = None
    if features is not None:  # two passes by necessity: the statistics, then the encoding
        analysis = run_analysis(
            features, input_pattern, bundle, input_format, pipeline_args,
            split_size=split_size, on_bad_record=on_bad_record, progress=progress,
        )
    loaded = load_bundle(bundle)
    input_format = input_format or infer_format(input_pattern)
    require_matches(input_pattern)
    keep = keep_kinds(loaded, keep, input_pattern, input_format)
    # Built once here too (TensorFlow in this process): the schema the Parquet writer and
    # the manifest need before any data, and the columns to read.
    encoder = shared_encoder(loaded, keep, out_of_fold)  # (no target feature with folds: SpecError)
    schema, columns = encoder.schema, encoder.columns
    check_schemas(input_pattern, loaded.spec, input_format, columns=columns)
    identity = bundle_identity(loaded)
    options = pipeline_options(pipeline_args)
    pipeline = new_pipeline(options)
    matched = matched_sizes(input_pattern)
    watch = progress(matched, options) if progress else contextlib.nullcontext()
    with staged_output(output_dir, DATASET) as staging_dir:
        read, description = add_read(
            pipeline, loaded.spec, input_pattern, input_format, split_size, on_bad_record, columns=columns
        )
        encoded = read | "Transform" >> TransformFeatures(bundle, keep, on_bad_record, out_of_fold)
        skip = on_bad_record == "skip"
        encoded[BATCHES] | "Write" >> WriteDataset(
            staging_dir, output_format, schema, identity, description, encoded[BAD_RECORDS] if skip else None
        )
        result = run_pipeline(pipeline, watch)
    manifest = read_manifest(output_dir)
    counters = read_counters(result)
    summary = {
        "output": output_dir,
        "format": output_format,
        "rows_written": manifest["row_count"],
        "files_written": len(manifest["files"]),
        "bytes_written": sum(f["bytes"] for f in manifest["files"]),
        # a runner without metrics: every row read was written or left out
        "rows_read": counters.get("rows_read", manifest["row_count"] + manifest["bad_record_count"]),
        "files_read": counters.get("files_read", len(matched)),
        "bad_records": {"count": manifest["bad_record_count"], "by_reason": manifest["bad_records"]["by_reason"]},
        "seconds": round(time.monotonic() - start, 3),
        "analysis": analysis,
        "out_of_fold": [entry["name"] for entry in manifest["schema"] if entry.get("encoding") == "out_of_fold"],
    }
    _LOG.info("kdp_beam: transform finished: %s", summary)
    return summary
