"""One RecordBatch of raw columns, as the readers give them -> one RecordBatch of the model's
encoding: the bundle's FeatureSpace (output_mode "dict") run on the batch, so every value
is what ``FeatureSpace.from_artifacts(bundle, output_mode="dict")`` gives for its row.

The only code here that is not the model's own is the Arrow -> input tensors step, which
does vectorised what kdp_beam.builder.inputs does for Python values: a missing value
(null) becomes what the model encodes as missing (``_missing_value``: NaN, "", the missing
token or -1, a list's pad value), lists become a dense (rows, values) input padded with it,
and a value the model's input cannot hold (a finite float beyond float32's range, which
the model refuses; an integer beyond an int32 input's, which it would wrap) is
refused, naming the column, the value and where it was read (the provenance the readers
put on each batch: kdp_beam.io.files.where_read).

Imports TensorFlow: only the transform's workers (and what builds an encoder) do.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf

from kdp_beam import bad_records
from kdp_beam.bad_records import BadRecord
from kdp_beam.builder import FeatureSpace
from kdp_beam.builder.feature_space import INDICATOR_SUFFIX
from kdp_beam.builder.inputs import _missing_value
from kdp_beam.builder.multivalent import MASK_SUFFIX, is_list_feature
from kdp_beam.bundle.loader import Bundle, load_bundle
from kdp_beam.columns import ARROW_TYPES, LabelKind, cast_column, column_kinds, list_lengths
from kdp_beam.errors import InputDataError, SpecError
from kdp_beam.feature_types.options import FLOAT32_MAX
from kdp_beam.io.files import where_read
from kdp_beam.transform.folds import OutOfFold
from kdp_beam.transform.manifest import ROLE, SOURCE  # output field metadata keys

KEEP_SUFFIX = "_raw"  # a kept column that is also a feature: its raw copy's name
# What a --keep KIND reads as (kdp_beam.columns' read kinds): "text" reads any scalar as
# its text, as a class label is read.
KEEP_KINDS = {"integer": "integer", "float": "float", "string": "string", "text": "label"}
# What the model's input dtypes hold (finite floats; NaN and inf are values a float32 has).
_RANGES = {"float32": (-FLOAT32_MAX, FLOAT32_MAX), "int32": (-(2**31), 2**31 - 1)}
# The outputs' Arrow types: as the model gives them (a float64 input passed through stays float64),
# int32 widened exactly to int64.
_ARROW_OF = {
    tf.float32: pa.float32(), tf.float64: pa.float64(), tf.int64: pa.int64(), tf.int32: pa.int64(),
    tf.string: pa.string(),
}


class BatchEncoder:
    """The bundle's model as a function of RecordBatches.

    Args:
        bundle: a bundle directory (local, gs://, s3://) or a loaded Bundle.
        keep: {column: read kind} of columns copied unchanged beside the encoding (their
            Arrow type: kdp_beam.columns.ARROW_TYPES of the kind). A kept column that is
            also a feature is the feature's column as read, named ``<name>_raw`` (its
            encoding has the name).
        out_of_fold: encode the target features declared with folds out of fold
            (kdp_beam.transform.folds: each row with the other folds' statistics); it reads
            the spec's fold key too. SpecError when the bundle has no such feature.

    Attributes:
        schema: the output schema, known before any data: one fixed_size_list field per
            model output (features, crosses, ``<name>_missing``, ``<name>_mask``) in the
            model's order, then the keep columns; each field's metadata has ROLE
            ("feature", "cross", "indicator", "mask", "keep") and SOURCE (the feature, cross
            or column it comes from).
        columns: {column: read kind} the readers must read for it: the features', then the
            keep columns'.
    """

    def __init__(self, bundle, keep=None, out_of_fold=False):
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        self.feature_space = FeatureSpace.from_artifacts(self.bundle, output_mode="dict")
        # --out-of-fold: the target features with folds re-encoded from their lookups' indices
        self._folds = OutOfFold(self.bundle, self.feature_space) if out_of_fold else None
        self._features = self.feature_space.features
        kinds = column_kinds(self.bundle.spec)
        keep = dict(keep or {})
        self.columns = {**kinds, **{name: kind for name, kind in keep.items() if name not in kinds}}
        if self._folds is not None:
            self.columns = self._folds.columns(self.columns)
        signature = {
            name: tf.TensorSpec([None, None] if is_list_feature(f) else [None, 1], f.dtype)
            for name, f in self._features.items()
        }
        # One graph for every batch: the batch axis (and a list's width) is None, so it traces once.
        call = self.feature_space.__call__ if self._folds is None else self._folds.wrap(self.feature_space.__call__)
        self._model = tf.function(call, input_signature=[signature], jit_compile=False)
        outputs = self._model.get_concrete_function().structured_outputs
        if self._folds is not None:
            outputs = outputs[0]
        self._outputs = list(outputs)
        fields = [self._output_field(name, spec) for name, spec in outputs.items()]
        if self._folds is not None:
            fields = self._folds.marked(fields)
        self._keep = {}
        for name, kind in keep.items():
            out = name + KEEP_SUFFIX if name in kinds else name
            if out in outputs or out in self._keep.values():
                raise SpecError(
                    f"--keep {name}: its column would be named {out!r}, which is a model output's name; "
                    "rename the column or do not keep it"
                )
            self._keep[name] = out
            meta = {ROLE: "keep", SOURCE: name}
            fields.append(pa.field(out, ARROW_TYPES[self.columns[name]], metadata=meta))
        self.schema = pa.schema(fields)

    def _output_field(self, name, spec):
        width = spec.shape[-1]
        if len(spec.shape) != 2 or width is None:
            raise SpecError(f"the model's output {name!r} has shape {spec.shape}, not (rows, width)")
        if name in self._features:
            role, source = "feature", name
        elif name in self.feature_space.crossers:
            role, source = "cross", name
        elif name.endswith(INDICATOR_SUFFIX) and name[: -len(INDICATOR_SUFFIX)] in self._features:
            role, source = "indicator", name[: -len(INDICATOR_SUFFIX)]
        else:
            role, source = "mask", name[: -len(MASK_SUFFIX)]
        if spec.dtype not in _ARROW_OF:
            raise SpecError(f"the model's output {name!r} is {spec.dtype.name}, which the transform does not write")
        arrow = _ARROW_OF[spec.dtype]
        return pa.field(name, pa.list_(arrow, int(width)), metadata={ROLE: role, SOURCE: source})

    def encode(self, batch):
        """The batch's rows encoded, a RecordBatch of `schema`. Raises InputDataError
        naming the column, the value and where it was read for a value the model refuses."""
        return self.encode_or_skip(batch, skip=False)[0]

    def encode_or_skip(self, batch, skip=True):
        """(the encoded batch, BadRecords of the rows left out): under `skip`, a row
        holding a value the model refuses is left out as a BadRecord (reason
        bad_records.OUT_OF_RANGE); otherwise it raises InputDataError."""
        absent = [name for name in self.columns if name not in batch.schema.names]
        if absent:
            file = where_read(batch, 0, parts=True)[0]
            raise InputDataError(
                f"{file or 'a batch'}: no column(s) {absent}; the encoder reads {list(self.columns)} "
                "(read them with columns=BatchEncoder.columns)"
            )
        refused = self._refused(batch)
        bad = []
        if refused:
            if not skip:
                raise InputDataError(_refusal(batch, *refused[0]))
            left_out = np.zeros(batch.num_rows, dtype=bool)
            for name, row, value, dtype in refused:
                if not left_out[row]:
                    bad.append(_bad_record(batch, name, row, value, dtype))
                left_out[row] = True
            batch = batch.filter(pa.array(~left_out))
        inputs = {name: self._input(name, f, batch.column(name)) for name, f in self._features.items()}
        outputs = self._model(inputs)
        if self._folds is not None:
            outputs = self._folds.encode(*outputs, batch)
        # np.asarray shares the tensor's buffer (.numpy() copies it: ~1.5 ms per 10 MB).
        columns = [_fixed_size(np.asarray(outputs[name]), field.type) for name, field in zip(self._outputs, self.schema)]
        # (As the readers cast them already, unless the batch is the caller's own.)
        columns += [cast_column(batch.column(name), self.columns[name], name, "the batch") for name in self._keep]
        return pa.RecordBatch.from_arrays(columns, schema=self.schema), bad

    def _refused(self, batch):
        """[(column, row, value, the dtype's range)] of values the model's input dtype
        cannot hold: a finite float beyond float32 (the model refuses it:
        kdp_beam.builder.inputs._floats; it would be inf), an integer beyond int32 in an
        int32 input (which the model wraps silently: 2**40 would be 0). The usual
        case costs a min and a max per such column."""
        found = []
        for name, feature in self._features.items():
            bounds = _RANGES.get(feature.dtype)
            if bounds is None:
                continue
            column = batch.column(name)
            lists = is_list_feature(feature)
            values = column.flatten() if lists else column
            extremes = pc.min_max(pc.if_else(pc.is_finite(values), values, None) if feature.dtype == "float32" else values)
            low, high = extremes["min"].as_py(), extremes["max"].as_py()
            if low is None or bounds[0] <= low and high <= bounds[1]:
                continue
            flat = pc.fill_null(values, 0).to_numpy(zero_copy_only=False)  # (a null is in range)
            rows = np.repeat(np.arange(len(column)), list_lengths(column)) if lists else np.arange(len(column))
            outside = (flat < bounds[0]) | (flat > bounds[1])  # (inf: a float32 holds it; NaN: never)
            if feature.dtype == "float32":
                outside &= np.isfinite(flat)
            for index in np.flatnonzero(outside):
                found.append((name, int(rows[index]), flat[index].item(), feature.dtype))
        return sorted(found, key=lambda item: item[1])

    def _input(self, name, feature, column):
        """A reader's column as the model's input tensor, missing values as it encodes them."""
        missing = _missing_value(feature)
        if not is_list_feature(feature):
            return tf.constant(_filled(column, missing, feature.dtype).reshape(-1, 1))
        lengths = list_lengths(column)
        width = int(lengths.max()) if len(lengths) else 0
        values = _filled(column.flatten(), missing, feature.dtype)
        dense = np.full((len(column), width), missing, dtype=values.dtype)
        # Each value at (its row, its position in the row): one scatter, no loop over rows.
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        dense[np.repeat(np.arange(len(column)), lengths), np.arange(len(values)) - starts] = values
        return tf.constant(dense)


def _filled(values, missing, dtype):
    """An Arrow array's values as a numpy array of the model's dtype, nulls as `missing`."""
    if values.null_count:
        values = pc.fill_null(values, pa.scalar(missing, values.type))
    if dtype == "string":  # as bytes: TensorFlow need not encode each str (~20% faster)
        return values.cast(pa.binary()).to_numpy(zero_copy_only=False)
    return values.to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def _fixed_size(array, arrow_type):
    """A (rows, width) numpy output as a fixed_size_list column, on its flat buffer."""
    flat = array.reshape(-1)
    if arrow_type.value_type == pa.string():
        values = pa.array(flat.tolist() if flat.dtype == object else flat, pa.binary()).cast(pa.string())
    else:
        values = pa.array(flat.astype(arrow_type.value_type.to_pandas_dtype(), copy=False))
    return pa.FixedSizeListArray.from_arrays(values, arrow_type.list_size)


def _refusal(batch, name, row, value, dtype):
    return (
        f"{where_read(batch, row)}: column {name!r} holds {value!r}, beyond {dtype}'s range "
        f"{_shown_range(dtype)}, which the model's input cannot hold. Scale the column (or "
        "declare a wider dtype), or pass --on-bad-record skip to leave such rows out"
    )


def _shown_range(dtype):
    low, high = _RANGES[dtype]
    return f"(±{high:.4g})" if dtype == "float32" else f"[{low}, {high}]"


def _bad_record(batch, name, row, value, dtype):
    record = {key: _jsonable(v) for key, v in batch.slice(row, 1).to_pylist()[0].items()}
    file, line = where_read(batch, row, parts=True)
    return BadRecord(
        file, bad_records.OUT_OF_RANGE,
        f"column {name!r}: {value!r} is beyond {dtype}'s range {_shown_range(dtype)}, which the model's input cannot hold",
        record, row=line, column=name,
    )


def _jsonable(value):
    return value if isinstance(value, (str, int, float, bool, type(None), list)) else str(value)


_ENCODERS = {}


def shared_encoder(bundle, keep=None, out_of_fold=False):
    """The BatchEncoder of these arguments, built once per process: the launcher builds one
    for the schema, and the in-process runner's DoFns then take it rather than building and
    tracing the model again (~2 s). Keyed by the bundle's manifest sha256, so a bundle
    rewritten at the same path gets a new one."""
    from kdp_beam.transform.manifest import bundle_identity

    keep = dict(keep or {})
    kinds = tuple((name, type(kind).__name__, str(kind), getattr(kind, "role", None)) for name, kind in keep.items())
    key = (bundle_identity(bundle)["manifest_sha256"], kinds, bool(out_of_fold))
    if key not in _ENCODERS:
        _ENCODERS.clear()  # one model held at a time
        _ENCODERS[key] = BatchEncoder(bundle, keep, out_of_fold)
    return _ENCODERS[key]


def output_schema(bundle, keep=None, out_of_fold=False):
    """The encoded batches' schema (BatchEncoder.schema) without running Beam."""
    return shared_encoder(bundle, keep, out_of_fold).schema


def parse_keep(keep):
    """--keep values (``NAME`` or ``NAME:KIND``, or (name, kind) pairs, or a {name: kind}
    dict; kind None: decided by keep_kinds) as {name: kind or None}. A name may hold ":"
    itself: only a known KIND after the last one is a kind."""
    if isinstance(keep, dict):
        return dict(keep)
    parsed = {}
    for item in keep or ():
        if isinstance(item, (tuple, list)):
            name, kind = item
        else:
            name, _, kind = item.rpartition(":")
            if not name or kind not in KEEP_KINDS:
                name, kind = item, None
        parsed[name] = kind
    return parsed


def keep_kinds(bundle, keep, input_pattern, input_format):
    """{column: read kind} of the --keep columns, decided before the job:

    - ``NAME:KIND`` (KIND one of KEEP_KINDS: integer, float, string, text): as given;
    - a feature: read as the feature is (its raw column; multivalent ones are not kept);
    - the spec's label: a regression label as "float", classes as "integer" when every
      class in the bundle is an integer's text, else as text;
    - otherwise, Parquet: by the first file's Arrow type (integers "integer", floating point
      "float", anything else text); other formats: text.

    Raises SpecError for an unknown KIND or a multivalent feature kept, InputDataError for a
    keep column absent from the first file's header or schema (JSON Lines and tf.Example
    have none to read ahead: a missing column is then all missing)."""
    bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    spec, features = bundle.spec, column_kinds(bundle.spec)
    resolved, undecided = {}, []
    for name, kind in parse_keep(keep).items():
        if name in features:
            if features[name].startswith("list<"):
                raise SpecError(f"--keep {name}: a multivalent feature's lists are not kept; keep a scalar column")
            resolved[name] = features[name]
        elif kind is not None:
            if kind not in KEEP_KINDS:
                raise SpecError(f"--keep {name}:{kind}: the kind must be one of {sorted(KEEP_KINDS)}")
            resolved[name] = _kept(KEEP_KINDS[kind])
        elif name == spec.label:
            resolved[name] = _kept(_label_kind(bundle))
        else:
            resolved[name] = None
            undecided.append(name)
    types = _first_file_types(input_pattern, input_format, list(resolved))
    if types is not None:
        absent = [name for name in resolved if name not in types]
        if absent:
            # NAME:KIND with a KIND not known was taken as a name (names may hold ":")
            typos = [name for name in absent if name.rpartition(":")[0] in types]
            hint = f" (--keep NAME:KIND takes a KIND of {sorted(KEEP_KINDS)}: not {typos})" if typos else ""
            raise InputDataError(
                f"{types.path}: --keep column(s) {absent} are not in the file{hint}; it has {sorted(types)[:50]}"
            )
    for name in undecided:
        arrow = types.get(name) if types is not None and input_format == "parquet" else None
        resolved[name] = _kept(
            "integer" if arrow is not None and pa.types.is_integer(arrow)
            else "float" if arrow is not None and pa.types.is_floating(arrow)
            else "label"
        )
    return resolved


def _kept(kind):
    """A kept column's read kind: text and float as the label's (a LabelKind), which every
    reader reads from whichever type a file holds (a tf.Example's int64_list id as its
    text, an int64_list as a float); integer and string as a feature's."""
    return LabelKind(kind, "keep") if kind in ("label", "float") else kind


def _label_kind(bundle):
    spec = bundle.spec
    if spec.label_kind == "float":
        return "float"
    classes = [str(c) for c in ((bundle.label or {}).get("classes") or [])]
    integers = classes and all(_is_integer_text(c) for c in classes)
    return "integer" if integers else "label"


def _is_integer_text(text):
    try:
        return str(int(text)) == text
    except ValueError:
        return False


class _Columns(dict):
    """{column: Arrow type or None} of the first input file, and its path."""

    path = None


def _first_file_types(input_pattern, input_format, names):
    """The first file's columns (CSV: its header; Parquet: its Arrow schema), None for
    formats without one to read ahead."""
    if not names or input_format not in ("csv", "parquet"):
        return None
    from kdp_beam.io.csv import read_header
    from kdp_beam.io.files import matched_paths
    from kdp_beam.io.parquet import parquet_file

    path = next(iter(matched_paths(input_pattern)), None)
    if path is None:
        return None  # no file: the job says so (require_matches)
    found = _Columns()
    found.path = path
    if input_format == "parquet":
        with parquet_file(path) as parquet:
            found.update({field.name: field.type for field in parquet.schema_arrow})
    else:
        found.update({name: None for name in read_header(path) or ()})
    return found
