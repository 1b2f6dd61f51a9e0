"""`running_stack`: the whole stack for tests, with two gateway replicas, a kill -9 the
supervisor heals, a NATS restart on the same port and data, a fresh tenant, and nothing left
running afterwards."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from wacast.cli.stackrun import SERVICE_NAMES, running_stack

KEY_WORKS_WITHIN = 3.0
"""Seconds from a key's issue to its first accepted request (after a NATS restart too)."""


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_running_stack_heals_a_kill_restarts_nats_and_stops_everything(
    tmp_path: Path,
) -> None:
    async with running_stack(tmp_path / "var", gateway_replicas=2) as s:
        pids = s.pids()
        expected = {"nats", "postgres", "device-gateway-2", *SERVICE_NAMES}
        assert set(pids) == expected
        assert s.gateways == ["device-gateway", "device-gateway-2"]
        assert s.ports["device-gateway"] != s.ports["device-gateway-2"]
        for name in s.gateways:
            env = s.process(name).spec.env
            assert env is not None
            assert env["WACAST_GATEWAY_PORT"] == str(s.ports[name])
        replica_ids = {s.process(n).spec.env["WACAST_REPLICA_ID"] for n in s.gateways}  # type: ignore[index]
        assert replica_ids == {"gateway-1", "gateway-2"}

        async with httpx.AsyncClient(timeout=10) as http:
            dev = {"Authorization": f"Bearer {s.api_key}"}
            assert (await http.get(f"{s.api_url}/devices", headers=dev)).status_code == 200

            killed = await s.kill("api-gateway")
            assert not alive(killed)
            await s.wait_healthy(["api-gateway"], 60)
            assert s.pids()["api-gateway"] != killed
            assert s.restarts()["api-gateway"] == 1

            nats_pid = pids["nats"]
            await s.restart("nats")
            restarted = time.monotonic()
            assert s.pids()["nats"] != nats_pid
            assert not alive(nats_pid)
            await s.wait_healthy(timeout=60)

            # A key issued after the restart works at once: the api-gateway's key index
            # follows TENANTS again (its ordered consumer, dropped by the restart, is
            # recreated after two missed one-second heartbeats).
            tenant = await s.create_tenant("stackrun-test")
            issued = time.monotonic()
            mine = {"Authorization": f"Bearer {tenant.key}"}
            deadline = issued + KEY_WORKS_WITHIN
            while (keys := await http.get(f"{s.api_url}/keys", headers=mine)).status_code != 200:
                assert time.monotonic() < deadline, keys.text
                await asyncio.sleep(0.1)
            print(
                f"nats restart: healthy again, tenant made {issued - restarted:.1f}s later, "
                f"its key worked {time.monotonic() - issued:.1f}s after that"
            )
            assert (await http.get(f"{s.api_url}/devices", headers=dev)).status_code == 200
        everything = list(s.pids().values())
    assert [pid for pid in everything if alive(pid)] == []
    assert (tmp_path / "var" / "logs" / "device-gateway-2.log").stat().st_size > 0
