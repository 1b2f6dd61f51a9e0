"""Concurrent single appends are stored in atomic batches, each keeping its own checks."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from wacast.contracts.devices import DeviceRenamed
from wacast.contracts.streams import DEVICES
from wacast.contracts.subjects import Topology
from wacast.runtime.coalescer import Coalescer
from wacast.runtime.eventstore import Append, Appended, AppendFailed, Conflict, EventStore

AT = datetime(2030, 1, 1, tzinfo=UTC)


def renamed(store: EventStore, device: str, name: str, expected: int | None) -> Append:
    event = DeviceRenamed(tenant_id="acme", occurred_at=AT, device_id=device, name=name)
    return Append(store.topology.device("acme", device), event, f"{device}-{name}", expected)


async def test_concurrent_appends_share_batches_and_keep_their_sequences(
    store: EventStore, streams: Topology
) -> None:
    coalescer = Coalescer(store, flushers=1)
    try:
        results = await asyncio.gather(
            *(coalescer.append(renamed(store, f"d{i}", "a", 0)) for i in range(200))
        )
    finally:
        await coalescer.close()

    assert sorted(r.seq for r in results) == list(range(1, 201))
    for i, result in enumerate(results):
        [stored] = await store.load(DEVICES, streams.device("acme", f"d{i}"))
        assert stored.seq == result.seq


async def test_only_the_append_with_a_stale_expected_sequence_is_refused(
    store: EventStore, streams: Topology
) -> None:
    await store.append(
        streams.device("acme", "busy"),
        [renamed(store, "busy", "x", 0).event],
        msg_id="x",
        expected=0,
    )
    coalescer = Coalescer(store, flushers=1)
    try:
        outcomes = await asyncio.gather(
            coalescer.append(renamed(store, "busy", "y", 0)),
            *(coalescer.append(renamed(store, f"ok{i}", "a", 0)) for i in range(5)),
            return_exceptions=True,
        )
    finally:
        await coalescer.close()

    assert isinstance(outcomes[0], Conflict)
    assert all(not isinstance(o, BaseException) for o in outcomes[1:])
    assert len(await store.load(DEVICES, streams.device("acme", "busy"))) == 1


async def test_two_appends_expecting_the_same_subject_never_share_a_batch(
    store: EventStore, streams: Topology
) -> None:
    coalescer = Coalescer(store, flushers=1)
    try:
        outcomes = await asyncio.gather(
            coalescer.append(renamed(store, "twice", "a", 0)),
            coalescer.append(renamed(store, "twice", "b", 0)),
            return_exceptions=True,
        )
    finally:
        await coalescer.close()

    assert sorted(type(o).__name__ for o in outcomes) == ["Appended", "Conflict"]


async def test_a_group_is_stored_together_and_in_order(
    store: EventStore, streams: Topology
) -> None:
    subject = streams.device("acme", "grouped")
    group = [renamed(store, "grouped", name, 0 if name == "a" else None) for name in "abc"]
    coalescer = Coalescer(store, flushers=1)
    try:
        results = await asyncio.gather(
            coalescer.append_group(group),
            *(coalescer.append(renamed(store, f"x{i}", "a", 0)) for i in range(5)),
        )
    finally:
        await coalescer.close()

    stored = await store.load(DEVICES, subject)
    assert [s.event.name for s in stored] == ["a", "b", "c"]  # type: ignore[attr-defined]
    assert [s.seq for s in stored] == [results[0].seq - 2, results[0].seq - 1, results[0].seq]


class LosingAcks(EventStore):
    """Stores every batch, then loses the acknowledgement of the first `lose` of them (as a
    slow server does when the client's timeout runs out first)."""

    def __init__(self, store: EventStore, lose: int) -> None:
        super().__init__(store.nc, store.topology, store.timeout)
        self.lose = lose

    async def append_batch(self, items: Sequence[Append]) -> Appended:
        appended = await super().append_batch(items)
        if self.lose > 0:
            self.lose -= 1
            raise AppendFailed(408, f"no acknowledgement for the batch ending on {items[-1]}")
        return appended


async def test_a_batch_stored_without_acknowledgement_is_done_not_refused(
    store: EventStore, streams: Topology
) -> None:
    losing = LosingAcks(store, lose=1)
    coalescer = Coalescer(losing, flushers=1)
    group = [renamed(store, "lost", name, 0 if name == "a" else None) for name in "abc"]
    try:
        results = await asyncio.gather(
            coalescer.append_group(group),
            *(coalescer.append(renamed(store, f"l{i}", "a", 0)) for i in range(5)),
        )
    finally:
        await coalescer.close()

    assert losing.lose == 0  # the acknowledgement was lost
    stored = await store.load(DEVICES, streams.device("acme", "lost"))
    assert [s.event.name for s in stored] == ["a", "b", "c"]  # type: ignore[attr-defined]
    assert results[0].seq == stored[-1].seq
    assert results[0].duplicate
    for i, result in enumerate(results[1:]):
        [one] = await store.load(DEVICES, streams.device("acme", f"l{i}"))
        assert result.seq == one.seq


async def test_a_group_alone_stored_without_acknowledgement_is_done(
    store: EventStore, streams: Topology
) -> None:
    losing = LosingAcks(store, lose=1)
    coalescer = Coalescer(losing, flushers=1)
    group = [renamed(store, "alone", name, 0 if name == "a" else None) for name in "ab"]
    try:
        result = await coalescer.append_group(group)
    finally:
        await coalescer.close()

    assert losing.lose == 0
    stored = await store.load(DEVICES, streams.device("acme", "alone"))
    assert [s.seq for s in stored] == [result.seq - 1, result.seq]
    assert [s.msg_id for s in stored] == [i.msg_id for i in group]
