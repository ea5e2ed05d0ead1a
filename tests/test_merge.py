"""kdp-beam merge: per-partition bundles merged equal the bundle of one run over all."""

import math

import numpy as np
import pyarrow as pa
import pytest

from kdp_beam.bundle.loader import load_bundle
from kdp_beam.bundle.writer import write_bundle
from kdp_beam.cli import main
from kdp_beam.errors import BundleError
from kdp_beam.job import run_analysis
from kdp_beam.spec import FeatureSpec
from tests.conftest import write_shards

SPEC = FeatureSpec(
    {
        "amount": "float_normalized",
        "age": {"type": "float_discretized", "num_bins": 5},
        "store": {"type": "integer_categorical", "max_tokens": 10},
        "city": {"type": "string_categorical", "missing_token": "?"},
        "top": {"type": "string_categorical", "max_tokens": 5, "counting": "approximate"},
        "review": {"type": "text", "max_tokens": 12, "ngrams": 2, "output_mode": "tf_idf"},
        "day": {"type": "date", "components": ["year", "month"]},
        "user": {"type": "string_hashed", "num_bins": 8},
    }
)


def day_table(day, rows=700):
    rng = np.random.default_rng(day)
    words = ["fast", "slow", "good", "bad", "ok", "the"]
    return pa.table(
        {
            "amount": rng.normal(1e6 + day, 5, rows),
            "age": rng.integers(18, 90, rows).astype(float),
            "store": rng.integers(0, 30 + day, rows),
            "city": [None if i % 13 == 0 else c for i, c in enumerate(rng.choice(["Oslo", "Rome", "Lima"], rows))],
            "top": rng.choice([f"t{i}" for i in range(20)], rows),
            "review": [" ".join(rng.choice(words, rng.integers(0, 5))) for _ in range(rows)],
            "day": [f"2024-{day:02d}-{d:02d}" if d < 29 else "never" for d in rng.integers(1, 31, rows)],
            "user": [f"u{i}" for i in rng.integers(0, 100, rows)],
        }
    )


def test_merged_partitions_equal_one_run_over_all(tmp_path):
    days = [1, 2, 3]
    for day in days:
        write_shards(day_table(day), tmp_path / "data" / f"day={day}", 2)
    for day in days:
        run_analysis(SPEC, str(tmp_path / "data" / f"day={day}" / "*.csv"), str(tmp_path / f"b{day}"))
    run_analysis(SPEC, str(tmp_path / "data" / "*" / "*.csv"), str(tmp_path / "all"))
    # Merge two days, then add the third to the merged bundle (as a daily job would).
    assert main(["merge", str(tmp_path / "b1"), str(tmp_path / "b2"), "--output", str(tmp_path / "m12")]) == 0
    assert main(["merge", str(tmp_path / "m12"), str(tmp_path / "b3"), "--output", str(tmp_path / "m")]) == 0
    merged, whole = load_bundle(str(tmp_path / "m")), load_bundle(str(tmp_path / "all"))
    assert merged.row_count == whole.row_count == 2100
    values = np.concatenate([day_table(d)["age"].to_numpy() for d in days])
    for name, stats in whole.features.items():
        for key, value in stats.items():
            got = merged.features[name][key]
            if key == "bin_boundaries":  # both within the sketch's rank error of exact
                ordered = np.sort(values)
                ranks = lambda b: np.searchsorted(ordered, b) / ordered.size  # noqa: E731
                assert np.all(np.abs(ranks(got) - ranks(value)) <= 2 * stats["quantile_epsilon"] + 1e-3)
            elif name == "top" and key in ("vocabulary", "vocabulary_counts"):
                continue  # approximate: checked below
            elif isinstance(value, float):
                assert math.isclose(got, value, rel_tol=1e-12), (name, key)
            elif key != "vocabulary_file":
                assert got == value, (name, key)
    true = {}
    for d in days:
        for t in day_table(d)["top"].to_pylist():
            true[t] = true.get(t, 0) + 1
    bound = merged.features["top"]["vocabulary_count_error_bound"]
    for token, count in zip(merged.features["top"]["vocabulary"], merged.features["top"]["vocabulary_counts"]):
        assert true[token] <= count <= true[token] + bound
    # The merged bundle keeps its state too, and merges again.
    assert load_bundle(str(tmp_path / "m"), with_state=True).state["tokens"]["review"]


def test_merge_refuses_other_declarations_and_stateless_bundles(tmp_path):
    write_shards(day_table(1, rows=50), tmp_path / "d", 1)
    run_analysis(SPEC, str(tmp_path / "d" / "*.csv"), str(tmp_path / "a"))
    other = FeatureSpec({"amount": "float_normalized"})
    run_analysis(other, str(tmp_path / "d" / "*.csv"), str(tmp_path / "b"))
    with pytest.raises(BundleError, match="other declarations"):
        from kdp_beam.tools.merge import merge_bundles

        merge_bundles([str(tmp_path / "a"), str(tmp_path / "b")], str(tmp_path / "m"))
    stats = load_bundle(str(tmp_path / "b"))
    write_bundle(
        {"spec": other.to_json(), "row_count": stats.row_count, "features": stats.features},
        str(tmp_path / "stateless"),
    )
    assert main(["merge", str(tmp_path / "b"), str(tmp_path / "stateless"), "--output", str(tmp_path / "m2")]) == 2


def test_merge_refuses_one_bundle_given_twice(tmp_path, capsys):
    """Merge adds counts: the same bundle twice (by any path, or copied) would double every
    count, so it is refused, naming both, and nothing is written."""
    import shutil

    from kdp_beam.tools.merge import merge_bundles

    write_shards(day_table(1, rows=50), tmp_path / "d", 1)
    a = str(tmp_path / "a")
    run_analysis(SPEC, str(tmp_path / "d" / "*.csv"), a)
    (tmp_path / "link").symlink_to(tmp_path / "a")
    shutil.copytree(a, tmp_path / "copy")
    for other in (a, a + "/", str(tmp_path / "d" / ".." / "a"), str(tmp_path / "link")):
        with pytest.raises(BundleError, match=r"are the same directory; merge takes bundles of disjoint data"):
            merge_bundles([a, other], str(tmp_path / "m"))
    with pytest.raises(BundleError, match=r"copy and .*/a are copies of one bundle"):
        merge_bundles([str(tmp_path / "copy"), a], str(tmp_path / "m"))
    assert main(["merge", a, str(tmp_path / "copy"), "--output", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"kdp-beam: error: {tmp_path / 'a'} and {tmp_path / 'copy'} are copies of one bundle (the same "
        "statistics, input and creation time); merge takes bundles of disjoint data and would count "
        "these rows twice: give each bundle once"
    ]
    assert not (tmp_path / "m").exists()
    # Other data with other statistics still merges: the rows add up.
    write_shards(day_table(2, rows=30), tmp_path / "d2", 1)
    run_analysis(SPEC, str(tmp_path / "d2" / "*.csv"), str(tmp_path / "b"))
    assert merge_bundles([a, str(tmp_path / "b")], str(tmp_path / "m"))["row_count"] == 80


def test_merge_names_where_two_declarations_differ(tmp_path):
    """It said only 'other declarations': with a label, or one option of twenty features,
    the user had to diff two manifests to find which."""
    from kdp_beam.tools.merge import merge_bundles

    days = []
    for day in range(2):  # disjoint data, as merge takes (equal bundles would be refused as copies)
        days.append(tmp_path / f"day{day}.csv")
        days[-1].write_text(f"city,y\nparis,1\noslo,0\nrome{day},1\n")
    target = {"city": {"type": "string_categorical", "output_mode": "target"}}
    run_analysis({"features": target, "label": "y"}, str(days[0]), str(tmp_path / "a"))
    run_analysis({"features": target, "label": "y", "label_type": "binary"}, str(days[1]), str(tmp_path / "b"))
    with pytest.raises(BundleError, match=r"\(label_type: None there, 'binary' here\)"):
        merge_bundles([str(tmp_path / "a"), str(tmp_path / "b")], str(tmp_path / "m"))
    run_analysis({"features": {"city": {"type": "string_categorical", "max_tokens": 5}}}, str(days[0]), str(tmp_path / "c"))
    run_analysis({"features": {"city": "string_categorical"}}, str(days[1]), str(tmp_path / "e"))
    with pytest.raises(BundleError, match=r"features\.city\.max_tokens: 5 there, None here"):
        merge_bundles([str(tmp_path / "c"), str(tmp_path / "e")], str(tmp_path / "m"))
