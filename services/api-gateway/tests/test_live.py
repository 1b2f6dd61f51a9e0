"""`/api/v1/live`: a tenant's device status changes, linking prompts and progress arrive
over a WebSocket within a second; heartbeats keep it open; a slow client is dropped
without holding anyone up."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import websockets

from wacast.api_gateway.live import LiveHub
from wacast.contracts import queries as q
from wacast.contracts.base import encode
from wacast.runtime.clock import SystemClock

from .conftest import Caller, Stack


@pytest.fixture
def server(http_url: str) -> str:
    return http_url.replace("http://", "ws://") + "/api/v1/live"


async def next_of(socket: Any, kind: str, timeout: float = 2.0) -> tuple[dict[str, Any], float]:
    """The next update of `kind`, and when it arrived (monotonic)."""
    deadline = time.monotonic() + timeout
    while True:
        raw = await asyncio.wait_for(socket.recv(), max(0.01, deadline - time.monotonic()))
        update = json.loads(raw)
        if update["type"] == kind:
            return update, time.monotonic()


async def test_a_device_going_connected_reaches_the_socket_within_a_second(
    stack: Stack, server: str, acme: Caller
) -> None:
    device = (
        await acme.http.post("/api/v1/devices", json={"name": "Live", "driver": "sim"})
    ).json()["id"]
    async with websockets.connect(f"{server}?access_token={acme.key}") as socket:
        started = time.monotonic()
        await stack.devices.connect(acme.tenant_id, device)
        while True:
            update, arrived = await next_of(socket, "device")
            if update["status"] == "connected":
                break

    assert update["device_id"] == device
    assert update["event"] == "DeviceConnected"
    assert arrived - started < 1.0


async def test_prompts_and_heartbeats_arrive_and_other_tenants_updates_do_not(
    stack: Stack, server: str, acme: Caller, umbrella: Caller
) -> None:
    theirs = (
        await umbrella.http.post("/api/v1/devices", json={"name": "T", "driver": "sim"})
    ).json()["id"]
    mine = (await acme.http.post("/api/v1/devices", json={"name": "M", "driver": "sim"})).json()[
        "id"
    ]
    async with websockets.connect(
        server, additional_headers={"Authorization": f"Bearer {acme.key}"}
    ) as socket:
        await umbrella.http.post(f"/api/v1/devices/{theirs}/pair", json={"method": "qr"})
        await acme.http.post(f"/api/v1/devices/{mine}/pair", json={"method": "qr"})
        prompt, _ = await next_of(socket, "device.qr")
        beat, _ = await next_of(socket, "heartbeat", timeout=3)
        received: list[dict[str, Any]] = []
        try:
            while True:
                received.append(json.loads(await asyncio.wait_for(socket.recv(), 0.3)))
        except TimeoutError:
            pass

    assert prompt["device_id"] == mine
    assert prompt["method"] == "qr"
    assert beat["at"]
    assert all(u.get("device_id") != theirs for u in received)


async def test_a_socket_without_a_valid_key_is_refused(server: str) -> None:
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        async with websockets.connect(f"{server}?access_token=wrong"):
            pass
    assert refused.value.response.status_code in (401, 403)  # refused before the upgrade


async def test_a_client_that_falls_behind_is_dropped_and_others_keep_receiving() -> None:
    hub = LiveHub(None, None, SystemClock(), queue_size=3)  # type: ignore[arg-type]
    slow = hub.join("acme")
    quick = hub.join("acme")
    update = encode(
        q.LiveCampaignProgress(at=datetime.now(UTC), campaign_id="c", counts=q.CampaignCounts())
    )

    started = time.monotonic()
    for _ in range(1000):
        hub.send("acme", update)
        while not quick.queue.empty():
            quick.queue.get_nowait()

    assert time.monotonic() - started < 0.5
    assert slow.dropped.is_set()
    assert not quick.dropped.is_set()
