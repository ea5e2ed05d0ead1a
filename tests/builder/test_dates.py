"""FeatureSpace.date: the model parses exactly what the analysis parsed, and encodes it."""

import math

import keras
import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

import kdp_beam
from kdp_beam.analyzers.dates import parse_dates
from kdp_beam.builder.layers import DateEncoding
from kdp_beam.job import run_analysis
from kdp_beam.spec import FeatureSpec
from tests.analyzers.test_dates import date_strings, reference
from tests.conftest import write_shards

COMPONENTS = ["year", "month", "day", "day_of_week", "day_of_year", "hour"]


def expected_row(text, mean, std, indicator):
    moment = reference(text)
    if moment is None:
        return [0.0] * (1 + 2 * 5) + ([1.0] if indicator else [])
    row = [(moment.year - mean) / std]
    cycles = [
        (moment.month - 1, 12),
        (moment.day - 1, 31),
        (moment.weekday(), 7),
        (moment.timetuple().tm_yday - 1, 366),
        (moment.hour, 24),
    ]
    for value, period in cycles:
        angle = 2 * math.pi * value / period
        row += [math.sin(angle), math.cos(angle)]
    return row + ([0.0] if indicator else [])


@settings(max_examples=60, deadline=None)
@given(st.lists(date_strings(), min_size=1, max_size=30))
def test_model_parses_what_the_analysis_parsed_and_encodes_it(texts):
    layer = DateEncoding(components=COMPONENTS, missing_indicator=True, year_mean=2000.0, year_std=500.0)
    got = np.asarray(layer(np.array(texts, dtype=object)[:, None]))
    _, valid = parse_dates(pa.array(texts))
    np.testing.assert_array_equal(got[:, -1] == 0.0, valid)
    expected = np.array([expected_row(t, 2000.0, 500.0, True) for t in texts])
    np.testing.assert_allclose(got, expected, atol=2e-6)


def test_date_feature_end_to_end_from_a_bundle(tmp_path):
    rng = np.random.default_rng(2)
    texts = [f"{y}-{m:02d}-{d:02d}T{h:02d}:00:00" for y, m, d, h in zip(
        rng.integers(1990, 2030, 500), rng.integers(1, 13, 500), rng.integers(1, 29, 500), rng.integers(0, 24, 500)
    )] + ["", "soon", "2021-13-01"]
    pattern = write_shards(pa.table({"when": texts}), tmp_path / "csv", 2)
    spec = FeatureSpec({"when": {"type": "date", "components": COMPONENTS, "missing_indicator": True}})
    run_analysis(spec, pattern, str(tmp_path / "bundle"))
    bundle = kdp_beam.load_bundle(str(tmp_path / "bundle"))
    stats = bundle.features["when"]
    years = np.array([int(t[:4]) for t in texts[:500]], dtype=float)
    assert stats["missing_count"] == 3 and stats["unparseable_count"] == 2
    assert abs(stats["year_mean"] - years.mean()) < 1e-9

    fs = kdp_beam.FeatureSpace.from_artifacts(bundle)
    batch = {"when": np.array(texts[-10:] + [None], dtype=object)}
    got = np.asarray(fs(batch))
    expected = [expected_row(t or "", years.mean(), years.std(), True) for t in batch["when"]]
    np.testing.assert_allclose(got, expected, atol=2e-6)
    fs.save(str(tmp_path / "fs.keras"))
    loaded = keras.models.load_model(str(tmp_path / "fs.keras"))
    np.testing.assert_array_equal(np.asarray(loaded(batch)), got)
