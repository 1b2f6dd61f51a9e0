"""An owner may answer several commands at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from faststream.nats import NatsBroker
from nats.aio.client import Client

from wacast.contracts.base import Reply
from wacast.contracts.commands import DeviceCommand, RenameDevice
from wacast.contracts.subjects import Topology
from wacast.runtime.commands import Requester, serve_commands
from wacast.runtime.testing import until_answering


@pytest.fixture
async def broker(nats_url: str) -> AsyncIterator[NatsBroker]:
    created = NatsBroker(nats_url)
    await created.connect()
    yield created
    await created.stop()


async def test_commands_are_answered_concurrently_with_several_workers(
    broker: NatsBroker, nc: Client, streams: Topology
) -> None:
    in_flight = 0
    all_in = asyncio.Event()

    async def waits_for_the_others(command: DeviceCommand) -> Reply:
        # Each answer waits until all eight are being handled: one worker at a time would
        # never get there and every request would time out.
        nonlocal in_flight
        in_flight += 1
        if in_flight == 8:
            all_in.set()
        await asyncio.wait_for(all_in.wait(), 10)
        return Reply(ok=True)

    serve_commands(broker, streams, "devices", DeviceCommand, waits_for_the_others, max_workers=8)
    await broker.start()
    await until_answering(nc, f"{streams.prefix}.cmd.devices.Probe")
    requester = Requester(nc, streams, timeout=15)

    replies = await asyncio.gather(
        *(
            requester.send(RenameDevice(tenant_id="acme", device_id=f"d{i}", name="x"))
            for i in range(8)
        )
    )

    assert all(reply.ok for reply in replies), replies
    assert in_flight == 8
