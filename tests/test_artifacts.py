"""Bundles: exact round trips, and clear errors for every kind of damage."""

import json
import os
import statistics

import pytest

from kdp_beam.version import BUNDLE_FORMAT_VERSION
from kdp_beam.bundle.loader import load_bundle
from kdp_beam.bundle.writer import write_bundle
from kdp_beam.errors import BundleError
from kdp_beam.spec import FeatureSpec

ODD_TOKENS = ["", "new\nline", "tab\there", "ünïcødé ✓", '"quoted", comma', "x" * 5000, "\r", "[UNK] "]


def moments(values):
    return {
        "nan_count": 0,
        "inf_count": 0,
        "value_count": len(values),
        "mean": statistics.fmean(values),
        "variance": statistics.pvariance(values),
        "min": float(min(values)),
        "max": float(max(values)),
    }


def statistics_document(features):
    """Consistent statistics (the loader checks them) with odd tokens and huge integers
    (written by hand: no distribution sketch, so the spec says so)."""
    spec = FeatureSpec(features, profile=False)
    rows = sum(range(1, len(ODD_TOKENS) + 1))  # token i is counted len - i times
    integers = [2**62] * 3 + [-(2**40)] * 2 + [0]
    stats = {}
    for name, feature in spec.features.items():
        stats[name] = {"type": feature.type, "count": rows, "null_count": 0, "missing_count": 0}
        if feature.type == "string_categorical":
            stats[name].update(
                vocabulary=ODD_TOKENS,
                vocabulary_counts=list(range(len(ODD_TOKENS), 0, -1)),
                vocabulary_size=len(ODD_TOKENS),
                distinct_count=len(ODD_TOKENS),
            )
        if feature.type == "integer_categorical":
            nulls = rows - len(integers)
            stats[name].update(
                null_count=nulls,
                missing_count=nulls,
                **moments(integers),
                vocabulary=[2**62, -(2**40), 0],
                vocabulary_counts=[3, 2, 1],
                vocabulary_size=3,
                distinct_count=3,
            )
        if feature.type == "float_normalized":
            stats[name].update(moments([float(i) for i in range(rows)]))
    return {"spec": spec.to_json(), "row_count": rows, "features": stats}


@pytest.fixture
def bundle_dir(tmp_path):
    document = statistics_document(
        {"city": "string_categorical", "id": "integer_categorical", "x": "float_normalized"}
    )
    write_bundle(document, str(tmp_path / "b"), {"pattern": "data/*.csv", "format": "csv"})
    return tmp_path / "b"


def test_every_token_and_integer_round_trips_exactly(bundle_dir):
    bundle = load_bundle(str(bundle_dir))
    assert bundle.features["city"]["vocabulary"] == ODD_TOKENS
    assert bundle.features["city"]["vocabulary_counts"] == list(range(len(ODD_TOKENS), 0, -1))
    assert bundle.features["id"]["vocabulary"] == [2**62, -(2**40), 0]
    assert bundle.manifest["input"] == {"pattern": "data/*.csv", "format": "csv"}
    assert bundle.manifest["format_version"] == 2  # no label: what kdp_beam 0.3 reads too
    assert bundle.spec.features["city"].type == "string_categorical"


def test_files_are_human_readable_json(bundle_dir):
    lines = (bundle_dir / "vocabularies" / "000-city.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[3]) == ["ünïcødé ✓", 5]
    assert "ünïcødé" in lines[3]  # not \\u-escaped
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    assert set(manifest["files"]) == {"statistics.json", "vocabularies/000-city.jsonl", "vocabularies/001-id.jsonl"}


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda d: os.remove(d / "manifest.json"), ["manifest.json", "did not finish"]),
        (lambda d: (d / "statistics.json").write_text("{}"), ["statistics.json", "sha256"]),
        (
            lambda d: (d / "vocabularies" / "000-city.jsonl").write_bytes(
                (d / "vocabularies" / "000-city.jsonl").read_bytes()[:20]
            ),
            ["000-city.jsonl", "truncated"],
        ),
        (lambda d: os.remove(d / "vocabularies" / "001-id.jsonl"), ["001-id.jsonl", "cannot be read"]),
        (lambda d: (d / "manifest.json").write_text("{not json"), ["manifest.json", "not valid JSON"]),
    ],
    ids=["no_manifest", "edited", "truncated", "missing_file", "bad_manifest"],
)
def test_damaged_bundles_fail_naming_the_file(bundle_dir, damage, words):
    damage(bundle_dir)
    with pytest.raises(BundleError) as error:
        load_bundle(str(bundle_dir))
    for word in words:
        assert word in str(error.value)


def test_newer_format_version_says_which_kdp_beam_reads_it(bundle_dir):
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    manifest.update(format_version=BUNDLE_FORMAT_VERSION + 1, kdp_beam_version="9.0.0")
    (bundle_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=f"format version {BUNDLE_FORMAT_VERSION + 1}.*Upgrade kdp_beam to at least 9.0.0"):
        load_bundle(str(bundle_dir))


def test_manifest_cannot_point_outside_the_bundle(bundle_dir):
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    manifest["files"]["../../etc/passwd"] = {"sha256": "0", "bytes": 0}
    (bundle_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="unsafe file path"):
        load_bundle(str(bundle_dir))


@pytest.mark.parametrize("name", ["../../escape", "a/b", "/abs", "with space", "名前", "n" * 1000, ".."])
def test_feature_names_never_become_paths(name, tmp_path):
    write_bundle(statistics_document({name: "string_categorical"}), str(tmp_path / "b"))
    written = [os.path.relpath(os.path.join(root, f), tmp_path / "b") for root, _, files in os.walk(tmp_path / "b") for f in files]
    assert all(not p.startswith("..") and len(p) < 100 for p in written)
    assert load_bundle(str(tmp_path / "b")).features[name]["vocabulary"] == ODD_TOKENS


def test_a_writer_failing_mid_way_leaves_no_valid_bundle(bundle_dir):
    assert load_bundle(str(bundle_dir))
    broken = statistics_document({"other": "string_categorical"})
    broken["features"]["other"]["vocabulary"] = ["fine", object()]  # fails while writing
    with pytest.raises(TypeError):
        write_bundle(broken, str(bundle_dir))
    with pytest.raises(BundleError, match="did not finish"):
        load_bundle(str(bundle_dir))
    write_bundle(statistics_document({"other": "string_categorical"}), str(bundle_dir))
    assert list(load_bundle(str(bundle_dir)).features) == ["other"]
