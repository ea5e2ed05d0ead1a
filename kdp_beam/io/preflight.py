"""Schema checks on the launcher, before the job starts: a declared column missing from a
CSV header or a Parquet schema, or a Parquet column its feature (or the label) cannot read, fails in
seconds instead of after workers have started. Only the first MAX_FILES files are checked
here; the readers check every file on the workers with the same functions (Parquet:
kdp_beam.io.parquet.check_schema), so the outcome does not depend on which files come
first, only how soon it is known."""

import itertools

from kdp_beam.columns import kinds_read
from kdp_beam.errors import InputDataError
from kdp_beam.io.csv import check_header, read_header
from kdp_beam.io.files import matched_paths
from kdp_beam.io.parquet import check_schema, parquet_file

MAX_FILES = 100  # files checked on the launcher (each costs one small read)


def check_schemas(file_pattern, spec, input_format, columns=None):
    """Raises InputDataError naming the file and column of the first schema problem
    (`columns`: {column: read kind} read, as the readers take it; None: the spec's)."""
    if input_format not in ("csv", "parquet"):
        return  # JSON Lines and tf.Example have no schema to read ahead
    kinds = kinds_read(spec, columns)  # the label and fold key too, by default
    for path in itertools.islice(matched_paths(file_pattern), MAX_FILES):
        if input_format == "parquet":
            with parquet_file(path) as parquet:
                check_schema(parquet.schema_arrow, kinds, path)
            continue
        header = read_header(path)
        if header:  # an empty file has no columns to check
            check_header(path, header, kinds)  # missing, or a declared column named twice
