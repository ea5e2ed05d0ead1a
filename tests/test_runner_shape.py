"""The job's shape depends on no one runner's extras: no side input derived from the read
(a less complete runner, Beam's Dask runner, computes the source again for each), and the
summary's counts right where the runner keeps no metrics."""

import apache_beam as beam
import pyarrow as pa
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pipeline import PipelineVisitor
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from kdp_beam.bundle.loader import load_bundle
from kdp_beam.job import add_analysis, run_analysis
from kdp_beam.spec import FeatureSpec
from tests.conftest import MIXED_FEATURES, write_shards

# Beam's own WriteToText (the dead letters) finalises its files from side inputs; it is
# Beam's sink, on every runner that runs Beam's file sinks.
BEAMS_FILE_SINK = "WriteBadRecords/"


def _no_metrics():
    raise NotImplementedError("collecting metrics will come later!")  # as Beam's Dask runner


class NoMetricsRunner(FnApiRunner):
    """The in-process runner, its results keeping no metrics."""

    def run_pipeline(self, pipeline, options):
        result = super().run_pipeline(pipeline, options)
        result.metrics = _no_metrics
        return result


class _SideInputs(PipelineVisitor):
    def __init__(self):
        self.found = []

    def visit_transform(self, node):
        if node.side_inputs and not node.full_label.startswith(BEAMS_FILE_SINK):
            self.found.append(node.full_label)


def test_the_job_joins_its_parts_instead_of_side_inputs(tmp_path, mixed):
    pattern = write_shards(mixed, tmp_path / "csv", 2)
    pipeline = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    add_analysis(pipeline, FeatureSpec(MIXED_FEATURES), pattern, str(tmp_path / "b"), on_bad_record="skip")
    visitor = _SideInputs()
    pipeline.visit(visitor)
    assert visitor.found == []


def test_a_runner_without_metrics_still_gets_right_counts(tmp_path):
    directory = tmp_path / "csv"
    directory.mkdir()
    (directory / "a.csv").write_text("x,name\n1.5,a\noops,b\n2.5,c\n")
    (directory / "b.csv").write_text("x,name\n")  # header only: no rows
    write_shards(pa.table({"x": [4.0, 5.0], "name": ["d", "a"]}), directory / "more", 1)
    spec = FeatureSpec({"x": "float_normalized", "name": "string_categorical"})
    runner = [f"--runner={__name__}.NoMetricsRunner"]
    summary = run_analysis(
        spec, [str(directory / "*.csv"), str(directory / "more" / "*.csv")], str(tmp_path / "b"),
        pipeline_args=runner, on_bad_record="skip",
    )
    bundle = load_bundle(str(tmp_path / "b"))
    assert (summary["rows_read"], summary["files_read"], summary["batches_read"]) == (4, 3, None)
    assert bundle.row_count == 4 and bundle.bad_records["count"] == 1
    assert bundle.features["name"]["vocabulary"] == ["a", "d", "c"]
    assert bundle.features["x"]["mean"] == (1.5 + 2.5 + 4.0 + 5.0) / 4
