"""End to end with the real device-gateway and the WhatsApp simulator: a device paired
through the API shows its QR code live, then goes connected on the socket within a second."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
import websockets

from wacast.api_gateway.app import create_app
from wacast.api_gateway.gateway import Gateway
from wacast.api_gateway.settings import Settings
from wacast.contracts import tenants as tn
from wacast.contracts.commands import CreateTenant, IssueApiKey
from wacast.contracts.subjects import Topology
from wacast.device_gateway.settings import Settings as DeviceSettings
from wacast.device_gateway.testing import InProcessGateway, Simulator
from wacast.runtime.clock import SystemClock
from wacast.runtime.embedded import free_port
from wacast.runtime.health import http_server
from wacast.runtime.provisioning import ensure_streams

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
async def live_stack(nats_url: str, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """(base URL, API key) of an api-gateway in front of a real device-gateway."""
    topology = Topology(f"l{uuid.uuid4().hex[:10]}")
    nc = await nats.connect(nats_url)
    await ensure_streams(nc, topology)
    sim = Simulator(tmp_path / "sim.log", pair_delay=0.3).start()
    devices = InProcessGateway(
        DeviceSettings(
            nats_url=nats_url,
            namespace=topology.prefix,
            sim_url=sim.url,
            replica_id="gw-live",
            lease_ttl_seconds=10.0,
            lease_renew_seconds=1.0,
            log_format="text",
        )
    )
    api = Gateway.build(
        Settings(nats_url=nats_url, namespace=topology.prefix, rate_limit_per_second=0),
        nc,
        topology,
        SystemClock(),
    )
    port = free_port()
    server = http_server(create_app(api), "127.0.0.1", port)
    server.config.timeout_graceful_shutdown = 5
    try:
        await devices.start()
        await api.start()
        key = tn.new_api_key()
        assert (await api.tenants.handle(CreateTenant(tenant_id="live", name="live"))).ok
        issued = IssueApiKey(
            tenant_id="live",
            key_id=tn.key_id_of(key),
            key_hash=tn.key_hash(key),
            name="test",
            prefix=tn.key_display_prefix(key),
        )
        assert (await api.tenants.handle(issued)).ok
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        yield f"127.0.0.1:{port}", key
        server.should_exit = True
        await task
    finally:
        await api.stop()
        await devices.stop()
        sim.stop()
        js = nc.jetstream()
        for info in await js.streams_info():
            name = info.config.name or ""
            if topology.prefix.upper() in name or topology.prefix in name:
                await js.delete_stream(name)
        await nc.close()


async def test_a_device_paired_through_the_api_shows_its_qr_and_goes_connected_within_a_second(
    live_stack: tuple[str, str],
) -> None:
    host, key = live_stack
    headers = {"Authorization": f"Bearer {key}"}
    seen: list[dict[str, Any]] = []
    async with (
        httpx.AsyncClient(base_url=f"http://{host}", headers=headers, timeout=10) as http,
        websockets.connect(f"ws://{host}/api/v1/live?access_token={key}") as socket,
    ):
        created = await http.post("/api/v1/devices", json={"name": "Sim", "driver": "sim"})
        assert created.status_code == 201, created.text
        device = created.json()["id"]
        paired = await http.post(f"/api/v1/devices/{device}/pair", json={"method": "qr"})
        assert paired.status_code == 202, paired.text
        image = b""
        while True:
            update = json.loads(await asyncio.wait_for(socket.recv(), 10))
            arrived = datetime.now(UTC)
            seen.append(update)
            if update["type"] == "device.qr" and not image:
                image = (await http.get(f"/api/v1/devices/{device}/qr")).content
            if update["type"] == "device" and update["status"] == "connected":
                break
        status = await http.get(f"/api/v1/devices/{device}")

    connected_at = datetime.fromisoformat(update["at"])
    assert update["device_id"] == device
    assert (arrived - connected_at).total_seconds() < 1.0
    assert any(u["type"] == "device.qr" and u["method"] == "qr" for u in seen)
    assert image.startswith(PNG)
    assert status.status_code in (200, 503)  # no report-service runs here
