"""`python -m bench.campaigns` runs at a tiny size and reports every figure (no timings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.timeout(90)
def test_the_campaign_bench_runs_at_a_tiny_size_and_reports_every_figure() -> None:
    done = subprocess.run(
        [
            sys.executable,
            *("-m", "bench.campaigns", "--leads", "40", "--import-rows", "30", "--no-save"),
        ],
        capture_output=True,
        text=True,
        timeout=80,
        check=False,
        cwd=ROOT,
    )

    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout)
    assert result["fanout"]["requests"] == 40
    assert result["fanout"]["requests_per_s"] > 0
    assert result["fanout"]["rss_peak_growth_mb"] >= 0
    assert (result["import"]["rows"], result["import"]["created"]) == (30, 30)
    assert set(result["meets_aims"]) == set(result["aims"])
