"""bench/bus.py runs end to end at a tiny size and reports every figure (no timing checks)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bus.py"
FIGURES = (
    "raw_pipelined_publish_per_s",
    "raw_atomic_batch_per_s",
    "eventstore_append_per_s",
    "eventstore_batch_append_per_s",
    "append_ratio",
    "batch_append_ratio",
    "projection_apply_per_s",
)


@pytest.mark.timeout(60)
def test_the_bus_bench_runs_at_a_tiny_size_and_prints_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--events", "2000", "--no-save"],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout)
    for key in FIGURES:
        assert isinstance(result[key], int | float), key
        assert result[key] > 0, key
    assert set(result["meets_aims"]) == set(result["aims"])
    assert result["machine"]["nats_server"]
    assert result["sizes"]["projection_events"] == 2000
