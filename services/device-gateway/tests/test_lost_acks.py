"""A slow server stores an append but its acknowledgement never arrives: the replica that
made it must recognise it as its own (adopt it, send nothing twice, fail nothing as
`unknown`), and be fenced only by another owner's append."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import nats.errors
import pytest
from nats.aio.client import Client
from prometheus_client import REGISTRY

from wacast.contracts import messages as m
from wacast.contracts.streams import MESSAGES
from wacast.contracts.subjects import Topology
from wacast.contracts.values import Pacing
from wacast.device_gateway.outcomes import first_outcome
from wacast.device_gateway.receipts import Ref
from wacast.device_gateway.testing import (
    InProcessGateway,
    Simulator,
    eventually,
    outcomes,
    register_and_pair,
    request_send,
)
from wacast.runtime.coalescer import Coalescer
from wacast.runtime.commands import Requester
from wacast.runtime.eventstore import Append, Appended, AppendFailed, EventStore

T = "acme"
NOW = Pacing(min_seconds=0, max_seconds=0)


class LosingAcks(EventStore):
    """The gateway's event store, except that the first `times` appends (atomic batch or
    single publish) touching each watched subject reach the server and are stored, and then
    their acknowledgement is lost: 408 for a batch, a timeout for a publish."""

    def __init__(self, store: EventStore, watched: set[str], times: int = 2) -> None:
        super().__init__(store.nc, store.topology, store.timeout)
        self.watched = watched
        self.times = times
        self.lost: dict[str, int] = {}

    def _lose(self, subjects: list[str]) -> bool:
        hit = [s for s in dict.fromkeys(subjects) if s in self.watched]
        if not any(self.lost.get(s, 0) < self.times for s in hit):
            return False
        for s in hit:
            self.lost[s] = self.lost.get(s, 0) + 1
        return True

    async def _commit(
        self, subject: str, payload: bytes, headers: dict[str, str], items: Any
    ) -> Appended:
        appended = await super()._commit(subject, payload, headers, items)
        if self._lose([i.subject for i in items]):
            raise AppendFailed(408, f"no acknowledgement for the batch ending on {subject}")
        return appended

    async def _publish_one(
        self, subject: str, payload: bytes, headers: dict[str, str], expected: int | None
    ) -> Appended:
        appended = await super()._publish_one(subject, payload, headers, expected)
        if self._lose([subject]):
            raise nats.errors.TimeoutError
        return appended


def counted(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def ledger(sim: Simulator, device_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await sim.get("/sim/v1/ledger", device_id=device_id))["entries"]
    return found


async def lane_events(store: EventStore, topology: Topology, device: str) -> list[m.MessageEvent]:
    return [s.event for s in await store.load(MESSAGES, topology.lane(T, device))]  # type: ignore[misc]


async def all_sent(store: EventStore, mids: list[str]) -> bool:
    done = [await outcomes(store, T, mid) for mid in mids]
    return all(any(isinstance(e, m.MessageSent) for e in events) for events in done)


async def test_appends_stored_without_acknowledgement_are_adopted_not_taken_for_fencing(
    nc: Client,
    store: EventStore,
    streams: Topology,
    gateway: InProcessGateway,
    sim: Simulator,
    ids: Callable[[str], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    device = ids("lost-ack")
    await register_and_pair(Requester(nc, streams, timeout=5), store, T, [device])
    running = gateway.gateway
    assert running is not None
    mids = [f"{device}-m{i}" for i in range(5)]
    lane = streams.lane(T, device)
    losing = LosingAcks(store, {lane} | {streams.message(T, mid) for mid in mids})
    running.appender.store = losing
    fenced_before = counted("wacast_gateway_lanes_fenced_total")
    caplog.set_level(logging.INFO, logger="wacast.device_gateway")

    for i, mid in enumerate(mids):
        await request_send(store, T, device, mid, pacing=NOW, to=f"+551197{i + 1:07d}")
    await eventually(lambda: all_sent(store, mids), 20, "every message sent")

    assert losing.lost[lane] == 2  # the lane's first two appends lost their acknowledgement
    assert all(losing.lost.get(streams.message(T, mid), 0) >= 1 for mid in mids)
    entries = await ledger(sim, device)
    assert sorted(e["origin_message_id"] for e in entries) == sorted(mids)  # each sent once
    assert not any(e["duplicate"] for e in entries)
    for mid in mids:
        first = (await outcomes(store, T, mid))[0]
        assert isinstance(first, m.MessageSent), (mid, first)
        assert sum(isinstance(e, m.MessageSent) for e in await outcomes(store, T, mid)) == 1
    events = await lane_events(store, streams, device)
    accepted = [e.message_id for e in events if isinstance(e, m.MessageAccepted)]
    handed = [e.message_id for e in events if isinstance(e, m.MessageDispatching)]
    assert sorted(accepted) == sorted(handed) == sorted(mids)  # stored once, never twice
    assert not any(isinstance(e, m.LaneFenced) for e in events)
    assert counted("wacast_gateway_lanes_fenced_total") == fenced_before
    assert not any("fenced" in r.getMessage() for r in caplog.records)
    assert any("adopted" in r.getMessage() for r in caplog.records)


async def test_another_owners_append_still_fences_the_lane(
    nc: Client,
    store: EventStore,
    streams: Topology,
    gateway: InProcessGateway,
    ids: Callable[[str], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    device = ids("taken")
    await register_and_pair(Requester(nc, streams, timeout=5), store, T, [device])
    running = gateway.gateway
    assert running is not None
    await request_send(store, T, device, f"{device}-m0", pacing=NOW)
    await eventually(lambda: all_sent(store, [f"{device}-m0"]), 20, "the first message sent")
    lane = streams.lane(T, device)
    running.appender.store = LosingAcks(store, {lane}, times=1)  # ours unacknowledged, too
    fenced_before = counted("wacast_gateway_lanes_fenced_total")
    caplog.set_level(logging.INFO, logger="wacast.device_gateway")
    slot = running.lanes.slots[device]
    taken = m.LaneFenced(
        tenant_id=T, occurred_at=running.ctx.clock.now(), device_id=device, owner="gw-b",
        epoch=99,
    )  # fmt: skip
    await store.append_batch([Append(lane, taken, "another-owner", slot.lane.seq)])

    await request_send(store, T, device, f"{device}-m1", pacing=NOW)

    async def fenced() -> bool:
        return counted("wacast_gateway_lanes_fenced_total") > fenced_before

    await eventually(fenced, 20, "the lane fenced by the other owner's append")
    assert any("lane fenced by another replica" in r.getMessage() for r in caplog.records)


async def test_an_outcome_stored_without_acknowledgement_is_ours_and_still_excludes_others(
    store: EventStore, streams: Topology
) -> None:
    ref = Ref(T, "m-lost", "d-lost", "l1", "campaign", "c1").fields()
    sent = m.MessageSent(**ref, occurred_at=datetime.now(UTC), wa_message_id="wa-1", attempt=1)
    unknown = m.MessageFailed(
        **ref, occurred_at=datetime.now(UTC), reason="unknown", retryable=False, attempt=1
    )
    subject = streams.message(T, "m-lost")
    appender = Coalescer(LosingAcks(store, {subject}, times=1))
    try:
        assert await first_outcome(appender, sent, lambda: False)  # stored, ack lost, retried
        assert not await first_outcome(appender, unknown, lambda: False)
    finally:
        await appender.close()

    assert [type(s.event) for s in await store.load(MESSAGES, subject)] == [m.MessageSent]
