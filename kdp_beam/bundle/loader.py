"""Loads bundles: load_bundle reads and verifies one (checksums, declarations, the values
of every feature type's statistics), Bundle holds it; read_token_state reads the mergeable
state kdp-beam merge needs.

Loading reads plain JSON only (never pickle), never runs code named in a bundle, and needs
no Beam pipeline (Beam's FileSystems only for remote paths): training code loads bundles.
"""

import hashlib
import json

from kdp_beam.bundle.layout import DEAD_LETTERS, FORMAT_NAME, MANIFEST, STATE, STATISTICS, is_remote, join
from kdp_beam.errors import BundleError, SpecError
from kdp_beam.spec import FeatureSpec
from kdp_beam.bundle.checks import check_document, check_features
from kdp_beam.version import BUNDLE_FORMAT_VERSION, __version__


class NoStateError(BundleError):
    """A bundle keeps no mergeable state (written without it, or by kdp_beam < 0.2)."""


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
        label: the label's statistics (statistics.json's "label": its type, classes,
            prior...; docs/bundle-format.md), None when the spec has no label.
    """

    def __init__(self, path, manifest, spec, row_count, features, bad_records=None, label=None):
        self.path = path
        self.manifest = manifest
        self.spec = spec
        self.row_count = row_count
        self.features = features
        self.bad_records = bad_records or {"count": 0, "by_reason": {}, "files": []}
        self.label = label
        self.state = None  # load_bundle(with_state=True) fills it

    def __repr__(self):
        return f"Bundle({self.path!r}, {self.row_count} rows, {len(self.features)} features)"


def read_bytes(path):
    """The bytes of a file at a local path or a URL (gs://, s3://: Beam's FileSystems)."""
    if is_remote(path):
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
    (kdp_beam.bundle.checks), so a consistently edited bundle fails here, with the file,
    feature and key, not later inside Keras. Never runs code from the bundle.
    """
    manifest_path = join(path, MANIFEST)
    try:
        manifest_bytes = read_bytes(manifest_path)
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
        declared = manifest.get("spec")
        if isinstance(declared, dict) and "profile" not in declared:
            # Written before "profile" was a key: analysed without the sketch (now the default).
            declared = {**declared, "profile": False}
        spec = FeatureSpec.from_json(declared)
    except (SpecError, TypeError, AttributeError, ValueError) as e:
        raise BundleError(f"{manifest_path}: the declarations are not valid ({e})") from None
    statistics_path = join(path, STATISTICS)
    statistics = _parse_json(contents[STATISTICS], statistics_path)
    check_document(statistics, spec, statistics_path)
    for name in _old_plugin_features(manifest):  # their statistics say "type": "custom"
        if statistics["features"][name].get("type") == "custom":
            statistics["features"][name]["type"] = spec.features[name].type
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
    check_features(spec, features, row_count, version, lambda name: join(path, name), statistics.get("label"))
    bundle = Bundle(path, manifest, spec, row_count, features, statistics.get("bad_records"), statistics.get("label"))
    if with_state:
        bundle.state = _state(bundle, contents)
    return bundle


def _old_plugin_features(manifest):
    """The features a kdp_beam 0.2 bundle declares as plug-ins, {"type": "custom",
    "statistic": NAME}: read as the type NAME (kdp_beam.spec.Feature)."""
    features = manifest["spec"].get("features", {})
    return [n for n, d in features.items() if isinstance(d, dict) and d.get("type") == "custom"]


def _renamed_plugin_state(bundle, analyzer_state):
    """A 0.2 plug-in's state was kept under "custom": it is its type's own analyzer's."""
    from kdp_beam.analyzers.dataset import feature_analyzers

    for name in _old_plugin_features(bundle.manifest):
        saved = analyzer_state["features"][name]
        new = [key for key in feature_analyzers(bundle.spec.features[name]) if key not in saved]
        if "custom" in saved and len(new) == 1:
            saved[new[0]] = saved.pop("custom")


def _state(bundle, contents):
    """{"analyzers": state dict, "tokens": {feature: [token tables]}} of a loaded bundle.

    Every exact vocabulary's token state must hold as many distinct tokens as its
    statistics count (kdp_beam 0.2.0 filed the state of features past the 1,000th under
    another feature: such a bundle is refused, not merged into wrong vocabularies)."""
    path, state = bundle.path, bundle.manifest.get("state")
    analyzers = state.get("analyzers") if isinstance(state, dict) else None
    if not isinstance(analyzers, str) or analyzers not in contents:
        raise NoStateError(
            f"{path} keeps no mergeable state (written without it, or by kdp_beam < 0.2); "
            "re-run the analysis to merge it"
        )
    import pyarrow as pa

    from kdp_beam.analyzers.dataset import token_analyzers

    counting = token_analyzers(bundle.spec)  # each keeps a table of its state_schema
    try:
        files = dict(state.get("tokens", {}))
        unknown = sorted(files.keys() - counting.keys())
        tokens = {
            name: [read_token_state(contents[f], counting[name].state_schema) for f in file_names]
            for name, file_names in files.items() if name in counting
        }
        analyzer_state = _parse_json(contents[analyzers], join(path, analyzers))
        _renamed_plugin_state(bundle, analyzer_state)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, pa.ArrowException) as e:
        raise BundleError(f"{path}: the mergeable state is damaged ({type(e).__name__}: {e})") from None
    if unknown:
        raise BundleError(f"{join(path, MANIFEST)}: token state of {unknown[0]!r}, not a feature counting tokens")
    for name, analyzer in counting.items():
        distinct = sum(analyzer.table_totals(table)[0] for table in tokens.get(name, []))
        expected = bundle.features[name]["distinct_count"]
        if distinct != expected:
            raise BundleError(
                f"{path}: feature {name!r}: its token state holds {distinct} distinct tokens, but "
                f"{STATISTICS} counts {expected}: the state is filed under the wrong feature "
                "(bundles of kdp_beam 0.2.0 with 1,000 features or more) or was edited. "
                "Re-run the analysis of this bundle."
            )
    return {"analyzers": analyzer_state, "tokens": tokens}


def read_token_state(data, schema):
    """A token-count table of `schema` (its analyzer's state_schema) from the bytes of a
    token state file: one JSON array of the columns' values per line."""
    import pyarrow as pa

    rows = [json.loads(line) for line in data.splitlines()]
    if any(not isinstance(row, list) or len(row) != len(schema) for row in rows):
        raise ValueError(f"a line is not a list of the {len(schema)} columns {schema.names}")
    return pa.table({n: [row[i] for row in rows] for i, n in enumerate(schema.names)}, schema=schema)


def _verified_files(path, manifest, with_state=False):
    """{name: bytes} of every file the manifest lists (state/ only `with_state`, dead
    letters never), each checked against its sha256."""
    files = manifest.get("files")
    if not isinstance(files, dict) or STATISTICS not in files:
        raise BundleError(f"{join(path, MANIFEST)} does not list {STATISTICS}")
    contents = {}
    for name, expected in files.items():
        _check_relative(name, path)
        if name.startswith(DEAD_LETTERS + "/") or (name.startswith(STATE + "/") and not with_state):
            continue  # not needed to build a model (dead letters are people's to read)
        file_path = join(path, name)
        if not isinstance(expected, dict):
            raise BundleError(f"{join(path, MANIFEST)}: no size and sha256 for {name!r}")
        try:
            data = read_bytes(file_path)
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
    where = f"{join(path, STATISTICS)}: feature {name!r}: vocabulary_file"
    columns = declaration.kind.vocabulary_columns(declaration.options)
    if not columns:
        if file_name is not None:
            raise BundleError(
                f"{where} is given, but a {declaration.type} feature has no vocabulary: its type's "
                "vocabulary_columns() are none. A type whose analyzers give a vocabulary lists "
                "its columns there (docs/feature-types.md); else the bundle was edited"
            )
        return stats
    if not (isinstance(file_name, str) and file_name.startswith("vocabularies/") and file_name in contents):
        raise BundleError(f"{where} {file_name!r:.100} is not a vocabulary file the manifest lists")
    width = len(columns)
    vocabulary_path = join(path, file_name)
    rows = []
    for number, line in enumerate(contents[file_name].splitlines(), start=1):
        where = f"{vocabulary_path}: line {number}: feature {name!r}: vocabulary"
        row = _parse_json(line, where)
        if not isinstance(row, list) or len(row) != width:
            shape = "[token, " + ", ".join(c.removeprefix("vocabulary_").removesuffix("s") for c in columns[1:]) + "]"
            raise BundleError(f"{where} line {row!r:.80} is not {shape}; the bundle is damaged")
        rows.append(row)
    for key, column in zip(columns, list(zip(*rows)) or [()] * width):
        stats[key] = list(column)
    return stats
