"""kdp-beam merge: bundles of disjoint data -> the bundle of their union, without the data.

Every bundle keeps its mergeable state (state/): the analyzers' accumulators as JSON
(counts, pivoted moments, date ranges, quantile and Misra-Gries sketches in tfx_bsl's own
serialisation) and every feature's full token counts as JSON lines. Merging restores the
accumulators, merges them with the same code as the pipeline's combine, and finalizes:
the statistics are those of one run over all the data (counts and vocabularies identical,
floats to rounding, quantiles within the sketch's error). Used for daily partitions and
backfills: analyse each new day once, merge into the history.
"""

import json
import os

from kdp_beam.analyzers.dataset import DatasetAnalyzer, add_statistics, token_analyzers, with_label
from kdp_beam.analyzers.labels import label_contexts
from kdp_beam.analyzers.vocabulary import TokenCounts
from kdp_beam.bundle.layout import STATISTICS
from kdp_beam.bundle.loader import load_bundle
from kdp_beam.bundle.writer import write_bundle
from kdp_beam.errors import BundleError, InputDataError
from kdp_beam.bundle.staging import is_local, staged_output


def merge_bundles(paths, output_dir):
    """Writes the merge of the bundles at `paths` to `output_dir`; returns the manifest.

    The merged bundle replaces `output_dir` whole, and only once it is written
    (kdp_beam.bundle.staging: `output_dir` may be one of `paths`).
    Raises BundleError when a bundle keeps no state or was analysed with other
    declarations than the first, when two inputs are one bundle (the same directory, or a
    copy: its counts would count twice), or when `output_dir` is a file, a directory
    holding anything but a bundle, or cannot be written.
    """
    if not paths:
        raise BundleError("merge needs at least one bundle")
    _refuse_one_bundle_twice(paths, _resolved, "are the same directory")
    with staged_output(output_dir) as staging_dir:  # refuses a bad output before any work
        bundles = [load_bundle(path, with_state=True) for path in paths]
        _refuse_one_bundle_twice(
            bundles, _identity, "are copies of one bundle (the same statistics, input and creation time)"
        )
        statistics, token_tables = _merged_statistics(bundles)
        description = {"merged": [bundle.path for bundle in bundles]}
        return write_bundle(statistics, staging_dir, description, token_tables=token_tables)


def _resolved(path):
    return os.path.realpath(path) if is_local(path) else path.rstrip("/")


def _identity(bundle):
    """What tells one analysis from another: copies of a bundle share all three."""
    manifest = bundle.manifest
    return (
        manifest["files"][STATISTICS]["sha256"],
        json.dumps(manifest.get("input"), sort_keys=True),
        manifest.get("created_at"),
    )


def _refuse_one_bundle_twice(items, key, found):
    """Merge adds counts: a bundle given twice would count its rows twice, silently."""
    seen = {}
    for item in items:
        first = seen.get(key(item))
        if first is not None:
            names = [getattr(x, "path", x) for x in (first, item)]
            raise BundleError(
                f"{names[0]} and {names[1]} {found}; merge takes bundles of disjoint data "
                "and would count these rows twice: give each bundle once"
            )
        seen[key(item)] = item


def _first_difference(first, other, where=""):
    """Where two declarations (JSON) first differ, for people: 'features.city.max_tokens:
    100 there, 50 here'."""
    if isinstance(first, dict) and isinstance(other, dict):
        for key in [*first, *(k for k in other if k not in first)]:
            if first.get(key) != other.get(key):
                return _first_difference(first.get(key), other.get(key), f"{where}.{key}" if where else key)
    return f"{where or 'the declarations'}: {first!r:.80} there, {other!r:.80} here"


def _merged_statistics(bundles):
    """(statistics document, {feature: full token-count table}) of the union of bundles."""
    spec = bundles[0].spec
    for bundle in bundles[1:]:
        if bundle.spec != spec:
            raise BundleError(
                f"{bundle.path} was analysed with other declarations than {bundles[0].path} "
                f"({_first_difference(spec.to_json(), bundle.spec.to_json())}); only bundles of the "
                "same features JSON can be merged"
            )
    analyzer = DatasetAnalyzer(spec, count_tokens=False)
    accumulators = []
    for bundle in bundles:
        try:
            accumulators.append(analyzer.from_state(bundle.state["analyzers"]))
        except (KeyError, TypeError, ValueError) as e:
            raise BundleError(f"{bundle.path}: its mergeable state cannot be used ({e})") from None
    accumulator = analyzer.merge_accumulators(accumulators)
    try:
        statistics = analyzer.finalize(accumulator)
        contexts = label_contexts(spec, statistics) if spec.label is not None else {}
        token_tables = {}
        for name, token_analyzer in token_analyzers(spec).items():
            counts = TokenCounts()
            for bundle in bundles:
                for table in bundle.state["tokens"].get(name, []):
                    if table.num_rows:
                        counts.add(table)
            table = counts.fold()
            label = with_label(token_analyzer, contexts, name)
            if table is None:
                found = token_analyzer.finalize_table(None, 0, 0, *label)
            else:
                found = token_analyzer.finalize_table(table, *token_analyzer.table_totals(table), *label)
                token_tables[name] = table
            add_statistics(statistics["features"][name], found, name, type(token_analyzer).__name__)
    except InputDataError as e:  # the union's label: a binary label of 3 classes, ...
        raise BundleError(f"{', '.join(b.path for b in bundles)} cannot be merged: {e}") from None
    return {"spec": spec.to_json(), **statistics}, token_tables
