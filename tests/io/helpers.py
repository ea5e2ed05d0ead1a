"""The reader tests' helpers: what a reader's DoFn emits, sorted by output as Beam sorts
it; the statistics a reader's batches give; a vocabulary ranked as keras ranks it."""

import collections
import json

import apache_beam as beam
import pyarrow as pa
from apache_beam.pvalue import TaggedOutput

from kdp_beam.bad_records import BadRecord
from kdp_beam.beam.analyze import AnalyzeFeatures
from kdp_beam.io.files import BAD_RECORDS
from kdp_beam.job import pipeline_options


def split_outputs(elements):
    """(RecordBatches, BadRecords) of a reading DoFn's elements, checking that each is a
    RecordBatch for the main output or a BadRecord tagged for the "bad_records" output."""
    batches, bad = [], []
    for element in elements:
        if isinstance(element, TaggedOutput):
            assert element.tag == BAD_RECORDS and isinstance(element.value, BadRecord), element
            bad.append(element.value)
        else:
            assert isinstance(element, pa.RecordBatch), element
            batches.append(element)
    return batches, bad


def _write_json(document, path):
    with open(path, "w") as f:
        json.dump(document, f, sort_keys=True)


def analysed(read, spec, path):
    """The statistics document of `read` (a reader PTransform), by AnalyzeFeatures on the
    local runner, through a JSON file at `path` (as a bundle holds it)."""
    with beam.Pipeline(options=pipeline_options([])) as pipeline:
        pipeline | read | AnalyzeFeatures(spec) | beam.Map(_write_json, str(path))
    with open(path) as f:
        return json.load(f)


def keras_vocabulary(values, max_tokens):
    """(tokens, counts) of `values` as keras' IndexLookup.adapt ranks them: by count, ties
    by the token's bytes, both descending; max_tokens less its OOV index (None: all)."""
    order = sorted(collections.Counter(values).items(), key=lambda item: (item[1], item[0].encode()), reverse=True)
    if max_tokens is not None:
        order = order[: max_tokens - 1]
    return [token for token, _ in order], [count for _, count in order]
