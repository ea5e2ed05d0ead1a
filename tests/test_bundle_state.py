"""Token state travels with its feature's name: merges are right at any number of features."""

import json
import shutil
from collections import Counter

import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from kdp_beam.bundle.loader import load_bundle
from kdp_beam.errors import BundleError
from kdp_beam.job import run_analysis
from kdp_beam.tools.merge import merge_bundles
from kdp_beam.spec import FeatureSpec

NAMES = [f"f{i}" for i in range(1001)]  # positions 000 to 1000: past three digits
SPEC = FeatureSpec({name: "string_categorical" for name in NAMES})


def part_table(part):
    """Tokens that say whose they are ("<feature index>-<value>"), unevenly counted."""
    return pa.table({name: [f"{i}-{(row * row + part + i) % 4}" for row in range(7)] for i, name in enumerate(NAMES)})


def keras_vocabulary(counts):
    return sorted(counts, key=lambda token: (counts[token], token.encode()), reverse=True)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    directory = tmp_path_factory.mktemp("wide")
    paths = []
    for part in (0, 1):
        pa_csv.write_csv(part_table(part), str(directory / f"part-{part}.csv"))
        paths.append(str(directory / f"b{part}"))
        run_analysis(SPEC, str(directory / f"part-{part}.csv"), paths[-1])
    return directory, paths


def test_merging_bundles_of_1001_features_gives_every_feature_its_own_vocabulary(bundles):
    directory, paths = bundles
    merge_bundles(paths, str(directory / "merged"))
    merged = load_bundle(str(directory / "merged"), with_state=True)
    tables = [part_table(0), part_table(1)]
    for i, name in enumerate(NAMES):
        counts = Counter(token for table in tables for token in table[name].to_pylist())
        assert merged.features[name]["vocabulary"] == keras_vocabulary(counts), name
        assert merged.features[name]["vocabulary_counts"] == [counts[t] for t in keras_vocabulary(counts)]
        state = [t for table in merged.state["tokens"][name] for t in table["token"].to_pylist()]
        assert sorted(state) == sorted(counts), name  # its state is its own, whole
    assert list(merged.manifest["state"]["tokens"]) == NAMES


def test_a_bundle_with_state_filed_under_the_wrong_feature_is_refused_by_merge(bundles, tmp_path):
    """kdp_beam 0.2.0 recovered the feature from the file name's first three digits: the
    state of feature 1000 went to feature 100. Such a bundle still loads for a model (its
    statistics are right); merging it is refused instead of giving wrong vocabularies."""
    directory, paths = bundles
    old = tmp_path / "old"
    manifest = json.loads((directory / "b0" / "manifest.json").read_text())
    tokens = {}
    for files in manifest["state"]["tokens"].values():
        for name in files:  # state/tokens/NNN-slug/shard-SSS.jsonl, as 0.2.0 filed it
            tokens.setdefault(NAMES[int(name.split("/")[2][:3])], []).append(name)
    manifest["state"]["tokens"] = tokens
    shutil.copytree(directory / "b0", old)
    (old / "manifest.json").write_text(json.dumps(manifest))
    assert load_bundle(str(old)).features["f1000"]["vocabulary"]  # models keep loading it
    with pytest.raises(BundleError, match=r"feature 'f100': its token state holds 4 distinct tokens, but statistics.json counts 2"):
        merge_bundles([str(old), paths[1]], str(tmp_path / "merged"))
    assert not (tmp_path / "merged").exists()
