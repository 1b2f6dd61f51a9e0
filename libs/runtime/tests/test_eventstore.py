"""The event store's promises: optimistic concurrency, idempotent publish, atomic batches."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from wacast.contracts.devices import DeviceRegistered, DeviceRenamed
from wacast.contracts.streams import DEVICES
from wacast.contracts.subjects import Topology
from wacast.runtime.eventstore import (
    Append,
    Conflict,
    DuplicateInBatch,
    EventStore,
    retry_on_conflict,
)

AT = datetime(2030, 1, 1, tzinfo=UTC)


def registered(device_id: str, name: str = "front desk") -> DeviceRegistered:
    return DeviceRegistered(
        tenant_id="acme", occurred_at=AT, device_id=device_id, name=name, driver="sim"
    )


def renamed(device_id: str, name: str) -> DeviceRenamed:
    return DeviceRenamed(tenant_id="acme", occurred_at=AT, device_id=device_id, name=name)


async def stored_count(store: EventStore, subject: str) -> int:
    return len(await store.load(DEVICES, subject))


async def test_two_concurrent_appends_with_the_same_expected_sequence_one_wins(
    store: EventStore, streams: Topology
) -> None:
    subject = streams.device("acme", "d1")
    await store.append(subject, [registered("d1")], msg_id="reg-d1", expected=0)

    results = await asyncio.gather(
        store.append(subject, [renamed("d1", "a")], msg_id="cmd-a", expected=1),
        store.append(subject, [renamed("d1", "b")], msg_id="cmd-b", expected=1),
        return_exceptions=True,
    )

    conflicts = [r for r in results if isinstance(r, Conflict)]
    successes = [r for r in results if not isinstance(r, BaseException)]
    assert len(conflicts) == 1
    assert len(successes) == 1
    assert await stored_count(store, subject) == 2


async def test_a_publish_retried_with_the_same_message_id_stores_one_message(
    store: EventStore, streams: Topology
) -> None:
    subject = streams.device("acme", "d2")
    first = await store.append(subject, [registered("d2")], msg_id="reg-d2", expected=None)
    again = await store.append(subject, [registered("d2")], msg_id="reg-d2", expected=None)

    assert again.duplicate
    assert again.seq == first.seq
    assert await stored_count(store, subject) == 1


async def test_an_atomic_batch_with_one_conflicting_item_stores_nothing(
    store: EventStore, streams: Topology
) -> None:
    taken = streams.device("acme", "taken")
    await store.append(taken, [registered("taken")], msg_id="reg-taken", expected=0)
    items = [
        Append(streams.device("acme", f"new{i}"), registered(f"new{i}"), f"new{i}", expected=0)
        for i in range(5)
    ]
    items.append(Append(taken, registered("taken"), "reg-taken-again", expected=0))

    with pytest.raises(Conflict):
        await store.append_batch(items)

    for i in range(5):
        assert await stored_count(store, streams.device("acme", f"new{i}")) == 0


async def test_an_atomic_batch_is_stored_whole_and_in_order(
    store: EventStore, streams: Topology
) -> None:
    items = [
        Append(streams.device("acme", f"b{i}"), registered(f"b{i}"), f"b{i}", expected=0)
        for i in range(50)
    ]
    appended = await store.append_batch(items)

    assert appended.stream == DEVICES.name(streams)
    loaded = [await store.load(DEVICES, streams.device("acme", f"b{i}")) for i in range(50)]
    seqs = [events[0].seq for events in loaded]
    assert seqs == sorted(seqs)
    assert seqs[-1] == appended.seq


async def test_a_batch_repeating_a_stored_message_id_is_refused_whole(
    store: EventStore, streams: Topology
) -> None:
    await store.append(streams.device("acme", "x"), [registered("x")], msg_id="x", expected=0)
    items = [
        Append(streams.device("acme", "y"), registered("y"), "y"),
        Append(streams.device("acme", "x"), registered("x"), "x"),
    ]
    with pytest.raises(DuplicateInBatch):
        await store.append_batch(items)
    assert await stored_count(store, streams.device("acme", "y")) == 0


async def test_several_events_to_one_aggregate_append_atomically_and_load_in_order(
    store: EventStore, streams: Topology
) -> None:
    subject = streams.device("acme", "d3")
    events = [registered("d3"), renamed("d3", "one"), renamed("d3", "two")]
    await store.append(subject, events, msg_id="create-d3", expected=0)

    loaded = await store.load(DEVICES, subject)
    assert [s.event for s in loaded] == events
    assert await store.last_seq(DEVICES, subject) == loaded[-1].seq
    with pytest.raises(Conflict):
        await store.append(subject, [renamed("d3", "late")], msg_id="late", expected=1)


async def test_retry_on_conflict_decides_again_on_fresh_state(
    store: EventStore, streams: Topology
) -> None:
    subject = streams.device("acme", "d4")
    await store.append(subject, [registered("d4")], msg_id="reg-d4", expected=0)

    async def rename(name: str) -> int:
        async def attempt() -> int:
            last = await store.last_seq(DEVICES, subject)
            await asyncio.sleep(0)  # let the other writer read the same state
            done = await store.append(
                subject, [renamed("d4", name)], msg_id=f"{name}-{last}", expected=last
            )
            return done.seq

        return await retry_on_conflict(attempt)

    await asyncio.gather(*(rename(f"n{i}") for i in range(5)))
    assert await stored_count(store, subject) == 6
