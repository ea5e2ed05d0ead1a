"""Label-aware features end to end: files with a label -> the real analysis (Beam) -> a
bundle -> the model and the report; the model's target encodings equal the formula over the
same rows (tests/builder/test_target.py's oracle), after .keras save/load and export();
FeatureSpace.adapt with a label (dict, DataFrame, tf.data of (features, label)) gives the
same model.
"""

import html
import math
import re
import subprocess
import warnings

import keras
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import tensorflow as tf

import kdp_beam
from kdp_beam.builder.names import layer_name
from kdp_beam.bundle.loader import Bundle, load_bundle
from kdp_beam.job import run_analysis
from kdp_beam.spec import FeatureSpec
from kdp_beam.tools.report import render_report
from tests.builder.test_target import CITIES, PETS, PRICES, QUERY_CITIES, QUERY_STORES, QUERY_TAGS, ROWS, STORES, TAGS
from tests.builder.test_target import expected, label_statistics
from tests.conftest import write_shards
from tests.test_report import chromium

FS = kdp_beam.FeatureSpace
EVIL = "<script>alert(1)</script>"
CLICKED = [None if y is None else int(y) for y in np.random.default_rng(7).choice([0, 1, None], ROWS, p=[0.6, 0.3, 0.1]).tolist()]
LABELS = {
    "binary": ("clicked", CLICKED, [None if y is None else str(y) for y in CLICKED]),
    "multiclass": ("pet", PETS, PETS),
    "regression": ("price", PRICES, PRICES),
}
OPTIONS = {
    "city": {"type": "string_categorical", "output_mode": "target", "with_count": True, "min_count": 3},
    "store": {"type": "integer_categorical", "output_mode": "target", "smoothing": 4.0},
    "tags": {"type": "string_categorical", "output_mode": "target", "multivalent": True},
}


def table():
    return pa.table({
        "city": pa.array(CITIES, pa.string()),
        "store": pa.array(STORES, pa.int64()),
        "tags": pa.array(TAGS, pa.list_(pa.string())),
        **{column: pa.array(values) for column, values, _ in LABELS.values()},
    })


def spec(label_type, declare_type=True):
    column = LABELS[label_type][0]
    return FeatureSpec(OPTIONS, output_mode="dict", label=column, label_type=label_type if declare_type else None)


def oracle(label_type, name, queries):
    """The encodings of `queries` from the rows, the label as its classes' text."""
    labels = LABELS[label_type][2]
    values = {"city": CITIES, "store": STORES, "tags": TAGS}[name]
    options = {k: v for k, v in OPTIONS[name].items() if k in ("smoothing", "min_count", "with_count")}
    return expected(values, labels, label_type, queries, multivalent=name == "tags", **options)


QUERIES = {"city": QUERY_CITIES, "store": QUERY_STORES + [3, 8, 11], "tags": QUERY_TAGS}


def assert_encodes_as_the_oracle(fs, label_type):
    out = fs(QUERIES)
    for name in OPTIONS:
        want = oracle(label_type, name, QUERIES[name])
        got = np.asarray(out[name])
        if name == "tags":  # a mean of float32 rows
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=0, err_msg=name)
        else:
            np.testing.assert_array_equal(got, want.astype(np.float32), err_msg=name)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_shards(table(), tmp_path_factory.mktemp("labelled"), 3, fmt="parquet")


@pytest.mark.parametrize("label_type", sorted(LABELS))
def test_a_model_from_an_analysed_bundle_encodes_as_the_formula(files, tmp_path, label_type):
    run_analysis(spec(label_type, declare_type=label_type != "binary"), files, str(tmp_path / "b"))
    bundle = load_bundle(str(tmp_path / "b"))
    assert bundle.label["label_type"] == label_type
    # The bundle's statistics are the ones the tests of kdp_beam.builder.target assume.
    for name, values in (("city", CITIES), ("store", STORES), ("tags", TAGS)):
        column = LABELS[label_type][0]
        mine = label_statistics(values, LABELS[label_type][2], label_type, multivalent=name == "tags", column=column)
        theirs = bundle.features[name]
        by_token = lambda stats: {  # noqa: E731
            t: (n, s) for t, n, s in zip(stats["vocabulary"], stats["vocabulary_label_counts"], stats["vocabulary_label_sums"])
        }
        assert by_token(theirs) == by_token(mine), name
        assert [theirs[k] for k in ("label_rows", "label_type", "label_columns")] == [mine[k] for k in ("label_rows", "label_type", "label_columns")]
        for key in ("label_totals", "label_prior"):
            assert theirs[key] == pytest.approx(mine[key], rel=1e-15), (name, key)
    fs = FS.from_artifacts(str(tmp_path / "b"))
    assert_encodes_as_the_oracle(fs, label_type)
    # .keras, export(): the same encodings.
    model = kdp_beam.build_preprocessor(str(tmp_path / "b"), output_mode="concat")
    inputs = {
        "city": tf.constant([[q or ""] for q in QUERIES["city"][:9]]),
        "store": tf.constant([[-1 if q is None else q] for q in QUERIES["store"][:9]], tf.int64),
        "tags": tf.constant([[x or "" for x in (q or [])] + [""] * (3 - len(q or [])) for q in QUERIES["tags"]]),
    }
    want = np.concatenate(
        [oracle(label_type, "city", QUERIES["city"][:9]), oracle(label_type, "store", QUERIES["store"][:9]),
         oracle(label_type, "tags", QUERIES["tags"])], axis=1,
    )
    model.save(tmp_path / "m.keras")
    model.export(str(tmp_path / "served"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "served")).serve({layer_name(k): v for k, v in inputs.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for what, out in (("model", model(inputs)), ("reloaded", keras.models.load_model(tmp_path / "m.keras")(inputs)), ("served", served)):
            np.testing.assert_allclose(np.asarray(out), want, rtol=1e-6, atol=0, err_msg=what)


def test_adapt_with_a_label_in_memory_equals_the_formula(files, tmp_path):
    data = {"city": CITIES, "store": STORES, "tags": TAGS, "clicked": CLICKED}
    for label_type, (column, _, _) in LABELS.items():
        data[column] = LABELS[label_type][1]
        fs = FS(dict(OPTIONS), output_mode="dict", label=column, label_type=label_type)
        fs.adapt(data)
        assert_encodes_as_the_oracle(fs, label_type)
    # adapt's label overrides the constructor's; a DataFrame holds the label as a column
    # (integers with missing values as pandas' nullable Int64: plain pandas makes them floats).
    fs = FS(dict(OPTIONS), output_mode="dict", label="price")
    fs.adapt(pd.DataFrame({**data, "store": pd.array(STORES, dtype="Int64")}), label="pet")
    assert fs.label == "pet"
    assert_encodes_as_the_oracle(fs, "multiclass")
    # tf.data of (features, label): a string feature and the label as text ("" missing).
    city = FS.string_categorical(output_mode="target")
    dataset = tf.data.Dataset.from_tensor_slices(
        ({"city": [c or "" for c in CITIES]}, [y or "" for y in LABELS["binary"][2]])
    ).batch(64)
    fs = FS({"city": city}, output_mode="dict")
    fs.adapt(dataset, label="clicked")
    want = expected(CITIES, LABELS["binary"][2], "binary", QUERY_CITIES)
    np.testing.assert_array_equal(np.asarray(fs({"city": QUERY_CITIES})["city"]), want.astype(np.float32))
    # From files, the same model as in memory.
    on_files = FS(dict(OPTIONS), output_mode="dict", label="clicked", label_type="binary")
    on_files.adapt(files)
    assert_encodes_as_the_oracle(on_files, "binary")


# --- the report --------------------------------------------------------------------------


def _feature_stats(stats, values):
    """`stats` plus the keys every categorical's report reads."""
    nulls = sum(1 for v in values if v in (None, ""))
    return {**stats, "type": "string_categorical", "count": len(values), "null_count": nulls,
            "missing_count": nulls, "distinct_count": len(stats["vocabulary"]), "vocabulary_size": len(stats["vocabulary"])}


def _label(column, labels, label_type, inferred):
    present = [y for y in labels if y is not None]
    classes = sorted(set(present))
    counts = [present.count(c) for c in classes]
    return {
        "column": column, "label_type": label_type, "inferred": inferred, "count": len(labels),
        "null_count": len(labels) - len(present), "classes": classes, "class_counts": counts,
        "positive_class": classes[-1] if label_type == "binary" else None,
        "prior": [c / len(present) for c in counts] if label_type == "multiclass" else [counts[-1] / len(present)],
    }


def label_rows(page, name):
    """The cells of the label table of feature `name`'s section, row by row."""
    section = page[page.index(f"<h2>{html.escape(name)} "):].split("</section>")[0]
    table = section[section.index("<table class=label-table>"):].split("</table>")[0]
    return [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row) for row in table.split("<tr>")[1:]]


def test_the_report_shows_the_label_and_its_rate_per_top_value(tmp_path):
    pets = [EVIL if p == "eel" else p for p in PETS]  # a class from the data is text too
    cities = [EVIL if c == "a,b" else c for c in CITIES]
    features = {
        "city": _feature_stats(label_statistics(cities, pets, "multiclass"), cities),
        "ranked": {**_feature_stats(label_statistics(cities, pets, "multiclass", max_tokens=3), cities)},
    }
    features["ranked"]["vocabulary_scores"] = [0.25, 0.125]
    declarations = {"city": {"type": "string_categorical", "output_mode": "target"},
                    "ranked": {"type": "string_categorical", "max_tokens": 3, "rank_by": "mutual_information"}}
    bundle = Bundle("hand-made", {"input": "rows"}, FeatureSpec(declarations, label="pet"), ROWS, features)
    bundle.label = _label("pet", pets, "multiclass", inferred=True)
    page = render_report(bundle)
    # The label's own section: type, inferred, missing labels, classes with counts and rates.
    section = page[page.index('<section class="label-section"'):].split("</section>")[0]
    missing = sum(p is None for p in pets)
    assert "<th>type</th><td class=n>multiclass (inferred from the data)</td>" in section
    assert f"<th>missing labels (left out of label statistics)</th><td class=n>{missing}</td>" in section
    for cls, count in zip(bundle.label["classes"], bundle.label["class_counts"]):
        assert f"<td>{html.escape(cls)}</td><td class=n>{count}</td><td class=n>{count / (ROWS - missing):.6g}</td>" in section
    assert EVIL not in page
    # Per top value: rows, n, each class's rate among the n, as computed from the rows.
    body = label_rows(page, "city")
    assert body[0] == ["value", "rows", "labelled (n)", *(f"rate of {html.escape(c)}" for c in bundle.label["classes"])]
    assert body[1][0] == "prior: every labelled row"
    assert [float(x) for x in body[1][3:]] == pytest.approx(bundle.label["prior"], rel=1e-5)
    for cells in body[2:]:
        token = html.unescape(cells[0])
        holding = [p for c, p in zip(cities, pets) if c == token and p is not None]
        assert cells[1:3] == [f"{cities.count(token)}", f"{len(holding)}"]
        rates = [f"{holding.count(c) / len(holding):.6g}" if holding else "–" for c in bundle.label["classes"]]
        assert cells[3:] == rates
    assert len(body) == 2 + len(features["city"]["vocabulary"])
    ranked = label_rows(page, "ranked")
    assert ranked[0][-1] == "MI (nats)" and [r[-1] for r in ranked[2:]] == ["0.25", "0.125"]
    # A real browser renders it, the data as text.
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    done = subprocess.run([chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--dump-dom", path.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count('class="label-table"') == 3 and "<script>" not in done.stdout
    assert '<section class="label-section" id="label">' in done.stdout


def test_a_regression_label_section_gives_its_mean_and_spread():
    from kdp_beam.tools.report_parts import label_section

    present = [p for p in PRICES if p is not None]
    mean = math.fsum(present) / len(present)
    variance = math.fsum((p - mean) ** 2 for p in present) / len(present)
    label = {"column": "price", "label_type": "regression", "inferred": False, "count": ROWS,
             "null_count": ROWS - len(present), "prior": [mean], "mean": mean, "variance": variance}
    details, chart = label_section(label)
    assert "<th>type</th><td class=n>regression (declared)</td>" in details
    assert f"<th>mean (prior)</th><td class=n>{mean:.6g}</td>" in details
    assert f"<th>std</th><td class=n>{math.sqrt(variance):.6g}</td>" in details and chart == ""


def test_the_report_of_an_analysed_bundle_shows_its_label(files, tmp_path):
    run_analysis(spec("binary", declare_type=False), files, str(tmp_path / "b"))
    page = render_report(load_bundle(str(tmp_path / "b")))
    assert "<th>type</th><td class=n>binary (inferred from the data)</td>" in page
    body = label_rows(page, "city")
    assert body[0][3] == "rate of 1"
    labels = LABELS["binary"][2]
    for cells in body[2:]:
        token = html.unescape(cells[0])
        holding = [y for c, y in zip(CITIES, labels) if c == token and y is not None]
        assert cells[2:] == [f"{len(holding)}", f"{holding.count('1') / len(holding):.6g}" if holding else "–"]
