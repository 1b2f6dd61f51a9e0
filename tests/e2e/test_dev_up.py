"""`./dev up` end to end: the whole stack comes up healthy on free ports and Ctrl-C stops all of it.

The test runs `python -m wacast.cli.dev up` with the interpreter of the virtualenv the test
suite itself runs in. That is all `./dev` does after its bootstrap (install uv, `uv sync
--frozen`), and the suite could not be running if that bootstrap had not already happened;
skipping it keeps the test offline and fast.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import httpx
import pytest

from tests.devup import STOP_DEADLINE, dev_up
from wacast.cli.devstack import SERVICES


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


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_dev_up_serves_every_health_url_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    with dev_up(tmp_path / "var") as (proc, output):
        text = output.text
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
