"""Progress of the read, for the person watching `kdp-beam analyze`.

The readers count what they read into a *sink* (`add_rows`, `unit_done`; called by
kdp_beam.io.files.ProgressLog). The sink is process-local: the CLI installs one in its own
process, so it hears the readers that run in that process, as with Beam's in-memory local
runner. Worker processes and remote workers have none: there the counts are dropped (Beam's
metrics still count everything, and the CLI prints them at the end), and the display shows
elapsed time only rather than invent numbers. Nothing in the pipeline depends on a sink: it
is never pickled, and a reader without one reads the same.

On a terminal the display is a live bar (rich); otherwise, piped or in CI, a plain line
every PLAIN_INTERVAL_SECONDS.
"""

import contextlib
import sys
import threading
import time

PLAIN_INTERVAL_SECONDS = 30.0

_sink = None  # the ReadCounts of the job this process is watching, if any


def add_rows(count):
    """A reader in this process read `count` more rows."""
    sink = _sink
    if sink is not None:
        sink.add_rows(count)


def unit_done(path, rows, span=None, row_group=None):
    """A reader in this process finished a unit of work of the file at `path` and read
    `rows`: the (start, end) bytes `span` of a byte range, the Parquet row group
    `row_group`, or (neither) the whole file."""
    sink = _sink
    if sink is not None:
        sink.unit_done(path, rows, span, row_group)


class ReadCounts:
    """What the readers in this process have read of the matched input: rows, and the bytes
    of the units of work they finished (a whole file, a byte range, a Parquet row group's
    share of its file). `heard` is False until a reader reports."""

    def __init__(self, sizes):
        self.sizes = dict(sizes)  # path -> bytes, as matched
        self.total_bytes = sum(self.sizes.values())
        self.rows = 0
        self.bytes_done = 0
        self.heard = False
        self.started = time.monotonic()
        self.last_report = self.started
        self._lock = threading.Lock()  # the local runner may read on several threads
        self._file_rows = {}

    def add_rows(self, count):
        with self._lock:
            self.rows += count
            self.heard = True
            self.last_report = time.monotonic()

    def rows_per_second(self):
        """Rows over the time until the last report (it stays put once the read is over)."""
        seconds = self.last_report - self.started
        return self.rows / seconds if seconds > 0 else 0.0

    def unit_done(self, path, rows, span=None, row_group=None):
        done = self._bytes_of(path, rows, span, row_group)
        with self._lock:
            self.bytes_done = min(self.bytes_done + done, self.total_bytes)
            self.heard = True

    def _bytes_of(self, path, rows, span, row_group):
        if span is not None:
            return span[1] - span[0]
        if path not in self.sizes:
            return 0  # not a matched file: the bar completes when the job does
        if row_group is not None:  # its share of the file, by rows
            total = self._rows_in(path)
            return self.sizes[path] * rows // total if total else 0
        return self.sizes[path]

    def _rows_in(self, path):
        """Rows of a Parquet file, from its footer (once per file; display only)."""
        if path not in self._file_rows:
            import pyarrow.parquet as pq
            from apache_beam.io.filesystems import FileSystems

            try:
                with FileSystems.open(path) as stream:
                    self._file_rows[path] = pq.ParquetFile(stream).metadata.num_rows
            except (OSError, ValueError):  # the reader reports a damaged file, not us
                self._file_rows[path] = 0
        return self._file_rows[path]


def matched_sizes(file_pattern):
    """{path: bytes} of every file the pattern (or list of patterns) matches."""
    from apache_beam.io.filesystems import FileSystems

    from kdp_beam.io.files import as_patterns

    return {
        metadata.path: metadata.size_in_bytes
        for pattern in as_patterns(file_pattern)
        for metadata in FileSystems.match([pattern])[0].metadata_list
    }


def runs_here(options):
    """Whether Beam surely runs the readers in this process (the in-memory FnApiRunner), so
    that their counts reach a sink here. Only the display's wording depends on it: the
    DirectRunner may hand the job to the out-of-process Prism runner, so it says "counts at
    the end" until (if ever) a reader reports."""
    from apache_beam.options.pipeline_options import DirectOptions

    mode = options.view_as(DirectOptions).direct_running_mode
    return runner_name(options).rsplit(".", 1)[-1] == "FnApiRunner" and mode == "in_memory"


def runner_name(options):
    from apache_beam.options.pipeline_options import StandardOptions

    return str(options.view_as(StandardOptions).runner or "DirectRunner")


def size_text(size):
    from rich.filesize import decimal

    return decimal(size)


@contextlib.contextmanager
def watching(sizes, options, terminal, plain_interval=None):
    """Shows the read on stderr while the block runs (a job): a live bar when `terminal`,
    else a plain line every `plain_interval` seconds (default PLAIN_INTERVAL_SECONDS).
    Yields the ReadCounts."""
    global _sink
    plain_interval = plain_interval or PLAIN_INTERVAL_SECONDS
    counts = ReadCounts(sizes)
    live = runs_here(options)
    where = f"{len(sizes):,} file{'s' * (len(sizes) != 1)} ({size_text(counts.total_bytes)})"
    display = (
        _Bar(counts, where, live, runner_name(options))
        if terminal
        else _PlainLines(counts, where, live, runner_name(options), plain_interval)
    )
    _sink = counts
    try:
        with display:
            yield counts
            display.finish()
    finally:
        _sink = None


class _PlainLines:
    """A line at the start and every `interval` seconds, for logs: what was read so far
    when readers report here, else the elapsed time."""

    def __init__(self, counts, where, live, runner, interval):
        self._counts, self._where, self._live, self._runner = counts, where, live, runner
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="kdp-beam-progress")
        self._start = time.monotonic()

    def __enter__(self):
        counts_note = "" if self._live else " (counts at the end)"
        say(f"kdp-beam: reading {self._where} on {self._runner}{counts_note}")
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self._interval):
            say(f"kdp-beam: {self.line()}")

    def line(self):
        elapsed = _clock(time.monotonic() - self._start)
        counts = self._counts
        if not counts.heard:
            return f"{elapsed} elapsed, running on {self._runner}"
        share = counts.bytes_done / counts.total_bytes if counts.total_bytes else 0.0
        return (
            f"{elapsed} elapsed, {counts.rows:,} rows, {size_text(counts.bytes_done)} of "
            f"{size_text(counts.total_bytes)} ({share:.0%})"
        )

    def finish(self):
        pass

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class _Bar:
    """rich's live bar over the matched bytes, with rows, rows/s, elapsed time and ETA;
    a pulsing bar and the elapsed time while no reader reports here."""

    def __init__(self, counts, where, live, runner):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        waiting = "starting" if live else f"on {runner}: counts at the end"

        class SyncedProgress(Progress):
            def get_renderables(self):  # rich calls it on every refresh
                bar.sync()
                yield from super().get_renderables()

        bar = self
        self._counts = counts
        self._progress = SyncedProgress(
            SpinnerColumn(finished_text=" "),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            redirect_stdout=False,  # stdout is for --json
        )
        self._task = self._progress.add_task("reading", total=None, counts=f"{where} · {waiting}")
        self._where = where

    def sync(self):
        counts = self._counts
        if not counts.heard:
            return
        self._progress.update(
            self._task,
            total=counts.total_bytes,
            completed=counts.bytes_done,
            counts=f"{size_text(counts.bytes_done)}/{size_text(counts.total_bytes)} · "
            f"{counts.rows:,} rows · {counts.rows_per_second():,.0f} rows/s",
        )

    def __enter__(self):
        self._progress.start()
        return self

    def finish(self):
        """The job succeeded: all of the input was read (rows are counted here only if the
        readers reported here; the CLI prints Beam's count next)."""
        counts = self._counts
        self._progress.update(self._task, description="read")
        if counts.heard:
            counts.bytes_done = counts.total_bytes
            self.sync()
        else:
            total = counts.total_bytes
            self._progress.update(self._task, total=total, completed=total, counts=self._where)

    def __exit__(self, *exc):
        self._progress.stop()


def say(line):
    """A line for people, on stderr; none when there is no stderr (started with `2>&-`):
    never on stdout (print's fallback), which may be a --json result."""
    if sys.stderr is not None:
        print(line, file=sys.stderr, flush=True)


def _clock(seconds):
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"
