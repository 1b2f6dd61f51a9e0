"""Every metric a dashboard panel or an alert rule uses is exported by a running wacast.

The test starts the embedded stack the way `./dev up --ports auto` does, scrapes every
process's `/metrics` once everything is up, and looks each used metric up in the `# HELP` /
`# TYPE` lines (prometheus_client writes those for every registered family, also before it
has samples, so a metric that exists but has not counted anything yet still counts).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.deploy import promql

UP_DEADLINE = 80.0
STOP_DEADLINE = 20.0


class Output:
    """Lines of the stack's stdout, read in a thread so waiting has a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.lines:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {text!r} after {timeout}s:\n" + "\n".join(self.lines)
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            assert line is not None, "the stack exited early:\n" + "\n".join(self.lines)
            self.lines.append(line)


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
    env = {name: value for name, value in os.environ.items() if not name.startswith("WACAST_")}
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "wacast.cli.dev", "up", "--ports", "auto", "--data", str(data)],
        cwd=promql.ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output(proc)
    try:
        output.wait_for("wacast is up", UP_DEADLINE)
        text = "\n".join(output.lines)
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
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
