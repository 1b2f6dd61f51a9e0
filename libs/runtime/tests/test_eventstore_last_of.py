"""Reading the last event of many subjects at once."""

from __future__ import annotations

from datetime import UTC, datetime

from wacast.contracts.devices import DeviceRegistered, DeviceRenamed
from wacast.contracts.streams import DEVICES
from wacast.contracts.subjects import Topology
from wacast.runtime.eventstore import LAST_OF_CHUNK, EventStore

AT = datetime(2030, 1, 1, tzinfo=UTC)


async def test_last_of_gives_each_subjects_last_event_and_leaves_out_empty_ones(
    store: EventStore, streams: Topology
) -> None:
    count = LAST_OF_CHUNK + 44  # more than one request
    for n in range(count):
        event = DeviceRegistered(
            tenant_id="acme", occurred_at=AT, device_id=f"d{n}", name=f"n{n}", driver="sim"
        )
        await store.append(event.subject(streams), [event], msg_id=f"r{n}", expected=0)
    renamed = DeviceRenamed(tenant_id="acme", occurred_at=AT, device_id="d7", name="seven")
    last = await store.append(renamed.subject(streams), [renamed], msg_id="x", expected=None)
    wanted = [streams.device("acme", f"d{n}") for n in range(count)]
    wanted += [streams.device("acme", "nobody"), streams.device("acme", "d7")]

    found = await store.last_of(DEVICES, wanted)

    assert len(found) == count
    seven = found[streams.device("acme", "d7")]
    assert (seven.seq, seven.event) == (last.seq, renamed)
    assert found[streams.device("acme", "d299")].seq == await store.last_seq(
        DEVICES, streams.device("acme", "d299")
    )
    assert await store.last_of(DEVICES, [streams.device("acme", "nobody")]) == {}


async def test_events_read_back_carry_the_message_id_they_were_appended_with(
    store: EventStore, streams: Topology
) -> None:
    subject = streams.device("acme", "ided")
    renamed = [
        DeviceRenamed(tenant_id="acme", occurred_at=AT, device_id="ided", name=name)
        for name in "ab"
    ]
    await store.append(subject, renamed[:1], msg_id="first", expected=0)
    await store.append(subject, renamed[1:], msg_id="second", expected=None)

    assert [s.msg_id for s in await store.load(DEVICES, subject)] == ["first", "second"]
    assert (await store.last_of(DEVICES, [subject]))[subject].msg_id == "second"
