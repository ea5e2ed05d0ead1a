"""kdp-beam transform --out-of-fold: real CSV and Parquet files, run_analysis with folds,
the transform on a real Beam pipeline, and every row's encoding compared with an
independent oracle that counts the other folds' labels from the raw rows (read back with
Python's csv module / pyarrow.parquet), for binary, multiclass and regression labels,
scalar and multivalent features, min_count, with_count, missing fold keys and values, and
values the vocabulary does not hold. Without --out-of-fold the output is the model's."""

import csv
import json
import math
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kdp_beam.analyzers.labels import fold_of
from kdp_beam.bundle.loader import load_bundle
from kdp_beam.cli import main
from kdp_beam.errors import SpecError
from kdp_beam.job import run_analysis
from kdp_beam.transform.job import run_transform

ANALYSED, NEW = 600, 40  # rows analysed; rows transformed beside them holding unseen values
SMOOTHING = 10.0
FEATURES = {
    "city": {"type": "string_categorical", "output_mode": "target", "folds": 3, "min_count": 3, "with_count": True},
    "store": {"type": "integer_categorical", "output_mode": "target", "folds": 4, "max_tokens": 4},
    "tags": {"type": "string_categorical", "multivalent": True, "output_mode": "target", "folds": 3},
    "shop": {"type": "string_categorical", "output_mode": "target"},  # no folds: the model's
    "x": {"type": "float_normalized"},
}
FOLDED = ("city", "store", "tags")
CITIES = ["paris", "lyon", "nice", "rare1", "rare2", "lille"]  # rare*: a few rows, under min_count out of fold
TAGS = ["t1", "t2", "t3", "t4", "t5"]


def _rows(label_type, count, seed, new=False):
    """Raw rows as Python values (None: missing); `new` rows hold values never analysed."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        city = rng.choice(CITIES[:3] + CITIES[5:]) if rng.random() > 0.01 else rng.choice(CITIES[3:5])
        tags = rng.sample(TAGS, rng.randint(1, 3))
        if rng.random() < 0.1:
            tags.append(tags[0])  # a value twice in a list: the model averages positions
        if label_type == "binary":
            y = rng.choice([0, 1, 1])
        elif label_type == "multiclass":
            y = rng.choice(["a", "b", "b", "c"])
        else:
            y = round(rng.gauss(3.0, 2.0), 2)
        row = {
            "row": i + (ANALYSED if new else 0),
            "id": None if rng.random() < 0.05 else i + (ANALYSED if new else 0),
            "city": None if rng.random() < 0.05 else ("atlantis" if new and i % 2 else city),
            "store": None if rng.random() < 0.05 else rng.randint(1, 6) + (100 if new and i % 3 == 0 else 0),
            "tags": None if rng.random() < 0.05 else (tags + ["t_new"] if new and i % 4 == 0 else tags),
            "shop": rng.choice(["s1", "s2", "s3"]),
            "x": None if rng.random() < 0.05 else rng.gauss(0, 1),
            "y": None if rng.random() < 0.08 else y,
        }
        rows.append(row)
    return rows


def _write(rows, path, file_format, label_type):
    if file_format == "csv":
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            for row in rows:
                text = {k: "" if v is None else "|".join(v) if k == "tags" else str(v) for k, v in row.items()}
                writer.writerow(text)
        return
    types = {
        "row": pa.int64(), "id": pa.int64(), "city": pa.string(), "store": pa.int64(),
        "tags": pa.list_(pa.string()), "shop": pa.string(), "x": pa.float64(),
        "y": {"binary": pa.int64(), "multiclass": pa.string(), "regression": pa.float64()}[label_type],
    }
    pq.write_table(pa.table({k: pa.array([r[k] for r in rows], t) for k, t in types.items()}), path)


def _read_back(paths, file_format, label_type):
    """The files' rows as the oracle reads them, independently of kdp_beam's readers."""
    rows = []
    for path in paths:
        if file_format == "parquet":
            rows += pq.read_table(path).to_pylist()
            continue
        with open(path, newline="") as f:
            for raw in csv.DictReader(f):
                value = {k: (v if v != "" else None) for k, v in raw.items()}
                for name in ("row", "id", "store"):
                    value[name] = None if value[name] is None else int(value[name])
                value["x"] = None if value["x"] is None else float(value["x"])
                value["tags"] = None if value["tags"] is None else value["tags"].split("|")
                if value["y"] is not None and label_type != "multiclass":
                    value["y"] = (float if label_type == "regression" else int)(value["y"])
                rows.append(value)
    return rows


def _label_vector(y, label_type, classes):
    if label_type == "binary":
        return np.array([float(y == 1)])
    if label_type == "multiclass":
        return np.array([float(y == c) for c in classes])
    return np.array([float(y)])


def _oracle(analysed, encoded, name, options, label_type, vocabulary):
    """Each encoded row's out-of-fold encoding of `name`, in float64, from the analysed rows:
    the other folds' labelled rows holding each value (n, label sums), the smoothed mean
    (s + m * prior) / (n + m) when n >= min_count, else the prior (also unseen and missing
    values); a list the mean of its values' encodings; with_count log1p(rows holding it)."""
    classes = ["a", "b", "c"] if label_type == "multiclass" else None
    labelled = [r for r in analysed if r["y"] is not None]
    prior = np.mean([_label_vector(r["y"], label_type, classes) for r in labelled], axis=0)
    k = options["folds"]
    fold = lambda rows: fold_of(pa.array(["" if r["id"] is None else str(r["id"]) for r in rows], pa.string()), k)
    lists = name == "tags"
    values_of = lambda r: ([] if r[name] is None else r[name]) if lists else [r[name]]
    n = {}  # (value, fold) -> labelled rows holding it
    s = {}  # (value, fold) -> their label vectors' sum
    occurrences = {}
    for r in analysed:
        for v in values_of(r):
            occurrences[v] = occurrences.get(v, 0) + 1
    for r, f in zip(labelled, fold(labelled)):
        for v in set(values_of(r)) - {None}:
            n[v, f] = n.get((v, f), 0) + 1
            s[v, f] = s.get((v, f), 0) + _label_vector(r["y"], label_type, classes)
    known = {str(v) for v in vocabulary}
    expected, under_min_count = [], 0
    for r, f in zip(encoded, fold(encoded)):
        rows = []
        for v in values_of(r):
            if v is None or str(v) not in known:
                rows.append(np.append(prior, 0.0) if options["with_count"] else prior)
                continue
            others = [g for g in range(k) if g != f]
            count = sum(n.get((v, g), 0) for g in others)
            total = sum((s.get((v, g), 0) for g in others), np.zeros_like(prior))
            value = (total + SMOOTHING * prior) / (count + SMOOTHING) if count >= options["min_count"] else prior
            under_min_count += count < options["min_count"]
            rows.append(np.append(value, math.log1p(occurrences[v])) if options["with_count"] else value)
        expected.append(np.mean(rows, axis=0) if rows else prior)
    return np.array(expected), fold(encoded), under_min_count


def _read_output(path):
    manifest = json.loads((path / "manifest.json").read_text())
    table = pq.read_table([str(path / f["path"]) for f in manifest["files"]])
    order = np.argsort(table["row"].to_numpy())
    columns = {e["name"]: e for e in manifest["schema"]}
    encoded = {name: np.asarray(table[name].to_pylist())[order] for name in columns if columns[name]["role"] != "keep"}
    return manifest, encoded


def _model_outputs(bundle, rows):
    from kdp_beam.builder import FeatureSpace

    fs = FeatureSpace.from_artifacts(bundle, output_mode="dict")
    return {name: np.asarray(v) for name, v in fs({n: [r[n] for r in rows] for n in fs.features}).items()}


CASES = [("binary", "csv"), ("binary", "parquet"), ("multiclass", "csv"), ("regression", "parquet")]


@pytest.fixture(scope="module", params=CASES, ids=["-".join(case) for case in CASES])
def analysed(request, tmp_path_factory):
    """(root, label type, format, files analysed, files transformed, bundle path)."""
    label_type, file_format = request.param
    root = tmp_path_factory.mktemp(f"{label_type}-{file_format}")
    (root / "in").mkdir()
    train = _rows(label_type, ANALYSED, seed=7)
    paths = [str(root / "in" / f"part-{i}.{file_format}") for i in range(2)]
    _write(train[:250], paths[0], file_format, label_type)
    _write(train[250:], paths[1], file_format, label_type)
    new = str(root / f"new.{file_format}")
    _write(_rows(label_type, NEW, seed=8, new=True), new, file_format, label_type)
    spec = {"features": FEATURES, "label": "y", "fold_key": "id", "label_type": label_type}
    run_analysis(spec, str(root / "in" / f"*.{file_format}"), str(root / "bundle"))
    return root, label_type, file_format, paths, paths + [new], str(root / "bundle")


def test_out_of_fold_encodings_equal_the_oracle(analysed):
    root, label_type, file_format, analysed_paths, paths, bundle = analysed
    summary = run_transform(bundle, paths, str(root / "oof"), "parquet", keep=["row:integer"], out_of_fold=True)
    assert summary["rows_written"] == ANALYSED + NEW and summary["out_of_fold"] == list(FOLDED)
    manifest, got = _read_output(root / "oof")
    assert manifest["out_of_fold"] is True
    encodings = {e["name"]: e.get("encoding") for e in manifest["schema"]}
    assert encodings == {"city": "out_of_fold", "store": "out_of_fold", "tags": "out_of_fold", "shop": None, "x": None, "row": None}

    analysed_rows = _read_back(analysed_paths, file_format, label_type)
    encoded_rows = sorted(_read_back(paths, file_format, label_type), key=lambda r: r["row"])
    loaded = load_bundle(bundle)
    for name in FOLDED:
        options = loaded.spec.features[name].options
        expected, folds, under_min_count = _oracle(analysed_rows, encoded_rows, name, options, label_type, loaded.features[name]["vocabulary"])
        assert got[name].shape == expected.shape, name
        np.testing.assert_allclose(got[name], expected, rtol=1e-6, atol=1e-6, err_msg=name)
        # every fold, a missing fold key's, and the rows of unseen values were encoded
        assert set(folds) == set(range(options["folds"])), name
        if name == "city":  # (rare cities: held by fewer than min_count rows of the other folds)
            assert under_min_count > 0
    # rows without a fold key are encoded as of the empty key's fold, as the analysis counted them
    assert any(r["id"] is None and r["y"] is not None for r in analysed_rows)

    # The other features are the model's; the folded ones differ from it (the rows' own labels are out).
    model = _model_outputs(bundle, encoded_rows)
    for name in ("shop", "x"):
        np.testing.assert_allclose(got[name], model[name], rtol=0, atol=1e-6, err_msg=name)
    for name in FOLDED:
        assert np.abs(got[name] - model[name]).max() > 1e-3, name
    # an unseen value is the prior in both
    unseen = [i for i, r in enumerate(encoded_rows) if r["city"] == "atlantis"]
    np.testing.assert_allclose(got["city"][unseen], model["city"][unseen], rtol=0, atol=1e-6)


@pytest.mark.parametrize("analysed", [CASES[0]], indirect=True, ids=["binary-csv"])
def test_without_out_of_fold_the_transform_is_the_model(analysed):
    root, label_type, file_format, _, paths, bundle = analysed
    summary = run_transform(bundle, paths, str(root / "plain"), "parquet", keep=["row:integer"])
    assert summary["out_of_fold"] == []
    manifest, got = _read_output(root / "plain")
    assert manifest["out_of_fold"] is False and not any("encoding" in e for e in manifest["schema"])
    model = _model_outputs(bundle, sorted(_read_back(paths, file_format, label_type), key=lambda r: r["row"]))
    assert set(got) == set(model)
    for name, values in model.items():
        np.testing.assert_allclose(got[name], values, rtol=0, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("analysed", [CASES[1]], indirect=True, ids=["binary-parquet"])
def test_the_fold_key_kept_must_be_read_as_text(analysed):
    root, label_type, file_format, _, paths, bundle = analysed
    # a Parquet integer id kept is an integer column by default: the fold key is hashed as text
    with pytest.raises(SpecError, match=r"--keep id: with --out-of-fold the fold key 'id' is read as text.*--keep id:text"):
        run_transform(bundle, paths, str(root / "refused"), keep=["id"], out_of_fold=True)
    assert not (root / "refused").exists()
    summary = run_transform(bundle, paths, str(root / "kept"), "parquet", keep=["id:text", "row:integer"], out_of_fold=True)
    table = pq.read_table(str(root / "kept" / "data"))
    assert summary["rows_written"] == ANALYSED + NEW
    assert sorted(v for v in table["id"].to_pylist() if v is not None) == sorted(
        str(r["id"]) for r in _read_back(paths, file_format, label_type) if r["id"] is not None
    )


@pytest.mark.parametrize("analysed", [CASES[2]], indirect=True, ids=["multiclass-csv"])
def test_cli_out_of_fold_and_its_refusal(analysed, tmp_path, capsys):
    root, label_type, file_format, _, paths, bundle = analysed
    output = str(tmp_path / "oof")
    assert main(["transform", "--bundle", bundle, "--input", str(root / "in" / "*.csv"), "--output", output,
                 "--out-of-fold", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["out_of_fold"] == list(FOLDED)
    assert "encoded out of fold (each row with the other folds' label statistics): city, store, tags" in err
    assert json.loads((tmp_path / "oof" / "manifest.json").read_text())["out_of_fold"] is True

    # a bundle without folds: one error line before the job, status 2, nothing written
    spec = tmp_path / "features.json"
    spec.write_text(json.dumps({"features": {"shop": FEATURES["shop"], "city": {"type": "string_categorical", "folds": 3}},
                                "label": "y", "fold_key": "id"}))
    run_analysis(str(spec), str(root / "in" / "*.csv"), str(tmp_path / "plain-bundle"))
    assert main(["transform", "--bundle", str(tmp_path / "plain-bundle"), "--input", str(root / "in" / "*.csv"),
                 "--output", str(tmp_path / "refused"), "--out-of-fold"]) == 2
    err = capsys.readouterr().err
    assert err.count("kdp-beam: error:") == 1
    assert "has no target-encoded feature with folds (the features ['city'] have folds but are not output_mode 'target')" in err
    assert not (tmp_path / "refused").exists()
