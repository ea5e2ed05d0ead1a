"""kdp-beam report renders in a real headless browser (Debian's chromium)."""

import math
import re
import shutil
import subprocess

import numpy as np
import pyarrow as pa
import pytest

from kdp_beam.cli import main
from kdp_beam.job import run_analysis
from kdp_beam.spec import FeatureSpec
from tests.conftest import write_shards

EVIL = "<script>alert(1)</script>"
SPEC = FeatureSpec(
    {
        "amount": "float_normalized",
        "age": {"type": "float_discretized", "num_bins": 4},
        EVIL: "string_categorical",
        "store": {"type": "integer_categorical", "max_tokens": 6},
        "review": {"type": "text", "max_tokens": 10},
        "day": "date",
        "user": {"type": "string_hashed", "num_bins": 8},
    },
    profile=True,
)


def chromium():
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is missing: `make test` installs it (apt-get install chromium)")
    return found


def test_report_renders_every_section_in_headless_chromium(tmp_path):
    rng = np.random.default_rng(0)
    rows = 2000
    table = pa.table(
        {
            "amount": rng.normal(100, 10, rows),
            "age": rng.integers(18, 90, rows).astype(float),
            EVIL: rng.choice([EVIL, "b", "c"], rows),
            "store": rng.integers(0, 20, rows),
            "review": [" ".join(rng.choice(["good", "bad", "ok"], 3)) for _ in range(rows)],
            "day": [f"2024-01-{d:02d}" if d < 29 else "?" for d in rng.integers(1, 31, rows)],
            "user": [f"u{i}" for i in rng.integers(0, 50, rows)],
        }
    )
    pattern = write_shards(table, tmp_path / "data", 2, fmt="parquet")
    run_analysis(SPEC, pattern, str(tmp_path / "bundle"))
    report = tmp_path / "report.html"
    assert main(["report", str(tmp_path / "bundle"), "--output", str(report)]) == 0
    page = report.read_text(encoding="utf-8")
    assert "src=" not in page and "<link" not in page and "http" not in page  # self-contained
    done = subprocess.run(
        [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--dump-dom", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    sections = re.findall(r'<section class="feature-section" id="feature-(\d+)">', dom)
    assert sections == [str(i) for i in range(len(SPEC.features))]
    assert dom.count('class="chart histogram"') == 2  # amount (profile), age (bins)
    assert dom.count('class="chart bars"') == 3  # the categorical, store, review
    assert "2024-01-01T00:00:00" in dom  # the date range
    assert "<script>" not in dom and "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # data is text
    assert re.search(r"coverage of values</th><td class=\"n\">100.0%", dom)
    screenshot = tmp_path / "report.png"
    subprocess.run(
        [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1100,1600", f"--screenshot={screenshot}", report.as_uri()],
        capture_output=True, timeout=120, check=True,
    )
    assert screenshot.stat().st_size > 20_000  # something was drawn


@pytest.mark.parametrize("scale", [5e-324, 1e-300, 1e150])
def test_a_column_of_any_scale_gets_its_histogram(tmp_path, scale):
    """The histogram is drawn in units of the column's range: subnormal values (whose range
    divided by a thousand underflows to 0) were a ZeroDivisionError, an internal error."""
    values = np.random.default_rng(1).integers(0, 5, 1000) * scale  # many ties: zero-width bins
    pattern = write_shards(pa.table({"x": values}), tmp_path / "data", 1, fmt="parquet")
    run_analysis(FeatureSpec({"x": "float_normalized"}, profile=True), pattern, str(tmp_path / "bundle"))
    report = tmp_path / "report.html"
    assert main(["report", str(tmp_path / "bundle"), "--output", str(report)]) == 0
    page = report.read_text(encoding="utf-8")
    rects = re.findall(r'<rect x="([^"]+)" y="([^"]+)" width="([^"]+)" height="([^"]+)"', page.split('class="chart histogram"')[1])
    assert rects and all(math.isfinite(float(v)) for rect in rects for v in rect)
    # The bins end at the plot's right edge (x + width = 10 + 440) whatever the scale.
    assert abs(float(rects[-1][0]) + float(rects[-1][2]) - 450) <= 1.5
