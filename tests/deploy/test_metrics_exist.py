"""Every metric a dashboard panel or an alert rule uses is exported by a running wacast.

The test starts the embedded stack the way `./dev up --ports auto` does, scrapes every
process's `/metrics` once everything is up, and looks each used metric up in the `# HELP` /
`# TYPE` lines (prometheus_client writes those for every registered family, also before it
has samples, so a metric that exists but has not counted anything yet still counts).
"""

from __future__ import annotations

import re
import signal
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.deploy import promql
from tests.devup import dev_up

UP_DEADLINE = 80.0
STOP_DEADLINE = 20.0


def scrape(urls: list[str]) -> dict[str, set[str]]:
    """Metrics URL -> metric family names on its HELP/TYPE lines."""
    found: dict[str, set[str]] = {}
    for url in urls:
        response = httpx.get(url, timeout=10)
        assert response.status_code == 200, url
        found[url] = promql.exported_families(response.text)
    return found


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_every_metric_of_the_dashboards_and_alerts_is_exported() -> None:
    # Not tmp_path: a concurrent pytest session on the machine may prune pytest's directories.
    with tempfile.TemporaryDirectory(prefix="wacast-metrics-") as data:
        run_and_scrape(Path(data) / "var")


def run_and_scrape(data: Path) -> None:
    used = promql.used_metrics()
    with dev_up(data, up_deadline=UP_DEADLINE) as (proc, output):
        text = output.text
        health = sorted(set(re.findall(r"http://127\.0\.0\.1:\d+/healthz", text)))
        assert len(health) == 7, text
        families = scrape([url.replace("/healthz", "/metrics") for url in health])
        everything = set().union(*families.values())
        missing = {
            metric: sorted(where)
            for metric, where in sorted(used.items())
            if not promql.exported(metric, everything)
        }
        assert not missing, f"used but exported by no service: {missing}"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(STOP_DEADLINE) == 0
