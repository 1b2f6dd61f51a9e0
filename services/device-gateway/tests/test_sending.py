"""Sending through the wa-simulator: paced lanes, one send in flight, one outcome each."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from nats.aio.client import Client

from wacast.contracts import messages as m
from wacast.contracts.commands import DeleteDevice, RegisterDevice, StartPairing
from wacast.contracts.subjects import Topology
from wacast.contracts.values import Pacing
from wacast.device_gateway.testing import (
    InProcessGateway,
    Simulator,
    device_state,
    eventually,
    outcomes,
    request_send,
)
from wacast.runtime.commands import Requester
from wacast.runtime.eventstore import EventStore

T = "acme"
PACING = Pacing(min_seconds=0.1, max_seconds=0.4)
LATE = 0.25
"""How late a send may arrive on a loaded machine (the event loop's delay; a CI run saw
0.09 s): never early, and the gap a lane draws is always within the range
(`test_properties_lane`); `wacast bench scale` measures how often a send is late."""


async def paired(requester: Requester, store: EventStore, device_ids: list[str]) -> None:
    for device_id in device_ids:
        reply = await requester.send(
            RegisterDevice(tenant_id=T, name=device_id, driver="sim", device_id=device_id)
        )
        assert reply.ok, reply.problem
        assert (await requester.send(StartPairing(tenant_id=T, device_id=device_id))).ok

    async def all_connected() -> bool:
        states = [await device_state(store, T, d) for d in device_ids]
        return all(s.status == "connected" for s in states)

    await eventually(all_connected, 15, "every device connected")


async def ledger(sim: Simulator, device_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await sim.get("/sim/v1/ledger", device_id=device_id))["entries"]
    return found


async def test_sends_keep_their_gaps_within_the_range_one_at_a_time_with_one_outcome_each(
    nc: Client,
    store: EventStore,
    streams: Topology,
    gateway: InProcessGateway,
    sim: Simulator,
    ids: Callable[[str], str],
) -> None:
    devices = [ids(f"pace-{i}") for i in range(3)]
    await paired(Requester(nc, streams, timeout=5), store, devices)
    messages = {d: [f"{d}-m{i}" for i in range(8)] for d in devices}
    for d, mids in messages.items():
        for i, mid in enumerate(mids):
            await request_send(
                store, T, d, mid, pacing=PACING, to=f"+551198{i + 1:07d}", text=f"hi {i}"
            )
    everyone = [mid for mids in messages.values() for mid in mids]

    async def all_read() -> bool:
        done = [await outcomes(store, T, mid) for mid in everyone]
        return all(any(isinstance(e, m.MessageRead) for e in events) for events in done)

    await eventually(all_read, 20, "every message sent, delivered and read")
    stats = await sim.stats()
    for d in devices:
        entries = await ledger(sim, d)
        assert sorted(e["origin_message_id"] for e in entries) == sorted(messages[d])
        assert not any(e["duplicate"] for e in entries)
        gaps = stats["gaps"][d]
        assert gaps["count"] == 7
        assert PACING.min_seconds <= gaps["min"], gaps
        assert gaps["max"] <= PACING.max_seconds + LATE, gaps
        assert PACING.min_seconds < gaps["mean"] < PACING.max_seconds, gaps
        assert stats["in_flight_max"][d] == 1
    for mid in everyone:
        kinds = [type(e).__name__ for e in await outcomes(store, T, mid)]
        assert kinds == ["MessageSent", "MessageDelivered", "MessageRead"], (mid, kinds)


async def test_deleting_a_device_cancels_its_waiting_messages_and_logs_it_out(
    nc: Client,
    store: EventStore,
    streams: Topology,
    gateway: InProcessGateway,
    sim: Simulator,
    ids: Callable[[str], str],
) -> None:
    device = ids("doomed")
    requester = Requester(nc, streams, timeout=5)
    await paired(requester, store, [device])
    slow = Pacing(min_seconds=30, max_seconds=40)
    for i in range(3):
        await request_send(store, T, device, f"{device}-m{i}", pacing=slow)
    lane = streams.lane(T, device)

    async def accepted() -> bool:
        return len(await store.load(m_stream(), lane)) >= 3

    await eventually(accepted, 10, "requests recorded in the lane")
    assert (await requester.send(DeleteDevice(tenant_id=T, device_id=device))).ok

    async def deleted() -> bool:
        return (await device_state(store, T, device)).status == "deleted"

    await eventually(deleted, 10, "the device deleted")
    events = [s.event for s in await store.load(m_stream(), lane)]
    cancelled = {e.message_id for e in events if isinstance(e, m.MessageCancelled)}
    sent = {e.message_id for e in events if isinstance(e, m.MessageDispatching)}
    assert sent | cancelled == {f"{device}-m{i}" for i in range(3)}
    assert all(e.reason == "device_deleted" for e in events if isinstance(e, m.MessageCancelled))
    assert (await sim.get(f"/sim/v1/devices/{device}"))["status"] != "linked"
    await asyncio.sleep(0)


def m_stream() -> Any:
    from wacast.contracts.streams import MESSAGES

    return MESSAGES
