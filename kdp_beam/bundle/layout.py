"""The bundle's layout: its file names, and the paths of its members, for the writer and
the loader alike.

Layout (docs/bundle-format.md is the contract)::

    manifest.json                 format version, kdp_beam version, spec, row count, input,
                                  and the sha256 and size of every other file
    statistics.json               per-feature statistics
    vocabularies/NNN-<name>.jsonl one ["token", count] JSON array per line, by rank
                                  (["token", count, document_count] for text features;
                                  label-aware features add their label statistics)
    state/analyzers.json          the analyzers' mergeable state (kdp-beam merge)
    state/tokens/NNN-<name>/shard-SSS.jsonl
                                  one shard's full token counts, by token (and by class
                                  and fold for label-aware features)
    bad_records/*.jsonl           the records a skip-mode run left out (dead letters)

The manifest is written last, through a rename, so a bundle whose writing was interrupted
has no manifest and never loads as valid.
"""

import os
import posixpath
import re

MANIFEST = "manifest.json"
STATISTICS = "statistics.json"
DEAD_LETTERS = "bad_records"  # directory of the records a skip-mode run left out
STATE = "state"  # mergeable state (kdp-beam merge): analyzers.json and token counts
ANALYZER_STATE = f"{STATE}/analyzers.json"
FORMAT_NAME = "kdp_beam artifact bundle"
# The columns a vocabulary file may have, in order (each type says which it has:
# FeatureType.vocabulary_columns).
VOCABULARY_COLUMNS = (
    "vocabulary",
    "vocabulary_counts",
    "vocabulary_document_counts",
    "vocabulary_label_counts",
    "vocabulary_label_sums",
    "vocabulary_scores",
    "vocabulary_fold_label_counts",
    "vocabulary_fold_label_sums",
)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_remote(path):
    """Whether a path is a URL (gs://, s3://, ...), read and written through Beam's
    FileSystems."""
    return bool(_SCHEME.match(path))


def join(directory, name):
    """A bundle member's path: "/"-separated names inside the bundle, native on disk."""
    if is_remote(directory):
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
