"""Records a reader could not use, under ``--on-bad-record=skip``: kept, never dropped.

Readers in skip mode emit a ``BadRecord`` in place of each record they cannot read, on a
tagged output beside the RecordBatches (kdp_beam.io.files.Reader: ``{"batches",
"bad_records"}``). The analysis counts them per reason (the bundle's ``bad_records``) and
the job writes every one, with its reason, as a JSON line of the dead-letter output next to
the bundle. Under ``fail`` (the default) the first one stops the run with an
InputDataError saying the same things.
"""

import json

from kdp_beam.slots import SlotsState

ON_BAD_RECORD = ("fail", "skip")

# Reasons, as counted in the bundle.
WRONG_FIELD_COUNT = "wrong_field_count"
UNPARSEABLE_NUMBER = "unparseable_number"
BAD_UTF8 = "bad_utf8"
NOT_JSON = "not_json"
WRONG_TYPE = "wrong_type"
MULTIPLE_VALUES = "multiple_values"
NOT_AN_EXAMPLE = "not_a_tf_example"
# A value the model cannot take (transform only: a float beyond float32's range).
OUT_OF_RANGE = "out_of_range"


class BadRecord(SlotsState):
    """One record left out: where it was, why, and its content as read.

    Attributes:
        file: the input file.
        reason: one of the reason constants above.
        detail: a sentence for people (the column and the value at fault).
        record: the record's fields (CSV: a list of strings; JSON: the line; tf.Example:
            the serialized bytes as hex), never truncated.
        byte_offset: where the record starts in the file (None if unknown).
        row, line: 1-based data row and physical line in the file, when known.
        column: the column at fault, if one.
    """

    __slots__ = ("file", "reason", "detail", "record", "byte_offset", "row", "line", "column")

    def __init__(self, file, reason, detail, record, byte_offset=None, row=None, line=None, column=None):
        self.file = file
        self.reason = reason
        self.detail = detail
        self.record = record
        self.byte_offset = byte_offset
        self.row = row
        self.line = line
        self.column = column


    def to_json(self):
        return {slot: getattr(self, slot) for slot in self.__slots__}

    def to_json_line(self):
        return json.dumps(self.to_json(), ensure_ascii=False)

    def __repr__(self):
        return f"BadRecord({self.file!r}, {self.reason!r}, {self.detail!r})"


def check_policy(on_bad_record):
    from kdp_beam.errors import SpecError

    if on_bad_record not in ON_BAD_RECORD:
        raise SpecError(f"on_bad_record must be one of {ON_BAD_RECORD}, got {on_bad_record!r}")
