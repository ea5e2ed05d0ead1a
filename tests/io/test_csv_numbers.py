"""The record-by-record CSV path (skip mode, error locating) judges numbers exactly as
pyarrow's CSV reader does, so a value is good or bad whichever path reads it."""

import io

import pyarrow as pa
import pyarrow.csv as pa_csv
from hypothesis import given
from hypothesis import strategies as st

from kdp_beam.io.csv import NULL_VALUES, _parses, _typed_batch

NUMBERISH = st.text(alphabet=list("0123456789.eE+-_ \tnaifINFAxX٣\r,\""), max_size=8)


def pyarrow_reads(value, arrow_type):
    """(accepted, value) by pyarrow's CSV reader, the value quoted in a one-column file."""
    data = ('x\n"' + value.replace('"', '""') + '"\n').encode()
    options = pa_csv.ConvertOptions(
        column_types={"x": arrow_type}, null_values=NULL_VALUES, strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    try:
        return True, pa_csv.read_csv(io.BytesIO(data), convert_options=options).column("x")[0].as_py()
    except pa.ArrowInvalid:
        return False, None


@given(value=NUMBERISH | st.sampled_from([" 6", "6\t", "+5", "1_000", "٣", "1e999", "-.5e-3", "nan", " NA", "9" * 19]),
       arrow_type=st.sampled_from([pa.float64(), pa.int64()]))
def test_numbers_are_judged_and_read_as_pyarrow_reads_them(value, arrow_type):
    accepted, expected = pyarrow_reads(value, arrow_type)
    assert _parses(value, arrow_type) == accepted
    if accepted:
        got = _typed_batch([[value]], {"x": arrow_type}).column(0)[0].as_py()
        assert got == expected or (got != got and expected != expected)  # NaN
