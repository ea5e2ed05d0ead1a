"""What every reader shares: matching files, read metrics and progress logs."""

import logging
import os
import time

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from kdp_beam import progress
from kdp_beam.errors import InputDataError

_LOG = logging.getLogger(__name__)
PROGRESS_INTERVAL_SECONDS = 10.0


class READ_METRICS:  # noqa: N801 - a namespace of Beam counters
    """Beam counters of what was read: the proof of a single pass, and progress."""

    files = Metrics.counter("kdp_beam", "files_read")
    batches = Metrics.counter("kdp_beam", "batches_read")
    rows = Metrics.counter("kdp_beam", "rows_read")


class MatchInputFiles(beam.PTransform):
    """FileMetadata of every file matching one pattern or a list of patterns, spread over
    workers. A pattern that matches nothing is an error, not an empty dataset."""

    def __init__(self, file_pattern, spread=True):
        super().__init__()
        self.patterns = as_patterns(file_pattern)
        self.spread = spread  # False when the reader spreads finer units (byte ranges)

    def expand(self, pbegin):
        matched = (
            pbegin
            | "Patterns" >> beam.Create(self.patterns)
            | "Match" >> fileio.MatchAll(fileio.EmptyMatchTreatment.DISALLOW)
        )
        return matched | "Spread" >> beam.Reshuffle() if self.spread else matched


def as_patterns(file_pattern):
    return [file_pattern] if isinstance(file_pattern, str) else list(file_pattern)


def matched_paths(file_pattern):
    """The paths of the files each pattern matches, pattern by pattern, as they are found."""
    for pattern in as_patterns(file_pattern):
        for metadata in FileSystems.match([pattern])[0].metadata_list:
            yield metadata.path


def require_matches(file_pattern):
    """Raises InputDataError before a job starts if a pattern matches no file."""
    for pattern in as_patterns(file_pattern):
        if os.path.isdir(pattern):
            example = os.path.join(pattern, "*.csv")
            raise InputDataError(f"{pattern!r} is a directory; pass a file pattern such as {example!r}")
        if not FileSystems.match([pattern])[0].metadata_list:
            raise InputDataError(f"no file matches the input pattern {pattern!r}; check the path")


class ProgressLog:
    """Counts what one unit of work (a file, a byte range, a row group) yields, logs it every
    PROGRESS_INTERVAL_SECONDS and tells this process's progress sink (kdp_beam.progress:
    the CLI's display, when the readers run in its process)."""

    def __init__(self, path):
        self.path = path
        self.rows = 0
        self._last = time.monotonic()

    def add(self, batch):
        self.rows += batch.num_rows
        READ_METRICS.batches.inc()
        READ_METRICS.rows.inc(batch.num_rows)
        progress.add_rows(batch.num_rows)
        now = time.monotonic()
        if now - self._last >= PROGRESS_INTERVAL_SECONDS:
            self._last = now
            _LOG.info("kdp_beam: %s: %s rows read so far", self.path, f"{self.rows:,}")

    def done(self):
        progress.unit_done(self.path, self.rows)
        _LOG.info("kdp_beam: %s: done, %s rows", self.path, f"{self.rows:,}")
