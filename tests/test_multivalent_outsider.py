"""Multivalent features used as a new user would, on inputs the authors did not design:
each test here failed before its fix."""

import csv

import pytest

from kdp_beam import FeatureSpace
from kdp_beam.errors import SpecError
from kdp_beam.job import run_analysis


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A multivalent `tags` beside a scalar `city` and `size`, analysed from a real CSV."""
    root = tmp_path_factory.mktemp("outsider")
    with open(root / "data.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["tags", "city", "size"])
        writer.writerows([["a|b", "x", "1.5"], ["", "y", "2.5"], ["b", "x", "3.5"]])
    spec = {"features": {
        "tags": {"type": "string_categorical", "multivalent": True},
        "city": "string_categorical",
        "size": "float_normalized",
    }}
    run_analysis(spec, str(root / "data.csv"), str(root / "bundle"))
    return str(root / "bundle")


def test_a_cross_of_a_multivalent_feature_is_refused_when_the_space_is_declared():
    # It was accepted by the constructor and refused only by adapt(), with a message listing
    # string_categorical among the types a cross takes.
    features = {"tags": FeatureSpace.string_categorical(multivalent=True), "city": "string_categorical"}
    with pytest.raises(SpecError, match=r"\['tags'\] multivalent: a cross takes one value per row"):
        FeatureSpace(features, crosses=[FeatureSpace.cross(["city", "tags"], 8)])


@pytest.mark.parametrize("crossed", [["tags", "city"], ["size", "city"]])
def test_from_artifacts_refuses_a_cross_no_type_can_take(bundle, crossed):
    # from_artifacts built the layers and keras' HashedCrossing raised a raw ValueError
    # ("Expected the two input tensors to have identical shapes"), for a scalar float too.
    features = {"tags": {"type": "string_categorical", "multivalent": True},
                "city": "string_categorical", "size": "float_normalized"}
    with pytest.raises(SpecError, match=rf"cross {crossed!r}"):
        FeatureSpace.from_artifacts(bundle, features=features, crosses=[FeatureSpace.cross(crossed, 8)])
