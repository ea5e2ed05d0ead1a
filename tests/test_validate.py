"""kdp-beam validate against independent computations: L-infinity and new-value share from
Python's Counter over the same rows, Jensen-Shannon against the known divergence of two
normals, thresholds and exit codes (issue 17's "done means")."""

import collections
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kdp_beam.job import run_analysis
from kdp_beam.tools.merge import merge_bundles
from kdp_beam.tools.validate import ValidationError, jensen_shannon, validate

SPEC = {
    "features": {
        "city": "string_categorical",
        "top": {"type": "string_categorical", "max_tokens": 3, "counting": "approximate"},
        "x": "float_normalized",
        "d": {"type": "float_discretized", "num_bins": 4},
        "n": "integer_categorical",
    },
    "profile": True,
}
N = 30_000


def _table(rng, shift=0.0, cities=("paris", "oslo", "rome"), p=(0.5, 0.3, 0.2), missing=0.0):
    city = rng.choice(cities, N, p=p).astype(object)
    city[rng.random(N) < missing] = None
    return pa.table({
        "city": pa.array(city, pa.string()),
        "top": pa.array(rng.choice(["a", "b", "c", "d", "e"], N, p=[0.4, 0.3, 0.15, 0.1, 0.05])),
        "x": rng.normal(shift, 1.0, N),
        "d": rng.normal(shift, 1.0, N),
        "n": rng.integers(0, 5, N),
    })


def _bundle(tmp_path, name, table, spec=SPEC):
    pq.write_table(table, tmp_path / f"{name}.parquet", row_group_size=7_000)
    run_analysis(spec, str(tmp_path / f"{name}.parquet"), str(tmp_path / name))
    return str(tmp_path / name)


def _linf_and_new(was, now):
    a, b = collections.Counter(v for v in was if v is not None), collections.Counter(v for v in now if v is not None)
    ta, tb = sum(a.values()), sum(b.values())
    linf = max(abs(a[k] / ta - b[k] / tb) for k in a.keys() | b.keys())
    return linf, sum(c for k, c in b.items() if k not in a) / tb


@pytest.fixture(scope="module")
def drifted(tmp_path_factory):
    root = tmp_path_factory.mktemp("validate")
    rng = np.random.default_rng(17)
    base = _table(rng)
    cur = _table(rng, shift=1.0, cities=("paris", "oslo", "rome", "lima"), p=(0.3, 0.3, 0.2, 0.2), missing=0.1)
    return root, base, cur, _bundle(root, "base", base), _bundle(root, "cur", cur)


def test_categorical_metrics_are_exact(drifted):
    _, base, cur, b, c = drifted
    result = validate(b, c)
    linf, new = _linf_and_new(base["city"].to_pylist(), cur["city"].to_pylist())
    city = result.features["city"]
    assert city["linf"]["value"] == pytest.approx(linf, abs=1e-12)
    assert city["new_value_share"]["value"] == pytest.approx(new, abs=1e-12)
    assert city["linf"]["fired"] and city["new_value_share"]["fired"]
    assert city["linf"]["pooled"] is False
    missing = cur["city"].null_count / N
    assert city["missing_rate_change"]["value"] == pytest.approx(missing) and city["missing_rate_change"]["fired"]
    n_linf, _ = _linf_and_new(base["n"].to_pylist(), cur["n"].to_pylist())
    assert result.features["n"]["linf"]["value"] == pytest.approx(n_linf, abs=1e-12)
    assert result.exit_code == 1


def test_a_vocabulary_kept_in_part_is_pooled_and_said_so(drifted):
    _, _, _, b, c = drifted
    top = validate(b, c).features["top"]
    assert top["linf"]["pooled"] is True and top["new_value_share"]["upper_bound"] is True


def test_jensen_shannon_of_two_normals_is_close_to_the_true_divergence(drifted):
    _, _, _, b, c = drifted
    result = validate(b, c)
    for name in ("x", "d"):  # --profile's sketch, and the discretization's own
        assert result.features[name]["jensen_shannon"]["value"] == pytest.approx(0.161, rel=0.3)
        assert result.features[name]["jensen_shannon"]["fired"]
        assert result.features[name]["mean_shift"]["value"] == pytest.approx(1.0, abs=0.05)


def test_two_samples_of_one_distribution_pass(tmp_path):
    rng = np.random.default_rng(5)
    b = _bundle(tmp_path, "a", _table(rng))
    c = _bundle(tmp_path, "b", _table(rng))
    result = validate(b, c)
    assert result.features["x"]["jensen_shannon"]["value"] < 0.01
    assert result.features["d"]["jensen_shannon"]["value"] < 0.01
    assert result.features["city"]["linf"]["value"] < 0.02
    assert result.anomalies == [] and result.exit_code == 0


def test_jensen_shannon_of_discrete_values_equals_the_exact_divergence():
    rng = np.random.default_rng(3)
    p, q = np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.3, 0.5])
    points = [
        np.quantile(rng.choice([0.0, 1.0, 2.0], 200_000, p=w), np.linspace(0, 1, 1001), method="inverted_cdf")
        for w in (p, q)
    ]
    m = (p + q) / 2
    exact = 0.5 * np.sum(p * np.log2(p / m)) + 0.5 * np.sum(q * np.log2(q / m))
    assert jensen_shannon(*points) == pytest.approx(exact, abs=0.01)
    assert jensen_shannon(points[0], points[0]) == 0.0


def test_thresholds_are_honoured_globally_and_per_feature(drifted, tmp_path):
    _, _, _, b, c = drifted
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps({
        "default": {"linf": 0.5, "new_value_share": 0.5, "missing_rate_change": 0.5, "jensen_shannon": 0.5},
        "features": {"city": {"linf": 0.01}},
    }))
    result = validate(b, c, thresholds=str(path))
    fired = {(a["feature"], a["metric"]) for a in result.anomalies}
    assert fired == {("city", "linf")}
    assert result.features["x"]["jensen_shannon"]["threshold"] == 0.5
    with pytest.raises(ValidationError, match="unknown metric 'lnf'"):
        validate(b, c, thresholds={"default": {"lnf": 1}})


def test_schema_changes_fire_and_other_types_are_not_compared(tmp_path):
    rng = np.random.default_rng(9)
    table = _table(rng)
    b = _bundle(tmp_path, "a", table)
    other = {"features": {"city": "string_categorical", "x": "string_categorical", "extra": "float_normalized"}, "profile": True}
    c = _bundle(tmp_path, "b", table.drop(["x"]).append_column("x", pa.array(["s"] * N)).append_column("extra", table["x"]), other)
    result = validate(b, c)
    changes = {(s["feature"], s["change"]) for s in result.schema}
    assert changes == {("top", "removed"), ("d", "removed"), ("n", "removed"), ("extra", "added"), ("x", "type")}
    assert "x" not in result.features and result.exit_code == 1


def test_no_feature_in_common_is_an_error(tmp_path):
    rng = np.random.default_rng(1)
    b = _bundle(tmp_path, "a", _table(rng))
    c = _bundle(tmp_path, "b", pa.table({"y": rng.normal(size=100)}), {"features": {"y": "float_normalized"}})
    with pytest.raises(ValidationError, match="no feature in common"):
        validate(b, c)


def test_a_merged_bundle_validates_like_one_run(drifted, tmp_path):
    root, base, _, b, _ = drifted
    halves = [_bundle(tmp_path, f"h{i}", base.slice(i * N // 2, N // 2)) for i in range(2)]
    merge_bundles(halves, str(tmp_path / "merged"))
    result = validate(b, str(tmp_path / "merged"))
    assert result.features["city"]["linf"]["value"] == pytest.approx(0.0, abs=1e-12)
    assert result.features["x"]["jensen_shannon"]["value"] < 0.01
    assert result.exit_code == 0


def test_bundles_without_sketches_say_what_they_cannot_compare(tmp_path):
    rng = np.random.default_rng(4)
    plain = {**SPEC, "profile": False}
    b = _bundle(tmp_path, "a", _table(rng), plain)
    c = _bundle(tmp_path, "b", _table(rng, shift=1.0), plain)
    x = validate(b, c).features["x"]
    assert x["jensen_shannon"]["value"] is None and "no distribution sketch" in x["jensen_shannon"]["reason"]
    assert x["mean_shift"]["value"] == pytest.approx(1.0, abs=0.05)


def _cli(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "kdp_beam", "validate", *args], capture_output=True, text=True, timeout=300)


def test_the_command_gates_on_anomalies_with_its_exit_status(drifted, tmp_path):
    root, _, _, b, c = drifted
    same = _cli(b, b, "--json", str(tmp_path / "same.json"))
    assert same.returncode == 0 and "no anomaly" in same.stderr
    assert json.loads((tmp_path / "same.json").read_text())["anomaly_count"] == 0
    drift = _cli(b, c, "--json")
    assert drift.returncode == 1, drift.stderr
    document = json.loads(drift.stdout)
    assert document["exit_status"] == 1 and {"feature": "city", "metric": "linf"} in document["anomalies"]
    assert "anomaly: feature 'city': linf" in drift.stderr
    lenient = tmp_path / "lenient.json"
    lenient.write_text(json.dumps({"default": {m: None for m in ("linf", "new_value_share", "jensen_shannon", "missing_rate_change")}}))
    assert _cli(b, c, "--thresholds", str(lenient)).returncode == 0
    broken = _cli(b, str(root / "no-such-bundle"))
    assert broken.returncode == 2 and broken.stderr.startswith("kdp-beam: error:") and "Traceback" not in broken.stderr
    bad_thresholds = tmp_path / "bad.json"
    bad_thresholds.write_text('{"default": {"linf": -1}}')
    assert _cli(b, c, "--thresholds", str(bad_thresholds)).returncode == 2


def test_the_diff_page_renders_every_feature_and_its_plot_in_headless_chromium(drifted, tmp_path):
    import re
    import subprocess

    from tests.test_report import chromium

    _, _, _, b, c = drifted
    page = tmp_path / "diff.html"
    assert _cli(b, c, "--output", str(page)).returncode == 1
    dom = subprocess.run(
        [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout
    sections = re.findall(r'<section class="feature-section" id="feature-\d+"><h2>([^<]+) ', dom)
    assert sorted(sections) == sorted(SPEC["features"])
    assert sections.index("city") < sections.index("n")  # fired anomalies first
    for name in SPEC["features"]:
        section = dom.split(f"<h2>{name} ")[1].split("</section>")[0]
        assert "<svg" in section, name
        assert ('class="baseline"' in section) and ('class="current"' in section), name
    screenshot = tmp_path / "diff.png"
    subprocess.run(
        [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1100,1800", f"--screenshot={screenshot}", page.as_uri()],
        capture_output=True, timeout=120, check=True,
    )
    assert screenshot.stat().st_size > 10_000


def test_declarations_that_change_what_a_value_is_are_refused(tmp_path):
    rng = np.random.default_rng(2)
    table = _table(rng)
    b = _bundle(tmp_path, "a", table)
    lists = {**SPEC, "features": {**SPEC["features"], "city": {"type": "string_categorical", "multivalent": True}}}
    c = _bundle(tmp_path, "b", table, lists)
    with pytest.raises(ValidationError, match="feature 'city' is declared with multivalent=False in the baseline, True now"):
        validate(b, c)
    more_tokens = {**SPEC, "features": {**SPEC["features"], "city": {"type": "string_categorical", "max_tokens": 2}}}
    kept = validate(b, _bundle(tmp_path, "c", table, more_tokens))  # how much is kept: compared
    assert kept.features["city"]["linf"]["value"] == pytest.approx(0.0, abs=1e-12)


def test_bundles_of_different_runners_compare_as_equal(drifted, tmp_path):
    root, base, _, b, _ = drifted
    path = tmp_path / "base.parquet"
    pq.write_table(base, path, row_group_size=7_000)
    run_analysis(SPEC, str(path), str(tmp_path / "mp"), pipeline_args=[
        "--direct_running_mode=multi_processing", "--direct_num_workers=2"])
    result = validate(b, str(tmp_path / "mp"))
    assert result.features["city"]["linf"]["value"] == 0.0
    assert result.features["x"]["jensen_shannon"]["value"] < 0.005 and result.exit_code == 0


def test_an_upper_bound_is_reported_not_gated_and_a_type_without_distribution_says_so(tmp_path):
    rng = np.random.default_rng(8)
    spec = {"features": {"top": {"type": "string_categorical", "max_tokens": 2, "counting": "approximate"},
                         "h": {"type": "string_hashed", "num_bins": 8}}}
    tables = [pa.table({"top": pa.array(rng.choice(list("abcdefgh"), N)), "h": pa.array(rng.choice(list("xyz"), N))})
              for _ in range(2)]
    b, c = (_bundle(tmp_path, f"s{i}", t, spec) for i, t in enumerate(tables))
    result = validate(b, c)
    share = result.features["top"]["new_value_share"]
    assert share["upper_bound"] and share["value"] > share["threshold"] and not share["fired"]
    assert "not gated" in share["reason"]
    assert "only its missing values are compared" in result.features["h"]["distribution"]["reason"]
    assert result.exit_code == 0
