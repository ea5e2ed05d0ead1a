"""Schema checks on the launcher, before the job starts: a declared column missing from a
CSV header or a Parquet schema, or a Parquet type that cannot hold the declared one, fails
in seconds instead of after workers have started (the readers check again on the workers,
for files beyond the first MAX_FILES)."""

import itertools

import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from kdp_beam.columns import column_types
from kdp_beam.errors import InputDataError
from kdp_beam.io.csv import check_header, read_header
from kdp_beam.io.files import matched_paths
from kdp_beam.io.parquet import open_parquet

MAX_FILES = 100  # files checked on the launcher (each costs one small read)


def check_schemas(file_pattern, spec, input_format):
    """Raises InputDataError naming the file and column of the first schema problem."""
    if input_format not in ("csv", "parquet"):
        return  # JSON Lines and tf.Example have no schema to read ahead
    types = column_types(spec)
    for path in itertools.islice(matched_paths(file_pattern), MAX_FILES):
        if input_format == "csv":
            header = read_header(path)
            names, problems = (header or list(types)), []
        else:
            with FileSystems.open(path) as stream:
                schema = open_parquet(stream, path).schema_arrow
            names = schema.names
            problems = [
                f"column {name!r} is {schema.field(name).type}, which cannot be read as the "
                f"declared {arrow_type}"
                for name, arrow_type in types.items()
                if name in names and not _readable_as(schema.field(name).type, arrow_type)
            ]
        missing = [name for name in types if name not in names]
        if missing:
            where = "CSV header" if input_format == "csv" else "Parquet schema"
            problems.insert(0, f"declared column(s) {missing} are not in the {where} {names}")
        if problems:
            raise InputDataError(
                f"{path}: {problems[0]}. Fix the data or the declarations "
                "(checked before the job started)."
            )
        if input_format == "csv" and header:
            check_header(path, header, types)  # a declared column named twice


def _readable_as(source, declared):
    if pa.types.is_dictionary(source):
        source = source.value_type
    if declared == pa.string():
        return pa.types.is_string(source) or pa.types.is_large_string(source) or pa.types.is_binary(
            source
        ) or pa.types.is_large_binary(source)
    if declared == pa.int64():
        return pa.types.is_integer(source)
    return pa.types.is_integer(source) or pa.types.is_floating(source)  # float64
