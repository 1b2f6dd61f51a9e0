"""SubjectReader replays what is stored, then follows what comes, and leaves nothing behind."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from nats.aio.client import Client

from wacast.contracts.devices import DeviceRenamed
from wacast.contracts.streams import DEVICES
from wacast.contracts.subjects import Topology
from wacast.runtime.eventstore import EventStore
from wacast.runtime.reader import SubjectReader

AT = datetime(2030, 1, 1, tzinfo=UTC)


def renamed(device: str, name: str) -> DeviceRenamed:
    return DeviceRenamed(tenant_id="acme", occurred_at=AT, device_id=device, name=name)


async def test_a_reader_replays_the_stored_messages_then_follows_new_ones(
    nc: Client, store: EventStore, streams: Topology
) -> None:
    for i in range(7):
        await store.append(
            streams.device("acme", f"d{i % 2}"),
            [renamed(f"d{i % 2}", f"n{i}")],
            msg_id=f"a{i}",
            expected=None,
        )
    stream = DEVICES.name(streams)

    async with SubjectReader(nc, stream, streams.all_of("device"), batch=3) as reader:
        replayed = [msg.data async for batch in reader.replay() for msg in batch]
        await store.append(
            streams.device("acme", "d9"), [renamed("d9", "late")], msg_id="b", expected=None
        )
        followed = []
        async for batch in reader.follow():
            followed.extend(batch)
            if followed:
                break

    assert len(replayed) == 7
    assert b"late" in followed[0].data
    assert reader.position == 8
    consumers = await nc.jetstream().consumers_info(stream)
    assert consumers == []


async def test_a_reader_can_read_only_the_last_message_of_each_subject(
    nc: Client, store: EventStore, streams: Topology
) -> None:
    for i in range(6):
        await store.append(
            streams.device("acme", f"d{i % 3}"),
            [renamed(f"d{i % 3}", f"n{i}")],
            msg_id=f"a{i}",
            expected=None,
        )

    async with SubjectReader(
        nc, DEVICES.name(streams), streams.all_of("device"), last_per_subject=True
    ) as reader:
        last = sorted(msg.data for batch in [b async for b in reader.replay()] for msg in batch)

    assert len(last) == 3
    assert all(b'"n3"' in d or b'"n4"' in d or b'"n5"' in d for d in last)


async def test_replaying_an_empty_subject_ends_at_once(nc: Client, streams: Topology) -> None:
    async with SubjectReader(nc, DEVICES.name(streams), streams.all_of("device")) as reader:
        batches = await asyncio.wait_for(_collect(reader), 2.0)

    assert batches == []


async def _collect(reader: SubjectReader) -> list[object]:
    return [batch async for batch in reader.replay()]


async def test_a_reader_resumes_after_the_last_message_when_its_consumer_is_lost(
    nc: Client, store: EventStore, streams: Topology
) -> None:
    subject = streams.device("acme", "d1")
    await store.append(subject, [renamed("d1", "one")], msg_id="a", expected=None)
    async with SubjectReader(
        nc, DEVICES.name(streams), streams.all_of("device"), idle=0.2
    ) as reader:
        [first] = [msg async for batch in reader.replay() for msg in batch]
        await nc.jetstream().delete_consumer(DEVICES.name(streams), reader._consumer)
        await store.append(subject, [renamed("d1", "two")], msg_id="b", expected=None)
        later = []
        async for batch in reader.follow():
            later.extend(batch)
            if later:
                break

    assert b"one" in first.data
    assert [b"two" in msg.data for msg in later] == [True]
