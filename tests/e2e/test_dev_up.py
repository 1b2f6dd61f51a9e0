"""`./dev up` end to end: the whole stack comes up healthy on free ports and Ctrl-C stops all of it.

The test runs `python -m wacast.cli.dev up` with the interpreter of the virtualenv the test
suite itself runs in. That is all `./dev` does after its bootstrap (install uv, `uv sync
--frozen`), and the suite could not be running if that bootstrap had not already happened;
skipping it keeps the test offline and fast.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from wacast.cli.devstack import SERVICES

ROOT = Path(__file__).resolve().parents[2]
UP_DEADLINE = 120.0
STOP_DEADLINE = 30.0


def running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (FileNotFoundError, ProcessLookupError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


class Output:
    """Lines of a child's stdout, read in a thread so that waiting can have a deadline."""

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
            assert line is not None, "./dev up exited early:\n" + "\n".join(self.lines)
            self.lines.append(line)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_dev_up_serves_every_health_url_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("WACAST_")}
    env["PYTHONUNBUFFERED"] = "1"
    command = [sys.executable, "-m", "wacast.cli.dev", "up", "--ports", "auto"]
    proc = subprocess.Popen(
        [*command, "--data", str(tmp_path / "var")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output(proc)
    try:
        output.wait_for("wacast is up", UP_DEADLINE)
        text = "\n".join(output.lines)
        health = re.findall(r"http://127\.0\.0\.1:\d+/healthz", text)
        assert len(health) == len(SERVICES), text
        for url in health:
            assert httpx.get(url, timeout=5).status_code == 200, url
            ready = url.replace("/healthz", "/readyz")
            assert httpx.get(ready, timeout=5).status_code == 200, ready
        assert re.search(r"NATS +nats://127\.0\.0\.1:\d+", text)
        assert re.search(r"Postgres +postgresql://postgres@127\.0\.0\.1:\d+/wacast", text)
        api = re.search(r"API +(http://127\.0\.0\.1:\d+/api/v1)", text)
        key = re.search(r"API key +(wk_\S+) +\(tenant dev\)", text)
        assert api, text
        assert key, text
        auth = {"Authorization": f"Bearer {key.group(1)}"}
        listed = httpx.get(f"{api.group(1)}/devices", headers=auth, timeout=10)
        assert listed.status_code == 200, listed.text
        refused = httpx.get(f"{api.group(1)}/devices", headers={"Authorization": "Bearer x"})
        assert refused.status_code == 401
        metrics = httpx.get(api.group(1).removesuffix("/api/v1") + "/metrics", timeout=10).text
        expected = (
            'wacast_http_requests_total{method="GET",route="/api/v1/devices",'
            'service="api-gateway",status="200"}'
        )
        assert expected in metrics, metrics[:2000]
        children = descendants(proc.pid)
        assert len(children) >= 2 + len(SERVICES), "expected nats, postgres and every service"

        proc.send_signal(signal.SIGINT)

        assert proc.wait(STOP_DEADLINE) == 0
        assert [pid for pid in children if running(pid)] == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
