"""kdp-beam validate on data built to break it: infinities, empty and all-missing inputs,
bundles without state, pooled vocabularies, thresholds files wrong in every way; values
against numpy / Counter on the same rows, and the JSON output strict."""

import collections
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kdp_beam.cli import main
from kdp_beam.job import run_analysis
from kdp_beam.tools.validate import ValidationError, validate

N = 4_000
SPEC = {
    "features": {
        "x": "float_normalized",
        "gone": "float_normalized",
        "city": "string_categorical",
    },
}


def _table(rng, n=N, inf_share=0.0, nan_share=0.0):
    x = rng.normal(size=n)
    x[rng.random(n) < inf_share] = np.inf
    x[rng.random(n) < nan_share] = np.nan
    return pa.table({
        "x": x,
        "gone": pa.array([None] * n, pa.float64()),
        "city": pa.array(rng.choice(["paris", "oslo", "<b>rome</b>"], n, p=[0.5, 0.3, 0.2]), pa.string()),
    })


def _bundle(root, name, table, spec=SPEC):
    pq.write_table(table, root / f"{name}.parquet")
    run_analysis(spec, str(root / f"{name}.parquet"), str(root / name))
    return str(root / name)


def _strict(text):
    def refuse(constant):
        raise AssertionError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("outsider")
    rng = np.random.default_rng(170)
    base, cur = _table(rng), _table(rng, inf_share=0.3, nan_share=0.01)
    return root, base, cur, _bundle(root, "base", base), _bundle(root, "cur", cur), _bundle(root, "empty", _table(rng, n=0))


def test_infinities_are_compared_not_ignored(bundles):
    """+-inf is neither missing nor in any sketch: 30% of a column turning infinite changed
    no metric, exit 0."""
    _, base, cur, b, c, _ = bundles
    x = validate(b, c).features["x"]
    rates = [float(np.isinf(t["x"].to_numpy()).mean()) for t in (base, cur)]
    assert x["inf_rate_change"]["value"] == pytest.approx(rates[1] - rates[0], abs=1e-12)
    assert x["inf_rate_change"]["fired"] and x["inf_rate_change"]["threshold"] == 0.05
    assert validate(b, b).exit_code == 0


def test_an_empty_bundle_against_one_with_rows_is_an_anomaly(bundles, capsys):
    _, _, _, b, _, empty = bundles
    for was, now, side in ((b, empty, "current"), (empty, b, "baseline")):
        assert main(["validate", was, now, "--json"]) == 1
        out, err = capsys.readouterr()
        ratio = _strict(out)["dataset"]["row_count_ratio"]
        assert ratio["fired"] and ratio["reason"] == f"the {side} bundle holds no rows"
        assert f"row_count_ratio: the {side} bundle holds no rows" in err and "Traceback" not in err
    assert main(["validate", empty, empty]) == 0


def test_an_all_missing_feature_says_it_has_no_value_not_no_sketch(bundles):
    _, _, _, b, c, _ = bundles
    js = validate(b, c).features["gone"]["jensen_shannon"]
    assert js["value"] is None and js["reason"] == "no finite value on one side"


def test_cause_rate_change_is_the_threshold_of_every_missing_cause(bundles):
    """It was accepted and ignored: NaN_rate_change never got a threshold."""
    _, base, cur, b, c, _ = bundles
    nan = validate(b, c, {"default": {"cause_rate_change": 0.001}}).features["x"]["NaN_rate_change"]
    rates = [float(np.isnan(t["x"].to_numpy()).mean()) for t in (base, cur)]
    assert nan["value"] == pytest.approx(abs(rates[1] - rates[0]), abs=1e-12) and nan["value"] > 0.001
    assert nan["threshold"] == 0.001 and nan["fired"]


def test_a_bundle_without_state_validates_on_its_statistics(bundles, tmp_path):
    """A bundle of kdp_beam before mergeable state was refused with merge's message."""
    import shutil

    _, base, _, b, _, _ = bundles
    old = tmp_path / "old"
    shutil.copytree(b, old)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["state"]
    manifest["files"] = {f: v for f, v in manifest["files"].items() if not f.startswith("state/")}
    (old / "manifest.json").write_text(json.dumps(manifest))
    shutil.rmtree(old / "state")
    result = validate(b, str(old))
    assert result.exit_code == 0
    assert result.features["city"]["linf"]["value"] == 0.0 and result.features["city"]["linf"]["pooled"] is False
    assert "no distribution sketch" in result.features["x"]["jensen_shannon"]["reason"]


def test_a_token_kept_on_one_side_and_pooled_on_the_other_is_not_a_change(tmp_path):
    """One data set, counted exactly and with only its top 2 values kept: linf was the share
    of the values the second bundle pooled (0.2 here), as if they had vanished."""
    rng = np.random.default_rng(171)
    values = rng.choice(list("abcde"), N, p=[0.35, 0.25, 0.2, 0.12, 0.08])
    table = pa.table({"v": pa.array(values)})
    exact = _bundle(tmp_path, "exact", table, {"features": {"v": "string_categorical"}})
    top = _bundle(tmp_path, "top", table, {"features": {"v": {"type": "string_categorical", "max_tokens": 2, "counting": "approximate"}}})
    counts = collections.Counter(values.tolist())
    for was, now in ((exact, top), (top, exact), (top, top)):
        linf = validate(was, now).features["v"]["linf"]
        assert linf["pooled"] is True
        # The top bundle's counts are exact here (5 values), so is the comparison: 0.
        assert linf["value"] == pytest.approx(0.0, abs=1e-12), (was, now, linf, counts)


@pytest.mark.parametrize("text, words", [
    ("[]", "thresholds are"),
    ("null", "thresholds are"),
    ('{"default": {"linf": Infinity}}', "finite number"),
    ('{"default": {"linf": 1e400}}', "finite number"),
    ('{"default": {"row_count_ratio": 0.5}}', "a factor >= 1"),
    ('{"features": {"contry": {"linf": 0.5}}}', "'contry'"),
    (b"\xff\xfe{}", "codec can't decode"),
])
def test_thresholds_wrong_in_any_way_are_one_error_line_and_status_2(bundles, tmp_path, capsys, text, words):
    _, _, _, b, c, _ = bundles
    path = tmp_path / "thresholds.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert main(["validate", b, c, "--thresholds", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kdp-beam: error: thresholds") and words in err and "internal error" not in err
    assert err.count("\n") == 1
    with pytest.raises(ValidationError):
        validate(b, c, str(path))


def test_the_page_escapes_values_and_says_why_a_feature_has_no_histogram(bundles, tmp_path, capsys):
    _, _, _, b, c, _ = bundles
    page = tmp_path / "diff.html"
    assert main(["validate", b, c, "--output", str(page)]) == 1
    html = page.read_text()
    assert "<b>rome" not in html and "&lt;b&gt;rome" in html
    assert "no histogram: no finite value on one side" in html and "without --profile" not in html
