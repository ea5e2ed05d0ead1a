"""What a reader's DoFn emits, sorted by output as Beam sorts it."""

import pyarrow as pa
from apache_beam.pvalue import TaggedOutput

from kdp_beam.bad_records import BadRecord
from kdp_beam.io.files import BAD_RECORDS


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
