"""The job on out-of-process SDK workers, as Flink, Spark and Dataflow drive Python workers:
a standalone Beam job service and an EXTERNAL worker pool, each its own process, the job
submitted to them by `kdp-beam analyze --runner PortableRunner` (docs/scaling.md).

The bundle must equal the in-process one; errors must reach the person as they do in
process. The workers are the pool's child processes: nothing of the launching process
(module state, open files) is visible to them.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pytest
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, PortableOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.transforms.environments import ExternalEnvironment

from kdp_beam.bundle.layout import DEAD_LETTERS
from kdp_beam.bundle.loader import load_bundle
from kdp_beam.job import add_analysis, run_analysis
from kdp_beam.spec import FeatureSpec
from tests.conftest import MIXED_FEATURES, mixed_table, write_shards
from tests.test_job import assert_same_statistics

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FEATURES = {**MIXED_FEATURES, "words": {"type": "text", "max_tokens": 30, "ngrams": 2}}
STARTED_WORKER = "Starting worker with command"  # what the pool logs per worker process


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _environment():
    """The venv's python first on PATH (the pool starts workers as `python`) and this
    checkout on PYTHONPATH, so that workers run the same interpreter and kdp_beam."""
    python_path = os.pathsep.join(p for p in (REPOSITORY, os.environ.get("PYTHONPATH")) if p)
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "PYTHONPATH": python_path}


def _stop(process):
    """SIGTERM to the service's process group (the pool's workers with it), then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            pass


def _start(module, port_flag, log_path):
    """Starts `python -m module port_flag PORT` on a free loopback port and waits until it
    accepts connections; a port taken meanwhile is retried with another."""
    for _ in range(3):
        port = _free_port()
        log = open(log_path, "ab")
        process = subprocess.Popen(
            [sys.executable, "-m", module, port_flag, str(port)],
            stdout=log, stderr=subprocess.STDOUT, env=_environment(), start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("localhost", port), timeout=1).close()
                return process, port
            except OSError:
                time.sleep(0.2)
        _stop(process)
    with open(log_path, errors="replace") as f:
        raise RuntimeError(f"{module} did not start; its log ({log_path}):\n{f.read()[-3000:]}")


class ExternalWorkers:
    def __init__(self, job_port, pool_port, pool_log):
        self.pool_address = f"localhost:{pool_port}"
        self.pool_log = pool_log
        self.flags = [
            "--runner", "PortableRunner", "--job_endpoint", f"localhost:{job_port}",
            "--environment_type", "EXTERNAL", "--environment_config", self.pool_address,
        ]

    def workers_started(self):
        with open(self.pool_log, errors="replace") as f:
            return f.read().count(STARTED_WORKER)


@pytest.fixture(scope="session")
def external_workers(tmp_path_factory):
    """A standalone job service and an EXTERNAL SDK worker pool, for the whole session."""
    logs = tmp_path_factory.mktemp("external_workers")
    started = []
    try:
        for module, flag, log in (
            ("apache_beam.runners.portability.local_job_service_main", "--port", "job_service.log"),
            ("apache_beam.runners.worker.worker_pool_main", "--service_port", "worker_pool.log"),
        ):
            started.append(_start(module, flag, logs / log))
        (_, job_port), (_, pool_port) = started
        yield ExternalWorkers(job_port, pool_port, logs / "worker_pool.log")
    finally:
        for process, _ in started:
            _stop(process)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Real CSV files: every column kind, a vocabulary, text; and a file with one bad record."""
    directory = tmp_path_factory.mktemp("data")
    table = mixed_table(rows=3000, seed=4)
    rng = np.random.default_rng(5)
    words = [" ".join(f"w{v}" for v in rng.zipf(1.5, rng.integers(0, 7)) % 60) for _ in range(table.num_rows)]
    table = table.append_column("words", pa.array(words))
    pattern = write_shards(table, directory / "clean", shards=3)
    good = {"big": 1.5, "ts": 1.6e9, "score": 0.5, "city": "Paris", "store": 3, "tag": "a", "words": "w1 w2"}
    good_row = pa.table({name: pa.array([good[name]], table.schema.field(name).type) for name in table.column_names})
    bad = directory / "bad" / "bad.csv"
    bad.parent.mkdir()
    bad.write_text(
        ",".join(table.column_names) + "\n1.5,1600000000,0.5,Paris,3,a,w1 w2\noops,1600000001,0.1,Bern,4,b,w3\n"
    )
    features = directory / "features.json"
    features.write_text(json.dumps({"features": FEATURES}))
    return {
        "table": table, "good_row": good_row, "features": str(features),
        "clean": pattern, "bad": str(bad), "clean_and_bad": str(directory / "*" / "*.csv"),
    }


def _cli(data, pattern, output, *flags):
    return subprocess.run(
        [sys.executable, "-m", "kdp_beam", "analyze", "--features", data["features"],
         "--input", pattern, "--output", str(output), "--json", *flags],
        capture_output=True, text=True, env=_environment(), timeout=300,
    )


def _dead_letters(bundle_dir):
    directory = bundle_dir / DEAD_LETTERS
    return sorted(line for path in sorted(directory.iterdir()) for line in path.read_text().splitlines())


def test_the_cli_on_external_workers_writes_the_in_process_bundle(tmp_path, data, external_workers):
    run_analysis(data["features"], data["clean"], str(tmp_path / "in_process"))
    before = external_workers.workers_started()
    done = _cli(data, data["clean"], tmp_path / "external", *external_workers.flags)
    assert done.returncode == 0, done.stderr
    assert external_workers.workers_started() == before + 1  # it ran on the pool's worker
    summary = json.loads(done.stdout)
    assert (summary["rows_read"], summary["files_read"]) == (data["table"].num_rows, 3)
    one, other = (load_bundle(str(tmp_path / d)) for d in ("in_process", "external"))
    assert one.row_count == other.row_count == data["table"].num_rows
    assert_same_statistics(one.features, other.features, data["table"])
    assert other.features["words"]["vocabulary"] == one.features["words"]["vocabulary"] != []


def test_skipped_records_on_external_workers_are_counted_and_written(tmp_path, data, external_workers):
    pattern = data["clean_and_bad"]
    run_analysis(data["features"], pattern, str(tmp_path / "in_process"), on_bad_record="skip")
    done = _cli(data, pattern, tmp_path / "external", "--on-bad-record", "skip", *external_workers.flags)
    assert done.returncode == 0, done.stderr
    one, other = (load_bundle(str(tmp_path / d)) for d in ("in_process", "external"))
    assert other.row_count == one.row_count == data["table"].num_rows + 1
    assert other.bad_records["count"] == one.bad_records["count"] == 1
    assert other.bad_records["by_reason"] == one.bad_records["by_reason"]
    assert_same_statistics(one.features, other.features, pa.concat_tables([data["table"], data["good_row"]]))
    [letter] = _dead_letters(tmp_path / "external")
    assert [letter] == _dead_letters(tmp_path / "in_process")
    assert json.loads(letter)["file"].endswith("bad.csv") and "oops" in letter


def test_a_data_error_on_external_workers_is_one_error_line(tmp_path, data, external_workers):
    failed = _cli(data, data["bad"], tmp_path / "out", *external_workers.flags)
    assert failed.returncode == 2, failed.stderr
    errors = [line for line in failed.stderr.splitlines() if line.startswith("kdp-beam: error:")]
    assert len(errors) == 1, failed.stderr
    assert "bad.csv: row 2 (line 3), column 'big'" in errors[0] and "'oops'" in errors[0]
    assert "Traceback" not in failed.stderr
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_two_pool_workers_give_the_same_bundle(tmp_path, data, external_workers):
    # Beam's standalone job service always asks the pool for one worker; a runner asks for
    # more as Flink does per task slot. Here the FnApiRunner drives the pool's EXTERNAL
    # environment with --direct_num_workers=2: each worker gets its part of every stage.
    spec = FeatureSpec(FEATURES)
    run_analysis(spec, data["clean"], str(tmp_path / "in_process"))
    options = PipelineOptions(external_workers.flags[2:] + ["--direct_num_workers=2"])
    pool = ExternalEnvironment.from_options(options.view_as(PortableOptions))
    before = external_workers.workers_started()
    with beam.Pipeline(runner=FnApiRunner(default_environment=pool), options=options) as pipeline:
        add_analysis(pipeline, spec, data["clean"], str(tmp_path / "two_workers"))
    assert external_workers.workers_started() - before == 2
    one, other = (load_bundle(str(tmp_path / d)) for d in ("in_process", "two_workers"))
    assert one.row_count == other.row_count == data["table"].num_rows
    assert_same_statistics(one.features, other.features, data["table"])
