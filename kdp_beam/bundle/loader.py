"""The artifact bundle: a versioned, checksummed directory of JSON statistics.

Layout (docs/bundle-format.md is the contract)::

    manifest.json                 format version, kdp_beam version, spec, row count, input,
                                  and the sha256 and size of every other file
    statistics.json               per-feature statistics
    vocabularies/NNN-<name>.jsonl one ["token", count] JSON array per line, by rank
                                  (["token", count, document_count] for text features)

The manifest is written last, through a rename, so a bundle whose writing was interrupted
has no manifest and never loads as valid. Loading reads plain JSON only (never pickle) and
needs no Beam pipeline.
"""

import datetime
import hashlib
import json
import os
import posixpath
import re

from kdp_beam.errors import BundleError, SpecError
from kdp_beam.spec import FeatureSpec
from kdp_beam.statistics_checks import (
    VOCABULARY_COLUMNS,
    VOCABULARY_TYPES,
    check_document,
    check_features,
)
from kdp_beam.version import BUNDLE_FORMAT_VERSION, __version__

MANIFEST = "manifest.json"
STATISTICS = "statistics.json"
DEAD_LETTERS = "bad_records"  # directory of the records a skip-mode run left out
STATE = "state"  # mergeable state (kdp-beam merge): analyzers.json and token counts
ANALYZER_STATE = f"{STATE}/analyzers.json"
FORMAT_NAME = "kdp_beam artifact bundle"
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def _join(directory, name):
    """A bundle member's path: "/"-separated names inside the bundle, native on disk."""
    if _SCHEME.match(directory):
        return posixpath.join(directory, name)
    return os.path.join(directory, *name.split("/"))


def _slug(index, feature_name):
    """The feature's position plus a sanitised prefix of its name: no name ("../x", "a/b",
    1,000 characters) can become a path outside the bundle or collide with another."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", feature_name)[:48].strip("_") or "feature"
    return f"{index:03d}-{slug}"


def vocabulary_file_name(index, feature_name):
    """A safe relative file name for a feature's vocabulary."""
    return f"vocabularies/{_slug(index, feature_name)}.jsonl"


def token_state_name(index, feature_name, shard):
    """A safe relative file name for one shard of a feature's full token counts."""
    return f"{STATE}/tokens/{_slug(index, feature_name)}/shard-{shard:03d}.jsonl"


def _write_file(output_dir, name, data):
    """Writes one bundle member through Beam's FileSystems; returns its manifest entry.
    Raises BundleError when it cannot be written."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    path = _join(output_dir, name)
    try:
        with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            f.write(data)
    except OSError as e:  # Beam's BeamIOError is one too
        raise BundleError(f"cannot write {path} ({e}); choose a bundle directory you can write") from None
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def _entry_of(path):
    """The manifest entry of a file written by someone else (dead letters), read in chunks."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    digest, size = hashlib.sha256(), 0
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return {"sha256": digest.hexdigest(), "bytes": size}


def write_token_state(output_dir, index, feature_name, shard, table):
    """Writes one shard of a feature's full token counts (the mergeable state of a
    vocabulary), sorted by token so equal counts give equal bytes.

    Returns (feature name, file name, manifest entry): the feature travels with its file,
    so nothing has to recover it from the file name."""
    table = table.sort_by("token")
    name = token_state_name(index, feature_name, shard)
    columns = [table[c].to_pylist() for c in table.column_names]
    return feature_name, name, _write_file(output_dir, name, _vocabulary_bytes(columns))


def read_token_state(data):
    """A token-count table from the bytes of a token state file."""
    import pyarrow as pa

    rows = [json.loads(line) for line in data.splitlines()]
    names = ["token", "count", "document_count"][: len(rows[0]) if rows else 2]
    return pa.table({n: [row[i] for row in rows] for i, n in enumerate(names)})


def _json_bytes(obj):
    return (json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


def _vocabulary_bytes(columns):
    lines = (json.dumps(list(row), ensure_ascii=False) for row in zip(*columns))
    return "".join(line + "\n" for line in lines).encode()


# --- writing (runs on a Beam worker; Beam's FileSystems reach local, gs://, s3://) --------


def write_bundle(statistics, output_dir, input_description=None, dead_letters=(), token_tables=None):
    """Writes a statistics document (AnalyzeFeatures' output) as a bundle in output_dir.

    An existing bundle there is first invalidated (its manifest deleted) and the manifest
    is written last, so a crash mid-way leaves no valid bundle rather than a mix of old and
    new files. Files of an earlier bundle not rewritten stay, unread: run_analysis and
    merge_bundles write into a staging directory instead (kdp_beam.staging).
    `dead_letters`: paths of the files holding the records the run left out, listed with
    their checksums. The mergeable state goes under state/: ``statistics["state"]``
    (analyzers), ``statistics["state_files"]`` ((feature, file name, entry) of the token
    counts workers wrote) or `token_tables` ({feature: full token-count table}, written
    here). Returns the manifest. Raises BundleError when the directory cannot be written.
    """
    from apache_beam.io.filesystems import FileSystems

    def write(name, data):
        files[name] = _write_file(output_dir, name, data)

    manifest_path = _join(output_dir, MANIFEST)
    if FileSystems.exists(manifest_path):
        FileSystems.delete([manifest_path])
    files = {}
    features = {}
    for index, (name, stats) in enumerate(statistics["features"].items()):
        stats = dict(stats)
        if "vocabulary" in stats:
            file_name = vocabulary_file_name(index, name)
            columns = [stats.pop(key) for key in VOCABULARY_COLUMNS if key in stats]
            write(file_name, _vocabulary_bytes(columns))
            stats["vocabulary_file"] = file_name
        features[name] = stats
    names = list(statistics["features"])
    state_files = list(statistics.get("state_files", ()))
    for name, table in (token_tables or {}).items():
        state_files.append(write_token_state(output_dir, names.index(name), name, 0, table))
    state = None
    if statistics.get("state") is not None:
        write(ANALYZER_STATE, _json_bytes(statistics["state"]))
        tokens = {}
        for feature, file_name, entry in state_files:
            files[file_name] = entry
            tokens.setdefault(feature, []).append(file_name)
        state = {
            "analyzers": ANALYZER_STATE,
            "tokens": {name: sorted(tokens[name]) for name in names if name in tokens},
        }
    bad = statistics.get("bad_records", {"count": 0, "by_reason": {}})
    bad = {**bad, "files": sorted(_relative(path, output_dir) for path in dead_letters)}
    for path in dead_letters:
        files[_relative(path, output_dir)] = _entry_of(path)
    write(
        STATISTICS,
        _json_bytes(
            {"row_count": statistics["row_count"], "bad_records": bad, "features": features}
        ),
    )
    manifest = {
        "format": FORMAT_NAME,
        "format_version": BUNDLE_FORMAT_VERSION,
        "kdp_beam_version": __version__,
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "row_count": statistics["row_count"],
        "bad_record_count": bad["count"],
        "input": input_description or {},
        "spec": statistics["spec"],
        "state": state,
        "files": files,
    }
    _write_file(output_dir, MANIFEST + ".tmp", _json_bytes(manifest))
    FileSystems.rename([manifest_path + ".tmp"], [manifest_path])
    return manifest


def _relative(path, directory):
    return posixpath.relpath(path.replace(os.sep, "/"), directory.replace(os.sep, "/"))


def WriteArtifacts(output_dir, input_description=None, dead_letters=()):  # noqa: N802
    """PTransform: writes AnalyzeFeatures' single output element as a bundle.

    `dead_letters`: the written dead-letter files, usually a side input, so the manifest is
    written only once they are."""
    import apache_beam as beam

    return "WriteArtifacts" >> beam.Map(
        write_bundle,
        output_dir=output_dir,
        input_description=input_description,
        dead_letters=dead_letters,
    )


# --- loading (training code: no Beam pipeline, no pickle) ---------------------------------


class Bundle:
    """A loaded, verified bundle.

    Attributes:
        path: where it was loaded from.
        manifest: the manifest dict.
        spec: the FeatureSpec it was analysed with.
        row_count: rows analysed.
        features: {name: statistics}, categorical ones with "vocabulary" and
            "vocabulary_counts" lists read from their files.
        bad_records: {"count", "by_reason", "files"}: records a skip-mode run left out,
            and the dead-letter files (relative to the bundle) that hold them.
    """

    def __init__(self, path, manifest, spec, row_count, features, bad_records=None):
        self.path = path
        self.manifest = manifest
        self.spec = spec
        self.row_count = row_count
        self.features = features
        self.bad_records = bad_records or {"count": 0, "by_reason": {}, "files": []}
        self.state = None  # load_bundle(with_state=True) fills it

    def __repr__(self):
        return f"Bundle({self.path!r}, {self.row_count} rows, {len(self.features)} features)"


def _read_bytes(path):
    if _SCHEME.match(path):
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.open(path) as f:
            return f.read()
    with open(path, "rb") as f:
        return f.read()


def _parse_json(data, path):
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise BundleError(f"{path}: not valid JSON ({e}); the bundle is damaged") from None


def _check_relative(name, bundle_path):
    parts = name.split("/")
    if not name or name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts):
        raise BundleError(f"{bundle_path}: manifest names an unsafe file path {name!r}")


def load_bundle(path, with_state=False):
    """Reads and verifies a bundle; raises BundleError naming the file that is wrong.

    `with_state`: also read and verify the mergeable state (``bundle.state``, for
    kdp-beam merge); left alone otherwise, as a model needs only the statistics.

    Checks: the manifest exists and is a kdp_beam manifest of a readable format version;
    every listed file it reads exists with the recorded size and sha256; the spec is valid;
    the statistics have the structure and values the writer gives each feature type
    (kdp_beam.statistics_checks), so a consistently edited bundle fails here, with the file,
    feature and key, not later inside Keras. Never runs code from the bundle.
    """
    manifest_path = _join(path, MANIFEST)
    try:
        manifest_bytes = _read_bytes(manifest_path)
    except (FileNotFoundError, OSError, IOError) as e:
        raise BundleError(
            f"{manifest_path} cannot be read ({e}): {path} is not a kdp_beam bundle, "
            "or the run writing it did not finish"
        ) from None
    manifest = _parse_json(manifest_bytes, manifest_path)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise BundleError(f"{manifest_path} is not a kdp_beam bundle manifest")
    version = manifest.get("format_version")
    readable = isinstance(version, int) and not isinstance(version, bool)
    if not readable or not 1 <= version <= BUNDLE_FORMAT_VERSION:
        raise BundleError(
            f"{path} has bundle format version {version!r}, written by kdp_beam "
            f"{manifest.get('kdp_beam_version')}; this kdp_beam {__version__} reads format "
            f"versions up to {BUNDLE_FORMAT_VERSION}. Upgrade kdp_beam to at least "
            f"{manifest.get('kdp_beam_version')}."
        )
    contents = _verified_files(path, manifest, with_state)
    try:
        spec = FeatureSpec.from_json(manifest.get("spec"))
    except (SpecError, TypeError, AttributeError, ValueError) as e:
        raise BundleError(f"{manifest_path}: the declarations are not valid ({e})") from None
    statistics_path = _join(path, STATISTICS)
    statistics = _parse_json(contents[STATISTICS], statistics_path)
    check_document(statistics, spec, statistics_path)
    row_count = statistics["row_count"]
    if manifest.get("row_count") != row_count:
        raise BundleError(
            f"{manifest_path}: row_count {manifest.get('row_count')!r} differs from "
            f"{statistics_path}'s {row_count}; the bundle was edited or is damaged"
        )
    features = {
        name: _with_vocabulary(path, name, dict(stats), spec.features[name], contents)
        for name, stats in statistics["features"].items()
    }
    check_features(spec, features, row_count, version, lambda name: _join(path, name))
    bundle = Bundle(path, manifest, spec, row_count, features, statistics.get("bad_records"))
    if with_state:
        bundle.state = _state(bundle, contents)
    return bundle


def _state(bundle, contents):
    """{"analyzers": state dict, "tokens": {feature: [token tables]}} of a loaded bundle.

    Every exact vocabulary's token state must hold as many distinct tokens as its
    statistics count (kdp_beam 0.2.0 filed the state of features past the 1,000th under
    another feature: such a bundle is refused, not merged into wrong vocabularies)."""
    path, state = bundle.path, bundle.manifest.get("state")
    analyzers = state.get("analyzers") if isinstance(state, dict) else None
    if not isinstance(analyzers, str) or analyzers not in contents:
        raise BundleError(
            f"{path} keeps no mergeable state (written without it, or by kdp_beam < 0.2); "
            "re-run the analysis to merge it"
        )
    try:
        tokens = {
            name: [read_token_state(contents[f]) for f in file_names]
            for name, file_names in state.get("tokens", {}).items()
        }
        analyzer_state = _parse_json(contents[analyzers], _join(path, analyzers))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise BundleError(f"{path}: the mergeable state is damaged ({type(e).__name__}: {e})") from None
    unknown = sorted(tokens.keys() - bundle.features.keys())
    if unknown:
        raise BundleError(f"{_join(path, MANIFEST)}: token state of {unknown[0]!r}, not a feature")
    for name, feature in bundle.spec.features.items():
        if feature.type not in VOCABULARY_TYPES or feature.options.get("counting") == "approximate":
            continue
        distinct = sum(table.num_rows for table in tokens.get(name, []))
        expected = bundle.features[name]["distinct_count"]
        if distinct != expected:
            raise BundleError(
                f"{path}: feature {name!r}: its token state holds {distinct} distinct tokens, but "
                f"{STATISTICS} counts {expected}: the state is filed under the wrong feature "
                "(bundles of kdp_beam 0.2.0 with 1,000 features or more) or was edited. "
                "Re-run the analysis of this bundle."
            )
    return {"analyzers": analyzer_state, "tokens": tokens}


def _verified_files(path, manifest, with_state=False):
    """{name: bytes} of every file the manifest lists (state/ only `with_state`, dead
    letters never), each checked against its sha256."""
    files = manifest.get("files")
    if not isinstance(files, dict) or STATISTICS not in files:
        raise BundleError(f"{_join(path, MANIFEST)} does not list {STATISTICS}")
    contents = {}
    for name, expected in files.items():
        _check_relative(name, path)
        if name.startswith(DEAD_LETTERS + "/") or (name.startswith(STATE + "/") and not with_state):
            continue  # not needed to build a model (dead letters are people's to read)
        file_path = _join(path, name)
        if not isinstance(expected, dict):
            raise BundleError(f"{_join(path, MANIFEST)}: no size and sha256 for {name!r}")
        try:
            data = _read_bytes(file_path)
        except (FileNotFoundError, OSError, IOError) as e:
            raise BundleError(f"{file_path}: listed in the manifest but cannot be read ({e})") from None
        if len(data) != expected.get("bytes") or hashlib.sha256(data).hexdigest() != expected.get(
            "sha256"
        ):
            raise BundleError(
                f"{file_path}: size or sha256 differs from the manifest; the file was truncated, "
                "edited or partially written. Re-run the analysis."
            )
        contents[name] = data
    return contents


def _with_vocabulary(path, name, stats, declaration, contents):
    """A feature's statistics with its vocabulary file read in (vocabulary and text
    features), each line checked to be [token, count] ([token, count, documents] for text);
    the values are checked by check_features."""
    file_name = stats.get("vocabulary_file")
    where = f"{_join(path, STATISTICS)}: feature {name!r}: vocabulary_file"
    if declaration.type not in VOCABULARY_TYPES:
        if file_name is not None:
            raise BundleError(f"{where} is given, but a {declaration.type} feature has no vocabulary")
        return stats
    if not (isinstance(file_name, str) and file_name.startswith("vocabularies/") and file_name in contents):
        raise BundleError(f"{where} {file_name!r:.100} is not a vocabulary file the manifest lists")
    width = 3 if declaration.type == "text" else 2
    vocabulary_path = _join(path, file_name)
    rows = []
    for number, line in enumerate(contents[file_name].splitlines(), start=1):
        where = f"{vocabulary_path}: line {number}: feature {name!r}: vocabulary"
        row = _parse_json(line, where)
        if not isinstance(row, list) or len(row) != width:
            shape = "[token, count, document_count]" if width == 3 else "[token, count]"
            raise BundleError(f"{where} line {row!r:.80} is not {shape}; the bundle is damaged")
        rows.append(row)
    for key, column in zip(VOCABULARY_COLUMNS, list(zip(*rows)) or [()] * width):
        stats[key] = list(column)
    return stats
