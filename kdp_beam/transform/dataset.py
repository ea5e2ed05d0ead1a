"""transformed_dataset: a transformed dataset's files as a tf.data.Dataset for model.fit,
read from its manifest alone (no bundle, no Beam pipeline)."""

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from kdp_beam.bundle.layout import join
from kdp_beam.errors import BundleError
from kdp_beam.transform.manifest import bundle_identity, read_manifest

_MISSING = {"float32": float("nan"), "float64": float("nan"), "string": ""}
PARQUET_READ_ROWS = 16384


def transformed_dataset(
    path,
    batch_size,
    label=None,
    features=None,
    shuffle_files=False,
    num_epochs=1,
    bundle=None,
    verify_checksums=False,
    num_parallel_reads=None,
    drop_remainder=False,
    seed=None,
):
    """The encoded rows of `kdp-beam transform`'s output as batches.

    Args:
        path: the output directory (local, gs://, s3://).
        batch_size: rows per batch.
        label: a column (usually a --keep column) given apart: the dataset yields
            (features, label); None yields the features dict alone.
        features: the columns of the features dict, in that order; None: every model
            output (every column but the kept ones).
        shuffle_files: read the files in a new random order each epoch (rows stay in
            their file's order; add .shuffle() for more).
        num_epochs: times to read the data; None repeats forever.
        bundle: a bundle directory or a loaded kdp_beam Bundle: a BundleError unless the
            dataset was made with exactly that bundle (its manifest's sha256).
        verify_checksums: hash every file against the manifest first (reads all the data
            once more); by default only each file's presence and size are checked.
        num_parallel_reads: files read at once (None: tf.data.AUTOTUNE).
        drop_remainder, seed: as for tf.data.
    Features have the model's shapes: (batch, width) per output, as
    FeatureSpace.from_artifacts(bundle, output_mode="dict") returns them; a kept column
    is (batch,). Raises BundleError when the directory is not a transformed dataset, a
    file is missing or differs, a column is unknown, or the bundle differs.
    """
    import tensorflow as tf

    manifest = read_manifest(path)
    if bundle is not None:
        _check_bundle(manifest, bundle, path)
    columns = {entry["name"]: entry for entry in manifest["schema"]}
    names = list(features) if features is not None else [
        name for name, entry in columns.items() if entry["role"] != "keep" and name != label
    ]
    for name in names + ([label] if label is not None else []):
        if name not in columns:
            raise BundleError(
                f"{path} has no column {name!r}; its columns are {', '.join(columns)}"
                + ("" if label is None or name != label else " (keep the label with kdp-beam transform --keep)")
            )
    files = [join(path, f["path"]) for f in manifest["files"]]
    _check_files(path, manifest["files"], verify_checksums)
    wanted = names + ([label] if label is not None and label not in names else [])
    parallel = num_parallel_reads or tf.data.AUTOTUNE
    file_names = tf.data.Dataset.from_tensor_slices(tf.constant(files, dtype=tf.string))
    if shuffle_files and files:
        file_names = file_names.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    file_names = file_names.repeat(num_epochs) if num_epochs != 1 else file_names
    if manifest["file_format"] == "tfrecord":
        spec = {name: _feature_spec(tf, columns[name], path) for name in wanted}
        # Files are interleaved as batches of records, not record by record: a parallel
        # interleave of single 4 KB records costs more than reading them (one reader gave
        # ~150K rows/s, an interleave of records ~40-75K). Parsed in parallel, then cut to
        # batch_size again across the files' ends.
        records = file_names.interleave(
            lambda name: tf.data.TFRecordDataset(name).batch(batch_size),
            cycle_length=parallel, num_parallel_calls=parallel, deterministic=not shuffle_files,
        )
        rows = records.map(lambda serialized: tf.io.parse_example(serialized, spec), num_parallel_calls=tf.data.AUTOTUNE)
        rows = rows.rebatch(batch_size, drop_remainder=drop_remainder)
    else:
        rows = _parquet_rows(tf, file_names, [columns[n] for n in wanted], batch_size, parallel, shuffle_files)
        rows = rows.rebatch(batch_size, drop_remainder=drop_remainder)
    if num_epochs is not None:
        # The manifest knows the rows, so model.fit knows the steps of an epoch (tf.data
        # cannot tell through the interleave); tf.data also raises if the files held others.
        total = manifest["row_count"] * num_epochs
        batches = total // batch_size if drop_remainder else -(-total // batch_size)
        rows = rows.apply(tf.data.experimental.assert_cardinality(batches))
    if label is None:
        return rows.map(lambda row: {n: row[n] for n in names}).prefetch(tf.data.AUTOTUNE)
    return rows.map(lambda row: ({n: row[n] for n in names}, row[label])).prefetch(tf.data.AUTOTUNE)


def _check_bundle(manifest, bundle, path):
    expected = bundle_identity(bundle)
    if expected["manifest_sha256"] != manifest["bundle"]["manifest_sha256"]:
        raise BundleError(
            f"{path} was encoded with the bundle {manifest['bundle']['path']} (manifest sha256 "
            f"{manifest['bundle']['manifest_sha256'][:12]}...), not with {expected['path']} "
            f"({expected['manifest_sha256'][:12]}...): a model built from this bundle would not "
            "encode as the data was encoded; transform again with it, or train with that bundle"
        )


def _check_files(path, files, verify_checksums):
    """Every listed file present with its size (and, asked, its CRC-32C)."""
    if not files:
        return
    found = FileSystems.match([join(path, f["path"]) for f in files])
    for entry, match in zip(files, found):
        if not match.metadata_list:
            raise BundleError(f"{path}: {entry['path']} is listed in the manifest but missing; copy the whole directory")
        size = match.metadata_list[0].size_in_bytes
        if size != entry["bytes"]:
            raise BundleError(
                f"{path}: {entry['path']} has {size:,} bytes, the manifest {entry['bytes']:,}: the file "
                "is truncated or was replaced; copy it again or transform again"
            )
        if verify_checksums and _crc32c(match.metadata_list[0].path) != entry["crc32c"]:
            raise BundleError(f"{path}: {entry['path']}'s CRC-32C differs from the manifest: the file is damaged")


def _crc32c(path):
    import google_crc32c

    crc = 0
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            crc = google_crc32c.extend(crc, chunk)
    return f"{crc:08x}"


def _tf_dtype(tf, dtype):
    return {"float32": tf.float32, "float64": tf.float64, "int64": tf.int64, "string": tf.string}[dtype]


def _feature_spec(tf, entry, path):
    """How a column parses from tf.Example: an output as [width], a kept column as a
    scalar whose missing values (an empty feature) read as NaN / "" -- an integer column
    has no such value, so one with missing values is refused rather than invented."""
    dtype = _tf_dtype(tf, entry["dtype"])
    if entry["width"] is not None:
        return tf.io.FixedLenFeature([entry["width"]], dtype)
    if not entry.get("null_count"):
        return tf.io.FixedLenFeature([], dtype)
    if entry["dtype"] not in _MISSING:
        raise BundleError(
            f"{path}: the kept integer column {entry['name']!r} has {entry['null_count']:,} missing "
            "values, which an integer tensor cannot hold; transform again with --keep "
            f"{entry['name']}:float (missing values then read as NaN)"
        )
    return tf.io.FixedLenFeature([], dtype, default_value=_MISSING[entry["dtype"]])


def _parquet_rows(tf, file_names, entries, batch_size, parallel, shuffle_files):
    """Parquet files as dicts of numpy arrays, batch_size rows read at a time by pyarrow:
    one Python step per batch, none per row."""
    names = [e["name"] for e in entries]
    signature = {
        e["name"]: tf.TensorSpec([None] if e["width"] is None else [None, e["width"]], _tf_dtype(tf, e["dtype"]))
        for e in entries
    }

    # pyarrow reads many rows per Python step (rebatch cuts them to batch_size): per batch of
    # 1,024 rows the generator's step cost as much as the reading.
    read_rows = max(batch_size, PARQUET_READ_ROWS)

    def batches(file_name):
        import pyarrow.parquet as pq

        with FileSystems.open(file_name.decode(), compression_type=CompressionTypes.UNCOMPRESSED) as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=read_rows, columns=names):
                yield {e["name"]: _numpy(batch.column(e["name"]), e) for e in entries}

    def read(file_name):
        return tf.data.Dataset.from_generator(batches, args=(file_name,), output_signature=signature)

    return file_names.interleave(read, cycle_length=parallel, num_parallel_calls=parallel, deterministic=not shuffle_files)


def _numpy(column, entry):
    import numpy as np

    if entry["width"] is None:
        if column.null_count and entry["dtype"] not in _MISSING:
            raise BundleError(
                f"the kept integer column {entry['name']!r} has missing values, which an integer "
                f"tensor cannot hold; transform again with --keep {entry['name']}:float"
            )
        missing = _MISSING.get(entry["dtype"])
        values = column.fill_null(missing) if column.null_count else column
        return values.to_numpy(zero_copy_only=False)
    values = column.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values).reshape(len(column), entry["width"])
