"""Label-aware features used as a new user would, on inputs the authors did not design:
each test here failed before its fix."""

import csv
import json
import re

import pytest

from kdp_beam.bundle.loader import load_bundle
from kdp_beam.cli import main
from kdp_beam.errors import InputDataError
from kdp_beam.job import run_analysis
from kdp_beam.tools.infer import infer_features

TARGET = {"label": "y", "features": {"city": {"type": "string_categorical", "output_mode": "target"}}}


def write_csv(path, labels):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["city", "y"])
        writer.writerows([["abc"[i % 3], label] for i, label in enumerate(labels)])
    return str(path)


@pytest.mark.parametrize(
    "labels,refusal",
    [
        # "1.0" was a third class beside "1": a multiclass label of 3 classes, where the same
        # numbers from Parquet, JSON or tf.Example (1.0 read as "1") gave a binary one.
        (["0", "1", "1.0", "0"], r"the label 'y' has the classes '1' and '1.0', one value written two ways"),
        (["0", "-0", "1"], r"the classes '-0' and '0'"),
        # pandas writes a bool column to CSV as True / False, Parquet reads as true / false.
        (["True", "False", "true"], r"the classes 'True' and 'true', one value written two ways"),
        (["True", "False", "1"], r"holds booleans \('False'\) and numbers \('1'\)"),
        # "nan" was a class of its own: 0.5 / 1.5 / nan inferred multiclass, not regression
        # with a missing label (what a numeric column and label_type "regression" read).
        (["0.5", "1.5", "nan", "2.5"], r"the label 'y' holds numbers and 'nan', which is not a class"),
        (["0", "1", "inf"], r"holds numbers and 'inf'"),
    ],
)
def test_a_label_spelling_one_number_two_ways_or_nan_is_refused_by_analyze_and_infer(tmp_path, labels, refusal, capsys):
    path = write_csv(tmp_path / "d.csv", labels * 5)
    with pytest.raises(InputDataError, match=refusal):
        infer_features(path, label="y")
    (tmp_path / "f.json").write_text(json.dumps(TARGET))
    assert main(["analyze", "--features", str(tmp_path / "f.json"), "--input", path, "--output", str(tmp_path / "b")]) == 2
    [line] = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert line.startswith("kdp-beam: error: ") and re.search(refusal, line)


def test_json_booleans_beside_numbers_are_refused(tmp_path):
    # JSON true and 1 (or a bool file beside an int file) were four classes 0/1/false/true.
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"city": "ab"[i % 2], "y": y}) + "\n" for i, y in enumerate([1, True, 0, False] * 3)))
    with pytest.raises(InputDataError, match=r"the label 'y' holds booleans \('false'\) and numbers \('0'\)"):
        run_analysis(TARGET, str(path), str(tmp_path / "b"))
    with pytest.raises(InputDataError, match="holds booleans"):
        infer_features(str(path), label="y")


def test_number_classes_that_differ_stay_apart_exactly(tmp_path):
    # Beyond 2^53 two integers share a double: compared exactly, they are two classes.
    big = ["9007199254740992", "9007199254740993"]
    path = write_csv(tmp_path / "d.csv", big * 3 + ["0.0", "1.0", "x"])
    run_analysis(TARGET, path, str(tmp_path / "b"))
    label = load_bundle(str(tmp_path / "b")).label
    assert label["classes"] == sorted(big + ["0.0", "1.0", "x"]) and label["class_counts"] == [1, 1, 3, 3, 1]
    assert infer_features(path, label="y")["label_type"] == "multiclass"



@pytest.mark.parametrize("container", ["dict", "DataFrame"])
def test_a_label_of_mixed_kinds_in_memory_is_named_as_the_label(container):
    # adapt() called the label "feature 'y'", which is not a feature (and may not be one).
    import pandas as pd

    from kdp_beam import FeatureSpace

    data = {"city": ["a", "b", "a"], "y": [1, "cat", 2.5]}
    data = pd.DataFrame({"city": data["city"], "y": pd.Series(data["y"], dtype=object)}) if container == "DataFrame" else data
    space = FeatureSpace({"city": FeatureSpace.string_categorical(output_mode="target")}, label="y")
    with pytest.raises(InputDataError, match=r"passed to adapt\(\): the label 'y' holds values of kinds \['float', 'int', 'str'\].*Write every value of the label as one kind: str for classes"):
        space.adapt(data)


def test_csv_number_labels_with_spaces_around_read_as_those_numbers(tmp_path):
    # "a, 0.5" (a space after the comma): the CSV reader trims a number field, not a
    # label's, and " 0.5" / " 1.5" were three classes of a silent multiclass label, where
    # the same file declared "regression" read the numbers.
    import numpy as np

    path = tmp_path / "d.csv"
    path.write_text("city,y\na, 0.5\nb,\t1.5\nc, 2.25\na,0.5 \n")
    run_analysis(TARGET, str(path), str(tmp_path / "b"))
    bundle = load_bundle(str(tmp_path / "b"))
    values = np.array([0.5, 1.5, 2.25, 0.5])
    assert bundle.label["label_type"] == "regression" and bundle.label["inferred"]
    assert bundle.label["mean"] == pytest.approx(values.mean(), rel=1e-15)
    assert bundle.label["variance"] == pytest.approx(values.var(), rel=1e-15)
    city = bundle.features["city"]
    sums = dict(zip(city["vocabulary"], city["vocabulary_label_sums"]))
    assert sums == {"a": [1.0], "b": [1.5], "c": [2.25]}
    assert infer_features(str(path), label="y")["label_type"] == "regression"
    # " 1" beside "1" is one number written two ways.
    path.write_text("city,y\na, 1\nb,0\nc,1\n")
    with pytest.raises(InputDataError, match=r"the classes ' 1' and '1', one value written two ways"):
        run_analysis(TARGET, str(path), str(tmp_path / "c"))


def test_a_label_nan_with_chars_beside_text_is_a_class_not_an_internal_error(tmp_path):
    # pyarrow reads "nan(x)" as NaN and Python's float() does not: the type inference
    # raised ValueError, "kdp-beam: error: internal error" (exit status 1).
    path = write_csv(tmp_path / "d.csv", ["0.5", "nan(x)", "cat"])
    run_analysis(TARGET, path, str(tmp_path / "b"))
    label = load_bundle(str(tmp_path / "b")).label
    assert label["label_type"] == "multiclass" and label["classes"] == ["0.5", "cat", "nan(x)"]


def test_a_regression_label_may_spell_a_number_two_ways(tmp_path):
    # Numbers, some not whole: "1" and "1.0" are the number 1, not two classes to refuse;
    # the exact moments kept the rows of one of them only (mean 7/6, not 9/8).
    path = write_csv(tmp_path / "d.csv", ["1", "1.0", "0.5", "2"])
    run_analysis(TARGET, path, str(tmp_path / "b"))
    label = load_bundle(str(tmp_path / "b")).label
    assert label["label_type"] == "regression" and label["mean"] == (1 + 1 + 0.5 + 2) / 4
    assert infer_features(path, label="y")["label_type"] == "regression"
