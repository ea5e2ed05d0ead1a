"""The `kdp-beam` command line.

What a person sees goes to stderr: the progress of the read (a live bar on a terminal, a
plain line every 30 s otherwise), the summary, kdp_beam's own warnings, and on failure one
line `kdp-beam: error: ...`. stdout carries only what `--json` asks for, one JSON object
(on failure `{"error": ..., "exit_status": ...}`), so `kdp-beam ... --json | jq` works.
Beam's log lines and tracebacks appear only with `--verbose`.

Exit status: 0 done; 2 the input, the arguments or the environment is wrong (the error line
says what to change); 1 an internal error, a bug in kdp_beam or in a plug-in (report it
with the `--verbose` traceback), and for `validate` an anomaly found; 130 interrupted; 141
its stdout or stderr was a pipe whose reader left early (`--json | head`), as a Unix tool
ended by SIGPIPE reports it.
"""

import argparse
import atexit
import contextlib
import functools
import gc
import json
import logging
import os
import signal
import sys
import threading
import traceback

from kdp_beam.errors import KdpBeamError
from kdp_beam.progress import say
from kdp_beam.version import __version__
from kdp_beam.numpy_dispatch import avoid_slow_avx512_sort

_LOG = logging.getLogger(__name__)
EXIT_ERROR = 2
EXIT_INTERNAL_ERROR = 1
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # a Unix tool's status when SIGPIPE ends it (128 + 13)
_INTERRUPT_GRACE_SECONDS = 5  # an interrupted job's clean-up, before the process ends anyway
_ENDING = threading.Lock()  # held by the thread that reports the interrupt
_MAX_MESSAGE = 2000  # characters of an error line
# The packages of the clients behind gs:// and s3:// (Beam's GCS and S3 filesystems), whose
# errors (an expired credential, a retry deadline with no network) are not OSErrors.
_STORAGE_CLIENTS = {"google", "botocore", "boto3"}


class UsageError(KdpBeamError):
    """The command line itself is wrong (argparse's complaint)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and status 2, not argparse's usage block
        raise UsageError(f"{message} (see {self.prog} --help)")


def _common_options(parser, defaults=True):
    """--verbose, --json and --plugin, before or after the subcommand."""
    default = (lambda value: value) if defaults else (lambda value: argparse.SUPPRESS)
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default(False),
        help="show Beam's log lines and the traceback of an error",
    )
    parser.add_argument(
        "--json", nargs="?", const=True, default=default(False), metavar="FILE",
        help="print the result as one JSON object on stdout, or write it to FILE (given "
        "after the command's other arguments, or as --json=FILE); the human output stays on stderr",
    )
    parser.add_argument(
        "--plugin", action="append", dest="plugin" if defaults else "more_plugins",
        default=default([]),
        help="a module to import first, which registers plug-in feature types (kdp_beam.plugins); repeatable",
    )


def _parser():
    from kdp_beam.io import READERS

    parser = _Parser(
        prog="kdp-beam",
        description="One-pass feature statistics for Keras preprocessing, on Apache Beam.",
        epilog="Exit status: 0 done, 2 bad input, arguments or paths (one 'kdp-beam: error:' "
        "line says what to change), 1 internal error (a bug: run with --verbose and report "
        "the traceback).",
    )
    parser.add_argument("--version", action="version", version=f"kdp-beam {__version__}")
    _common_options(parser)
    common = _Parser(add_help=False)
    _common_options(common, defaults=False)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    analyze = commands.add_parser(
        "analyze",
        parents=[common],
        help="analyse data once and write an artifact bundle",
        description="Every option not listed here is passed to Beam's PipelineOptions "
        "unchanged (--runner, --project, --direct_num_workers, ...). The default runner "
        "is the local FnApiRunner.",
    )
    analyze.add_argument("--features", required=True, help="features JSON (local or remote)")
    analyze.add_argument("--input", required=True, help="file pattern, e.g. 'data/part-*.csv'")
    analyze.add_argument("--output", required=True, help="bundle directory to write")
    analyze.add_argument(
        "--format", choices=sorted(READERS), help="input format (default: from the extension)"
    )
    analyze.add_argument(
        "--fanout", type=_positive, default=None, help="intermediate keys of the global combine"
    )
    analyze.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="sketch every numeric feature's distribution, for kdp-beam report's histograms "
        "and validate (the default: the features file's \"profile\", true unless it says "
        "false); --no-profile leaves it out, for the last percent of speed",
    )
    analyze.add_argument(
        "--on-bad-record",
        choices=["fail", "skip"],
        default="fail",
        help="fail: stop at the first record that cannot be read, naming file, row and "
        "column (default); skip: leave it out, count it per reason in the bundle and write "
        "it with its reason to OUTPUT/bad_records/",
    )
    analyze.add_argument(
        "--split-size",
        "--csv-split-size",
        dest="split_size",
        type=functools.partial(_whole_number, least=0),
        default=None,
        help="bytes per unit of work of a large uncompressed CSV or JSON Lines file (0: read "
        "files whole; default 64 MiB)",
    )
    transform = commands.add_parser(
        "transform",
        parents=[common],
        help="encode data with a bundle's model on Beam and write it as TFRecord or Parquet, "
        "for kdp_beam.transformed_dataset (docs/transform.md)",
        description="Every option not listed here is passed to Beam's PipelineOptions "
        "unchanged (--runner, --project, --direct_num_workers, ...). The workers need "
        "TensorFlow. The default runner is the local FnApiRunner.",
    )
    transform.add_argument("--bundle", required=True, help="bundle directory (workers read it: local, gs://, s3://)")
    transform.add_argument("--input", required=True, help="file pattern of the raw data, e.g. 'data/*.parquet'")
    transform.add_argument("--output", required=True, help="directory of the transformed dataset to write")
    transform.add_argument(
        "--format", choices=["tfrecord", "parquet"], default="tfrecord",
        help="output format: tf.Example records (default) or Parquet fixed-size lists",
    )
    transform.add_argument("--input-format", choices=sorted(READERS), help="input format (default: from the extension)")
    transform.add_argument(
        "--keep", action="append", default=[], metavar="NAME[:KIND]",
        help="a column copied unchanged beside the encodings (a label, a key); KIND integer, "
        "float, string or text (default: the label's, the Parquet type, else text); repeatable",
    )
    transform.add_argument(
        "--on-bad-record", choices=["fail", "skip"], default="fail",
        help="as for analyze; skip also leaves out a row whose value the model refuses, "
        "written with its reason to OUTPUT/bad_records/",
    )
    transform.add_argument(
        "--analyze-and-transform", action="store_true",
        help="first analyse the input with --features into --bundle (a pipeline of its own), then transform",
    )
    transform.add_argument("--features", help="features JSON, with --analyze-and-transform")
    transform.add_argument(
        "--out-of-fold", action="store_true",
        help="encode the target features declared with folds out of fold: each row with the other "
        "folds' label statistics (for the training rows the bundle was analysed from; docs/transform.md)",
    )
    transform.add_argument(
        "--split-size", dest="split_size", type=functools.partial(_whole_number, least=0), default=None,
        help="as for analyze",
    )
    infer = commands.add_parser(
        "infer",
        parents=[common],
        help="propose a features JSON from a sample of the data, with a reason per column",
    )
    infer.add_argument("--input", required=True, help="file pattern")
    infer.add_argument("--output", required=True, help="features JSON to write")
    infer.add_argument("--format", choices=["csv", "parquet", "jsonl", "tfrecord"], help="default: extension")
    infer.add_argument("--sample-rows", type=_positive, default=100_000, help="rows to look at")
    infer.add_argument("--label", help="the label's column: left out of the features, its label_type proposed")
    report = commands.add_parser(
        "report", parents=[common], help="write a self-contained HTML profile of a bundle's data"
    )
    report.add_argument("bundle", help="bundle directory (local or remote)")
    report.add_argument("--output", required=True, help="HTML file to write")
    merge = commands.add_parser(
        "merge",
        parents=[common],
        help="merge bundles of disjoint data into the bundle of their union (no data read)",
    )
    merge.add_argument("bundles", nargs="+", help="bundle directories (local or remote)")
    merge.add_argument("--output", required=True, help="bundle directory to write")
    validate = commands.add_parser(
        "validate",
        parents=[common],
        help="compare two bundles (drift, skew, anomalies; no data read): exit status 1 when a "
        "metric crosses its threshold (docs/validate.md)",
    )
    validate.add_argument("baseline", help="the reference bundle (e.g. the training data's)")
    validate.add_argument("current", help="the bundle to check against it")
    validate.add_argument("--thresholds", help='JSON file: {"default": {metric: value}, "features": {name: {metric: value}}}')
    validate.add_argument("--output", help="HTML page of both distributions per feature to write")
    return parser


def _whole_number(text, least):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, not {value}")
    return value


_positive = functools.partial(_whole_number, least=1)


def run():
    """The `kdp-beam` command (the console script, `python -m kdp_beam`): main() as the
    process's own command."""
    sys.exit(main(own_process=True))


def main(argv=None, *, own_process=False):
    """Runs a command (`argv`, default sys.argv[1:]); returns its exit status (see the
    module docstring).

    `own_process`: the command is the process's own (run()): numpy's CPU dispatch is set
    before numpy loads, a Ctrl-C after the command is ignored, and the process ends with
    the command (_ended, _finished). A call from Python leaves its process as it found it.
    """
    process = own_process
    argv = sys.argv[1:] if argv is None else list(argv)
    verbose = "-v" in argv or "--verbose" in argv  # known before parsing, for its errors
    wants_json = "--json" in argv or any(a.startswith("--json=") for a in argv)
    with _logging(verbose), _interrupts(verbose, process, wants_json) as interrupted:
        if process:  # before numpy is imported; a call from Python has its numpy already
            avoid_slow_avx512_sort()
            gc.disable()  # while Beam is imported (see _imported)
        try:
            args, pipeline_args = _parser().parse_known_args(argv)
            verbose, wants_json = args.verbose, args.json
            if pipeline_args and args.command not in ("analyze", "transform"):
                raise UsageError(
                    f"unrecognized arguments: {' '.join(pipeline_args)} (see kdp-beam "
                    f"{args.command} --help)"
                )
            from kdp_beam.plugins import import_plugins

            import_plugins(args.plugin + getattr(args, "more_plugins", []))
            if process:
                _imported()
            _check_json_file(args)
            result = _COMMANDS[args.command](args, pipeline_args)
        except KeyboardInterrupt:
            return _interrupted(wants_json, process)
        except Exception as e:  # every error ends as one line; the traceback on request
            if verbose:
                traceback.print_exc()
            if interrupted.is_set():  # Beam wraps the interrupt in its own error
                return _interrupted(wants_json, process)
            if isinstance(e, _JsonFileError):
                wants_json = False  # not into the file refused
            return _ended(_fail(*_error_line(e, verbose), wants_json), process)
        if interrupted.is_set():  # caught inside the command, which then ended anyway
            return _interrupted(wants_json, process)
    if wants_json:
        try:
            _write_json(wants_json, result)
        except BrokenPipeError:  # stdout's reader left (`| head`); said by the status
            return _ended(EXIT_BROKEN_PIPE, process)
        except OSError as e:  # e.g. a full disk (`>/dev/full`): the work is done, its result is not
            return _ended(_fail(EXIT_ERROR, f"cannot write the JSON result: {e.strerror or e}", False), process)
    return _finished(result.get("exit_status", 0), process)  # validate's 1: an anomaly


class _JsonFileError(KdpBeamError):
    """The --json FILE is refused (then no JSON is written to it)."""


def _check_json_file(args):
    """Refuses a --json FILE before the work when it cannot be written, or writing it
    would destroy one of the command's inputs (kdp_beam.output_files.check_output_file),
    or its output: the file it writes, or a file inside the directory it writes."""
    if not isinstance(args.json, str):
        return
    from kdp_beam.output_files import check_output_file

    named = [getattr(args, name, None) for name in ("input", "features", "bundle", "baseline", "current")]
    inputs = [path for path in named + list(getattr(args, "bundles", None) or []) if path]
    try:
        check_output_file(args.json, "JSON result", inputs=inputs)
    except KdpBeamError as e:
        raise _JsonFileError(str(e)) from None
    output = getattr(args, "output", None)
    if output and _within(args.json, output):
        raise _JsonFileError(
            f"the JSON result {args.json} is the output {output} the command writes, or lies "
            "inside it; choose a path outside it"
        )


def _within(path, directory):
    """Whether `path` is `directory` or lies inside it."""
    path, directory = os.path.abspath(path), os.path.abspath(directory)
    return os.path.commonpath([path, directory]) == directory


def _write_json(target, obj):
    """The --json output: on stdout, or (--json FILE) in FILE."""
    text = json.dumps(obj, indent=2, ensure_ascii=False)
    if target is True:
        print(text)
        return
    from kdp_beam.output_files import write_output_file

    write_output_file(target, (text + "\n").encode("utf-8"), "JSON result")


@contextlib.contextmanager
def _interrupts(verbose, process, wants_json):
    """An event set by Ctrl-C (SIGINT), which still raises KeyboardInterrupt: Beam may catch
    it in a thread and raise its own error (RuntimeError: KeyboardInterrupt [while running
    ...]), or a worker process killed by the same Ctrl-C may fail the job; once it is set,
    main reports any ending as the interrupt. Threads' tracebacks (Beam's worker threads,
    whose subprocesses the Ctrl-C ended) are shown only when verbose. When the command is
    the process's own, a Ctrl-C after it is ignored: there is nothing left to interrupt, and
    Python's shutdown would end with a traceback and status 130 after a success."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted  # signals go to the main thread only: nothing to install
        return

    def on_interrupt(signum, frame):
        if process and not interrupted.is_set():
            # Beam's clean-up of an interrupted multi-process job can wait for ever for a
            # worker the signal did not reach (`kill -INT`, not a terminal's Ctrl-C): after
            # a grace period the process ends anyway, its staging directory removed.
            timer = threading.Timer(_INTERRUPT_GRACE_SECONDS, _abandon, (wants_json,))
            timer.daemon = True
            timer.start()
        interrupted.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_interrupt)
    previous_hook = threading.excepthook
    if not verbose:
        threading.excepthook = lambda args: None
    try:
        yield interrupted
    finally:
        threading.excepthook = previous_hook
        signal.signal(signal.SIGINT, signal.SIG_IGN if process else previous)


def _imported():
    """The imports done, the garbage collector on again, with what they made frozen
    (gc.freeze): Beam, pyarrow and numpy leave ~200,000 objects that live as long as the
    process, and each full collection traversed them all (~0.08 s here). Collecting while
    they were imported made three such passes, for the ~2,000 objects of garbage the imports
    leave (kept, as frozen)."""
    gc.freeze()
    gc.enable()


def _finished(status, process):
    """A command's status when it ran to its end. The process's own command then exits as
    Python would, less its finalization: once the threads Python waits for have ended and
    the exit handlers (logging's flush among them) have run, tearing down the ~2,000
    modules Beam imports frees memory the exit frees anyway, and costs ~0.3 s here, a
    seventh of a small job. Every file the command wrote is closed by then (the bundle is
    read back and checked before the summary). While a thread Python would wait for is
    alive (a plug-in's thread pool, whose idle workers only Python's own exit hooks stop),
    the exit is Python's."""
    waited_for = [t for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]
    if _exits_at_once(process) and not waited_for:
        atexit._run_exitfuncs()
        return _ended(status, process)
    return status


def _exits_at_once(process):
    """Whether the process may end with os._exit: its own command, and no profiler or
    tracer (cProfile, coverage), which write their results after the command returns."""
    return process and sys.getprofile() is None and sys.gettrace() is None


def _ended(status, process):
    """A failed (or interrupted) command's status. The process's own command then exits
    at once: a storage client's threads may outlive its error (a gs:// upload
    with no network printed its RetryError, then kept the process alive), and Python's
    exit would wait for them. Everything the command set up is cleaned up by then (the
    error passed through its context managers on its way here). Not under a profiler
    (_exits_at_once)."""
    if _exits_at_once(process):
        for stream in (sys.stdout, sys.stderr):
            try:
                if stream is not None:  # None: started with the stream closed (`2>&-`)
                    stream.flush()
            except BrokenPipeError:
                status = status or EXIT_BROKEN_PIPE
        os._exit(status)
    return status


def _abandon(wants_json):
    from kdp_beam.bundle.staging import remove_unfinished

    remove_unfinished()
    _interrupted(wants_json, True)


def _interrupted(wants_json, process):
    """The interrupt's one line and status. The process's own command then exits at once:
    Beam's threads may still wait for worker processes the Ctrl-C did not reach, and
    Python's exit would wait for them. (The bundle's staging directory is already removed:
    the interrupt passed through its cleanup on its way here, or _abandon removed it.)
    Said once, by whichever of the main thread and _abandon's timer comes first."""
    if process and not _ENDING.acquire(blocking=False):
        threading.Event().wait()  # the other is ending the process
    return _ended(_fail(EXIT_INTERRUPTED, "interrupted", wants_json), process)


def _error_line(error, verbose):
    """(exit status, message) for an exception that ends a command."""
    if isinstance(error, KdpBeamError):
        return EXIT_ERROR, str(error)
    if isinstance(error, BrokenPipeError):  # most often our stderr's reader, gone
        return EXIT_BROKEN_PIPE, str(error)
    if isinstance(error, OSError):  # a path, a permission, the network: the environment
        if error.strerror and error.filename:
            return EXIT_ERROR, f"{error.filename}: {error.strerror}"
        return EXIT_ERROR, str(error)
    if type(error).__module__.split(".")[0] in _STORAGE_CLIENTS:  # gs://, s3://: not OSErrors
        return EXIT_ERROR, (
            f"remote storage: {type(error).__name__}: {error} (check the path, the credentials "
            "and the network)"
        )
    hint = "" if verbose else " (run with --verbose for the traceback)"
    return EXIT_INTERNAL_ERROR, f"internal error: {type(error).__name__}: {error}{hint}"


def _fail(status, message, wants_json):
    line = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    if len(line) > _MAX_MESSAGE:
        line = line[: _MAX_MESSAGE - 1] + "…"
    try:
        say(f"kdp-beam: error: {line}")
    except BrokenPipeError:  # no one reads stderr: the status says it
        pass
    if wants_json:
        try:
            _write_json(wants_json if isinstance(wants_json, str) else True, {"error": line, "exit_status": status})
        except Exception:  # noqa: BLE001 - the error line above is what matters
            pass
    return status


class _PersonHandler(logging.Handler):
    """kdp_beam's own warnings, as `kdp-beam: warning: ...` lines on the current stderr
    (which rich's live bar redirects above itself)."""

    def filter(self, record):
        return record.name.startswith("kdp_beam") and record.levelno >= logging.WARNING

    def emit(self, record):
        message = record.getMessage().removeprefix("kdp_beam: ")
        say(f"kdp-beam: {record.levelname.lower()}: {message}")


@contextlib.contextmanager
def _logging(verbose):
    """Beam's log lines (and everything else's) with timestamps when verbose; else only
    kdp_beam's warnings. Restores the logging it found (main also runs inside tests)."""
    root = logging.getLogger()
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        level = logging.INFO
    else:
        handler, level = _PersonHandler(), logging.WARNING
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(not verbose)  # Python warnings from libraries: verbose only
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        root.setLevel(previous_level)


def _analyze(args, pipeline_args):
    from kdp_beam import progress
    from kdp_beam.bundle.layout import DEAD_LETTERS
    from kdp_beam.bundle.loader import load_bundle
    from kdp_beam.job import read_spec, run_analysis
    from kdp_beam.summary import summary_table

    spec = read_spec(args.features)
    if args.profile is not None:
        spec.profile = args.profile
    watching = functools.partial(progress.watching, terminal=_on_terminal())
    with _worker_output_hidden(args.verbose):
        summary = run_analysis(
            spec,
            args.input,
            args.output,
            args.format,
            pipeline_args,
            args.fanout,
            args.split_size,
            args.on_bad_record,
            progress=watching,
        )
    bundle = load_bundle(args.output)
    files = summary["files_read"]
    say(
        f"read {summary['rows_read']:,} rows from {files:,} file{'s' * (files != 1)} in "
        f"{summary['seconds']:.1f} s"
    )
    say(summary_table(bundle.spec, bundle.features, bundle.row_count, bundle.label))
    bad = bundle.bad_records
    dead_letters = f"{args.output}/{DEAD_LETTERS}/" if bad["count"] else None
    if bad["count"]:
        say(f"{bad['count']:,} bad records left out {bad['by_reason']}, written to {dead_letters}")
    _warn_of_few_rows(bundle.row_count, bad["count"], dead_letters)
    _warn_beyond_float32(bundle)
    say(f"wrote the bundle {args.output}")
    return {**summary, "bad_records": {**bad, "dead_letters": dead_letters}}


def _warn_of_few_rows(rows, bad, dead_letters, written="bundle"):
    """A run that exits 0 may still describe little or nothing of its input: say so, as a
    warning line, when the bundle (or `written` "transformed dataset") holds no row or
    most records were left out as bad."""
    records = rows + bad
    empty, partial = _FEW_ROWS[written]
    if rows == 0:
        why = f"all {bad:,} records were bad (see {dead_letters})" if bad else "the input has no rows"
        _LOG.warning("the %s holds 0 rows: %s; %s", written, why, empty)
    elif bad * 2 > records:
        _LOG.warning(
            "%s of %s records (%.0f%%) were bad and left out; %s %s: check the records in %s",
            f"{bad:,}", f"{records:,}", 100 * bad / records, partial, f"{rows:,}", dead_letters,
        )


# What a bundle's or a transformed dataset's few rows mean: (none, only `rows` of them).
_FEW_ROWS = {
    "bundle": ("its statistics are empty and a model built from it learns nothing", "the statistics describe only the other"),
    "transformed dataset": ("a model trained on it learns nothing", "it holds only the other"),
}


def _warn_beyond_float32(bundle):
    """The bundle is right, but a Keras model (float32) cannot use it as is: say so now,
    not when the model is built (which refuses it) or called (which refuses the values)."""
    from kdp_beam.model_limits import float32_problem, float32_remedy

    for name, declaration in bundle.spec.features.items():
        found = declaration.kind.beyond_float32(bundle.features[name], declaration.options, inputs=True)
        if found:
            _LOG.warning(
                "feature %r: %s; a Keras model cannot use it as is; %s",
                name, float32_problem(*found), float32_remedy(*found),
            )


@contextlib.contextmanager
def _worker_output_hidden(verbose):
    """Beam's local worker processes (--direct_running_mode=multi_processing) print a
    failing bundle's traceback to the stderr they inherit (an unconditional print in
    apache_beam/runners/worker/sdk_worker.py), before the error reaches us: unless verbose,
    they inherit /dev/null while this process keeps writing to the real stderr."""
    if verbose or sys.stderr is not sys.__stderr__ or sys.stderr is None:
        yield  # not the process's own stderr (e.g. captured by a caller): leave it be
        return
    sys.stderr.flush()
    ours = os.dup(2)
    with open(os.devnull, "wb") as discarded:
        os.dup2(discarded.fileno(), 2)
    sys.stderr = open(ours, "w", encoding=sys.__stderr__.encoding, errors="backslashreplace", buffering=1)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(ours, 2)
        sys.stderr.close()
        sys.stderr = sys.__stderr__


def _transform(args, pipeline_args):
    from kdp_beam import progress
    from kdp_beam.bundle.layout import DEAD_LETTERS
    from kdp_beam.job import read_spec
    from kdp_beam.transform.job import run_transform

    if args.analyze_and_transform != (args.features is not None):
        raise UsageError("--analyze-and-transform and --features go together (see kdp-beam transform --help)")
    spec = read_spec(args.features) if args.features is not None else None
    watching = functools.partial(progress.watching, terminal=_on_terminal())
    with _worker_output_hidden(args.verbose):
        summary = run_transform(
            args.bundle,
            args.input,
            args.output,
            args.format,
            keep=args.keep,
            input_format=args.input_format,
            on_bad_record=args.on_bad_record,
            pipeline_args=pipeline_args,
            split_size=args.split_size,
            progress=watching,
            features=spec,
            out_of_fold=args.out_of_fold,
        )
    if summary["analysis"] is not None:
        say(f"analysed {summary['analysis']['rows_read']:,} rows into the bundle {args.bundle}")
    files, rows = summary["files_written"], summary["rows_written"]
    say(
        f"read {summary['rows_read']:,} rows from {summary['files_read']:,} file{'s' * (summary['files_read'] != 1)}, "
        f"wrote {rows:,} encoded rows in {files:,} {args.format} file{'s' * (files != 1)} "
        f"({summary['bytes_written'] / 1e6:,.1f} MB) in {summary['seconds']:.1f} s"
    )
    bad = summary["bad_records"]
    dead_letters = f"{args.output}/{DEAD_LETTERS}/" if bad["count"] else None
    if bad["count"]:
        say(f"{bad['count']:,} bad records left out {bad['by_reason']}, written to {dead_letters}")
    _warn_of_few_rows(rows, bad["count"], dead_letters, "transformed dataset")
    if summary["out_of_fold"]:
        say(f"encoded out of fold (each row with the other folds' label statistics): {', '.join(summary['out_of_fold'])}")
    from kdp_beam.bundle.loader import load_bundle

    label = load_bundle(args.bundle).spec.label
    kept = {k.rsplit(":", 1)[0] for k in args.keep} | set(args.keep)
    read_it = f", label={label!r}" if label in kept else ""
    say(f"wrote the transformed dataset {args.output}; read it with "
         f"kdp_beam.transformed_dataset({args.output!r}, batch_size=...{read_it})")
    return {**summary, "bad_records": {**bad, "dead_letters": dead_letters}}


def _infer(args, pipeline_args):
    from kdp_beam.tools.infer import infer_features, write_features
    from kdp_beam.output_files import check_output_file

    check_output_file(args.output, "features JSON", inputs=args.input)
    features = infer_features(args.input, args.format, args.sample_rows, args.label)
    write_features(features, args.output)
    width = max(len(name) for name in features["notes"])
    for name, note in features["notes"].items():
        declared = features["features"].get(name, "-")
        kind = declared if isinstance(declared, str) else declared["type"]
        if name == args.label:
            kind = f"label ({features.get('label_type', 'inferred')})"
        say(f"{name.ljust(width)}  {kind:<20} {note}")
    say(f"inferred from {features['sampled']}")
    say(f"wrote {args.output}: edit it, then kdp-beam analyze --features {args.output}")
    return {"output": args.output, **features}


def _report(args, pipeline_args):
    from kdp_beam.tools.report import write_report

    write_report(args.bundle, args.output)
    say(f"wrote {args.output}")
    return {"output": args.output, "bundle": args.bundle}


def _merge(args, pipeline_args):
    from kdp_beam.bundle.loader import load_bundle
    from kdp_beam.tools.merge import merge_bundles
    from kdp_beam.summary import summary_table

    merge_bundles(args.bundles, args.output)
    bundle = load_bundle(args.output)
    say(summary_table(bundle.spec, bundle.features, bundle.row_count, bundle.label))
    say(f"wrote the bundle {args.output}")
    return {"output": args.output, "merged": args.bundles, "row_count": bundle.row_count}


def _validate(args, pipeline_args):
    from kdp_beam.output_files import check_output_file
    from kdp_beam.tools.validate import validate

    if args.output is not None:  # (a --json FILE is checked by main)
        check_output_file(args.output, "diff page")
    result = validate(args.baseline, args.current, thresholds=args.thresholds)
    if args.output:
        from kdp_beam.output_files import write_output_file
        from kdp_beam.tools.validate_page import render_diff

        write_output_file(args.output, render_diff(result).encode("utf-8"), "diff page")
    for anomaly in result.anomalies:
        say(f"anomaly: {_anomaly_words(anomaly)}")
    compared = f"{len(result.features)} features compared"
    say(f"{len(result.anomalies)} anomalies, {compared}" if result.anomalies else f"no anomaly, {compared}")
    if args.output:
        say(f"wrote {args.output}")
    return {**result.to_json(), "exit_status": result.exit_code}


def _anomaly_words(anomaly):
    if anomaly["metric"] == "schema":
        return f"feature {anomaly['feature']!r} {anomaly['change']}" + (
            f" ({anomaly['baseline']} -> {anomaly['current']})" if anomaly["change"] == "type" else ""
        )
    where = "the dataset" if anomaly["feature"] is None else f"feature {anomaly['feature']!r}"
    if anomaly.get("reason"):  # fired without a value against its threshold (an empty bundle)
        return f"{where}: {anomaly['metric']}: {anomaly['reason']}"
    if anomaly["metric"] == "row_count_ratio":
        return f"{where}: row_count_ratio {anomaly['value']:.4g} outside [1/{anomaly['threshold']:.4g}, {anomaly['threshold']:.4g}]"
    return f"{where}: {anomaly['metric']} {anomaly['value']:.4g} > {anomaly['threshold']:.4g}"


_COMMANDS = {"analyze": _analyze, "transform": _transform, "infer": _infer, "report": _report, "merge": _merge, "validate": _validate}


def _on_terminal():
    """Whether stderr is a terminal that can draw a live bar (rich's judgement: a TTY, not
    TERM=dumb; FORCE_COLOR / TTY_COMPATIBLE force it)."""
    from rich.console import Console

    console = Console(stderr=True)
    return console.is_terminal and not console.is_dumb_terminal


if __name__ == "__main__":
    sys.exit(main())
