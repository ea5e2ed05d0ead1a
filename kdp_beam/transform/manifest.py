"""The manifest of a transformed dataset: what `kdp-beam transform` wrote, read without the
bundle by `transformed_dataset` (docs/transform.md is the contract).

Layout of the output directory::

    manifest.json          written last, through a rename: the format, the row count, the
                           input, the bundle's identity, the schema and every file's checksum
    data/part-*.tfrecord   (or .parquet) the encoded rows, sharded
    bad_records/*.jsonl    the records a skip-mode run left out (dead letters), as analyze's

A file under data/ that the manifest does not list is not part of the dataset: the
records of a bundle Beam retried are deleted before the manifest is written.
"""

import datetime
import hashlib
import json

import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from kdp_beam.bundle.layout import FORMAT_NAME as BUNDLE_FORMAT, MANIFEST, join
from kdp_beam.bundle.loader import read_bytes
from kdp_beam.bundle.writer import entry_of
from kdp_beam.errors import BundleError
from kdp_beam.version import __version__

FORMAT_NAME = "kdp_beam transformed dataset"
DATA = "data"  # the directory of the shard files, inside the output
FORMAT_VERSION = 1
ROLE = "kdp_beam.role"
SOURCE = "kdp_beam.source"
ENCODING = "kdp_beam.encoding"  # "out_of_fold" on a target feature encoded so (transform.folds)
_DTYPES = {pa.float32(): "float32", pa.float64(): "float64", pa.int64(): "int64", pa.string(): "string"}


def bundle_identity(bundle):
    """{path, manifest_sha256, format_version} of a bundle (a path or a loaded Bundle): the
    manifest lists every bundle file's sha256, so its own hash identifies them all."""
    path = bundle if isinstance(bundle, str) else bundle.path
    try:
        data = read_bytes(join(path, MANIFEST))
    except OSError as e:
        raise BundleError(f"cannot read the bundle's manifest {join(path, MANIFEST)} ({e})") from None
    try:
        version = json.loads(data.decode("utf-8")).get("format_version")
    except (ValueError, AttributeError):
        raise BundleError(f"{join(path, MANIFEST)} is not a kdp_beam bundle manifest") from None
    return {"path": path, "manifest_sha256": hashlib.sha256(data).hexdigest(), "format_version": version}


def schema_entries(schema, file_format):
    """[{name, dtype, width, role, source[, encoding]}] of an encoded schema
    (BatchEncoder.schema), in its order: dtype as stored (tf.Example has no float64: a
    float64 keep column is float32 in TFRecord), width the fixed-size list's, None for a
    scalar (keep) column; encoding "out_of_fold" for a feature encoded out of fold."""
    entries = []
    for field in schema:
        metadata = {k.decode(): v.decode() for k, v in (field.metadata or {}).items()}
        kind, width = field.type, None
        if pa.types.is_fixed_size_list(kind):
            kind, width = kind.value_type, kind.list_size
        dtype = _DTYPES.get(kind)
        if dtype is None:
            dtype = "int64" if pa.types.is_integer(kind) else "string" if pa.types.is_large_string(kind) else None
        if dtype is None:
            raise BundleError(f"column {field.name!r}: type {field.type} cannot be written to a transformed dataset")
        if file_format == "tfrecord" and dtype == "float64":
            dtype = "float32"
        entries.append(
            {
                "name": field.name,
                "dtype": dtype,
                "width": width,
                "role": metadata.get(ROLE, "keep"),
                "source": metadata.get(SOURCE, field.name),
                **({"encoding": metadata[ENCODING]} if ENCODING in metadata else {}),
            }
        )
    return entries


def write_manifest(output_dir, files, schema, file_format, bundle, input_description, bad_records=None, dead_letters=()):
    """Deletes the shard files no record names (a retried bundle's), then writes the
    manifest, last, through a rename; returns it.

    Args:
        files: WriteShards' records of the finished files.
        schema: schema_entries(...); each scalar column's null count is added from the files.
        bundle: bundle_identity(...).
        bad_records: {reason: count} of the records left out.
        dead_letters: paths of the files holding them.
    """
    files = sorted(files, key=lambda f: f["path"])
    listed = {f["path"] for f in files}
    written = FileSystems.match([join(output_dir, DATA) + "/*"])[0].metadata_list
    orphans = [m.path for m in written if f"{DATA}/{_base_name(m.path)}" not in listed]
    if orphans:
        FileSystems.delete(orphans)
    schema = [dict(entry) for entry in schema]
    for entry in schema:
        if entry["width"] is None:  # a kept column: its missing values, for the reader
            entry["null_count"] = sum(f["null_counts"].get(entry["name"], 0) for f in files)
    by_reason = dict(sorted((bad_records or {}).items()))
    letters = [{"path": _relative(p, output_dir), **entry_of(p)} for p in sorted(dead_letters)]
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kdp_beam_version": __version__,
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "row_count": sum(f["rows"] for f in files),
        "bad_record_count": sum(by_reason.values()),
        "bad_records": {"by_reason": by_reason, "files": letters},
        "input": input_description,
        "bundle": bundle,
        "file_format": file_format,  # "format" names the kind of manifest, as a bundle's does
        # whether some target features are out-of-fold encodings (the entries saying "encoding")
        "out_of_fold": any(entry.get("encoding") == "out_of_fold" for entry in schema),
        "schema": schema,
        "files": [{key: f[key] for key in ("path", "rows", "bytes", "crc32c")} for f in files],
    }
    path = join(output_dir, MANIFEST)
    with FileSystems.create(path + ".tmp") as f:
        f.write((json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    FileSystems.rename([path + ".tmp"], [path])
    return manifest


def _base_name(path):
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _relative(path, directory):
    return path.replace("\\", "/")[len(directory.replace("\\", "/").rstrip("/")) + 1 :]


def read_manifest(path):
    """The manifest of the transformed dataset at `path`; BundleError when there is none,
    it is another kind of directory (a bundle), or of a format version this kdp_beam does
    not read."""
    manifest_path = join(path, MANIFEST)
    try:
        manifest = json.loads(read_bytes(manifest_path).decode("utf-8"))
    except OSError as e:
        raise BundleError(
            f"{manifest_path} cannot be read ({e}): {path} is not a transformed dataset; "
            "make one with kdp-beam transform"
        ) from None
    except ValueError as e:
        raise BundleError(f"{manifest_path} is not valid JSON ({e})") from None
    kind = manifest.get("format") if isinstance(manifest, dict) else None
    if kind != FORMAT_NAME:
        what = "a kdp_beam artifact bundle, not a transformed dataset" if kind == BUNDLE_FORMAT else "not a transformed dataset"
        raise BundleError(f"{path} is {what}; pass the output directory of kdp-beam transform")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{manifest_path}: format version {manifest.get('format_version')!r} (written by kdp_beam "
            f"{manifest.get('kdp_beam_version')}); this kdp_beam {__version__} reads version "
            f"{FORMAT_VERSION}: use the kdp_beam that wrote it"
        )
    return manifest
