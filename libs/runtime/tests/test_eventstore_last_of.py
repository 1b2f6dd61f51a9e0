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
