"""`python -m bench.sim_scale` runs end to end at a tiny size and reports every figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.timeout(60)
def test_the_scale_bench_runs_at_a_tiny_size() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.sim_scale", "--devices", "50", "--no-save"],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout)
    assert result["devices"] == 50
    for key in ("link_all_s", "connect_all_s", "sends_per_s", "sim_rss_linked_mb"):
        assert result[key] > 0, key
    assert (result["sim_received"], result["sim_duplicates"]) == (50, 0)
    assert result["socket_connects"] == 2
