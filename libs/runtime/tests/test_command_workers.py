"""An owner may answer several commands at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from faststream.nats import NatsBroker
from nats.aio.client import Client

from wacast.contracts.base import Reply
from wacast.contracts.commands import DeviceCommand, RenameDevice
from wacast.contracts.subjects import Topology
from wacast.runtime.commands import Requester, serve_commands


@pytest.fixture
async def broker(nats_url: str) -> AsyncIterator[NatsBroker]:
    created = NatsBroker(nats_url)
    await created.connect()
    yield created
    await created.stop()


async def test_commands_are_answered_concurrently_with_several_workers(
    broker: NatsBroker, nc: Client, streams: Topology
) -> None:
    async def slow(command: DeviceCommand) -> Reply:
        await asyncio.sleep(0.3)
        return Reply(ok=True)

    serve_commands(broker, streams, "devices", DeviceCommand, slow, max_workers=8)
    await broker.start()
    requester = Requester(nc, streams, timeout=5)
    started = time.monotonic()

    replies = await asyncio.gather(
        *(
            requester.send(RenameDevice(tenant_id="acme", device_id=f"d{i}", name="x"))
            for i in range(8)
        )
    )

    assert all(reply.ok for reply in replies)
    assert time.monotonic() - started < 1.5
