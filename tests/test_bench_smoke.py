"""The benchmarks run end to end at a tiny size and report every figure (no timing checks)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from wacast.cli.commands_bench import save

ROOT = Path(__file__).resolve().parents[1]
WACAST = Path(sys.executable).parent / "wacast"
FIGURES = (
    "raw_pipelined_publish_per_s",
    "raw_atomic_batch_per_s",
    "eventstore_append_per_s",
    "eventstore_batch_append_per_s",
    "append_ratio",
    "batch_append_ratio",
    "projection_apply_per_s",
)


def printed_json(*command: str, timeout: float) -> dict[str, Any]:
    """`command` run from the repository root (as `wacast bench` runs a script); its JSON."""
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def bench(*args: str, timeout: float) -> dict[str, Any]:
    """`wacast bench ... --no-save`; its JSON."""
    return printed_json(str(WACAST), "bench", *args, "--no-save", timeout=timeout)


@pytest.mark.timeout(60)
def test_the_bus_bench_runs_at_a_tiny_size_and_prints_every_figure_and_saves_them_to_out(
    tmp_path: Path,
) -> None:
    out = tmp_path / "bus.json"
    result = printed_json(
        sys.executable, "-m", "bench.bus", "--events", "2000", "--out", str(out), timeout=50
    )

    for key in FIGURES:
        assert isinstance(result[key], int | float), key
        assert result[key] > 0, key
    assert set(result["meets_aims"]) == set(result["aims"])
    assert result["machine"]["nats_server"]
    assert result["sizes"]["projection_events"] == 2000
    assert json.loads(out.read_text()) == result


@pytest.mark.timeout(120)
def test_the_rebuild_bench_replays_every_event_into_report_tables_that_hold_every_message() -> None:
    result = bench("rebuild", "--events", "3000", timeout=110)

    # a tenant, 100 devices x 3 and 10 campaigns x 2, then 8 events per lead
    assert result["events"] == 321 + 8 * ((3000 - 321) // 8)
    assert sum(result["events_per_stream"].values()) == result["events"]
    leads = (3000 - 321) // 8
    assert result["rows"] == {
        "messages": leads,
        "messages_read": leads,
        "campaign_count_total": leads,
        "leads": leads,
    }
    assert result["rebuild_per_s"] > 0
    assert result["noop_replay_per_s"] > 0
    assert (
        0
        < result["rebuild_ratio"]
        == pytest.approx(result["rebuild_per_s"] / result["noop_replay_per_s"], rel=0.01)
    )
    assert set(result["cpu_during_rebuild"]["cpu_seconds"]) == {"bench", "nats-server", "postgres"}
    assert result["command"] == "wacast bench rebuild --events 3000"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_e2e_bench_sends_a_whole_campaign_through_the_stack_and_reports_its_figures(
    tmp_path: Path,
) -> None:
    result = bench(
        "e2e", "--devices", "5", "--leads", "200", "--plot-dir", str(tmp_path), timeout=280
    )

    assert result["completed"] is True
    assert result["messages"] == 200
    assert result["report_totals"] == {"total": 200, "pending": 0, "success": 200, "failed": 0}
    assert result["sent"] == 200
    assert result["messages_per_minute"] > 0
    assert 0 < result["time_to_first_send_s"] < result["seconds"]
    assert result["projection_lag_p50_s"] <= result["projection_lag_p99_s"]
    assert result["raw_atomic_batch_per_s"] > 0
    assert result["e2e_ratio"] == pytest.approx(
        result["messages_per_s"] / result["raw_atomic_batch_per_s"], rel=0.01
    )
    services = {"device-gateway", "campaign-service", "report-service", "wa-simulator", "nats"}
    assert services <= set(result["peak_rss_mb"])
    assert all(mb > 0 for mb in result["peak_rss_mb"].values())
    assert set(result["meets_aims"]) == set(result["aims"])
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "e2e-cpu.png",
        "e2e-lag.png",
        "e2e-throughput.png",
    ]


@pytest.mark.timeout(300)
def test_the_scale_bench_paces_every_device_and_reports_accuracy_memory_and_rate() -> None:
    result = bench(
        "scale", "--devices", "40", "--pace-messages", "2", "--gap-min", "0.3", "--gap-max",
        "0.6", "--burst", "1", "--timeout", "120", timeout=290,
    )  # fmt: skip

    assert result["devices"] == 40
    assert result["pacing"]["devices"] == 40  # every device paced, not the gateway bench's 200
    assert result["pacing"]["gaps"] == 40
    assert result["pacing"]["gap_range_seconds"] == [0.3, 0.6]
    assert 0 < result["pacing"]["pacing_accuracy"] <= 1
    assert result["rss_per_device_kb"] > 0
    assert result["throughput"]["messages"] == 40
    assert result["throughput"]["sends_per_second_wall"] > 0


def test_a_result_is_saved_with_a_timestamp_and_as_the_latest(tmp_path: Path) -> None:
    first = save("rebuild", {"events": 1}, tmp_path)
    save("e2e", {"messages": 2}, tmp_path)

    assert first.name.startswith("rebuild-2")
    assert first.suffix == ".json"
    assert json.loads(first.read_text()) == {"events": 1}
    assert json.loads((tmp_path / "rebuild-latest.json").read_text()) == {"events": 1}
    assert json.loads((tmp_path / "e2e-latest.json").read_text()) == {"messages": 2}


def test_an_unknown_benchmark_is_refused_with_the_known_names() -> None:
    done = subprocess.run(
        [str(WACAST), "bench", "nope"], capture_output=True, text=True, check=False, cwd=ROOT
    )

    assert done.returncode == 2
    assert "no benchmark 'nope'" in done.stderr
    assert "e2e" in done.stderr


@pytest.mark.timeout(120)
def test_the_webhooks_bench_delivers_every_event_once_and_reports_both_rates() -> None:
    source = ROOT / "services" / "webhook-service" / "src"
    result = printed_json(
        sys.executable, "-m", "bench.webhooks",
        *("--events", "50", "--baseline", str(source), "--no-save"), timeout=110,
    )  # fmt: skip

    for run in (result, result["baseline"]):
        assert run["delivered"] == run["distinct_webhook_ids"] == 50
        assert run["delivered_per_s"] > 0
    assert result["raw_receiver_per_s"] > 0
    assert result["speedup"] > 0
