"""What people write to a device, through the simulator: matched to the tenant's lead by
phone (or kept as an unknown contact) and to the message it answers, once, across restarts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from nats.aio.client import Client

from wacast.contracts import messages as m
from wacast.contracts.ids import phone_key
from wacast.contracts.leads import LeadPhoneClaimed, LeadPhoneReleased
from wacast.contracts.streams import MESSAGES
from wacast.contracts.subjects import Topology
from wacast.contracts.values import Pacing
from wacast.device_gateway.drivers.base import Inbound
from wacast.device_gateway.settings import Settings
from wacast.device_gateway.testing import (
    InProcessGateway,
    Simulator,
    device_state,
    eventually,
    outcomes,
    register_and_pair,
    request_send,
)
from wacast.runtime.commands import Requester
from wacast.runtime.eventstore import EventStore

T = "acme"
LEAD_PHONE = "+5511987654321"
NOW_PACING = Pacing(min_seconds=0, max_seconds=0)


async def claim(store: EventStore, phone: str, lead_id: str, released: bool = False) -> None:
    """The campaign service's phone claim of a lead (what the gateway reads)."""
    key = phone_key(T, phone)
    cls = LeadPhoneReleased if released else LeadPhoneClaimed
    event = cls(tenant_id=T, occurred_at=datetime.now(UTC), phone_key=key, lead_id=lead_id)
    subject = store.topology.lead_phone(T, key)
    await store.append(subject, [event], msg_id=f"claim:{key}:{released}", expected=None)


async def inbound_of(store: EventStore, key: str) -> list[m.InboundMessageReceived]:
    stored = await store.load(MESSAGES, store.topology.inbound(T, key))
    return [s.event for s in stored if isinstance(s.event, m.InboundMessageReceived)]


async def wait_inbound(store: EventStore, key: str, count: int) -> list[m.InboundMessageReceived]:
    async def arrived() -> bool:
        return len(await inbound_of(store, key)) >= count

    await eventually(arrived, 15, f"{count} inbound message(s) on {key}")
    return await inbound_of(store, key)


async def sent(store: EventStore, message_id: str) -> None:
    async def done() -> bool:
        return any(isinstance(e, m.MessageSent) for e in await outcomes(store, T, message_id))

    await eventually(done, 15, f"{message_id} sent")


@pytest.fixture
async def device(
    nc: Client,
    store: EventStore,
    streams: Topology,
    gateway: InProcessGateway,
    ids: Callable[[str], str],
) -> tuple[str, str]:
    """A connected device and its phone."""
    device_id = ids("inbox")
    await register_and_pair(Requester(nc, streams, timeout=5), store, T, [device_id])
    return device_id, (await device_state(store, T, device_id)).phone


async def test_a_reply_from_a_lead_names_the_lead_and_the_message_it_answers(
    store: EventStore, sim: Simulator, device: tuple[str, str], ids: Callable[[str], str]
) -> None:
    device_id, phone = device
    lead = ids("lead")
    await claim(store, LEAD_PHONE, lead)
    message_id = ids("m")
    await request_send(
        store, T, device_id, message_id, to=LEAD_PHONE, lead_id=lead, pacing=NOW_PACING
    )
    await sent(store, message_id)

    await sim.post("/sim/v1/inbound", {"from": LEAD_PHONE, "to": phone, "text": "yes please"})

    [event] = await wait_inbound(store, lead, 1)
    assert (event.lead_id, event.device_id, event.sender) == (lead, device_id, LEAD_PHONE)
    assert event.contact_key == phone_key(T, LEAD_PHONE)
    assert (event.in_reply_to, event.origin, event.origin_id) == (message_id, "campaign", "c1")
    assert (event.text, event.media_type) == ("yes please", "")
    replied = [e for e in await outcomes(store, T, message_id) if isinstance(e, m.MessageReplied)]
    assert [(r.lead_id, r.text, r.wa_message_id) for r in replied] == [
        (lead, "yes please", event.wa_message_id)
    ]


async def test_a_message_from_an_unknown_number_is_kept_as_an_unknown_contact(
    store: EventStore, sim: Simulator, device: tuple[str, str], ids: Callable[[str], str]
) -> None:
    device_id, phone = device
    stranger = "+5511912340000"
    await claim(store, stranger, ids("gone"), released=True)  # a lead that let it go

    await sim.post("/sim/v1/inbound", {"from": stranger, "to": phone, "text": "who is this?"})

    key = phone_key(T, stranger)
    [event] = await wait_inbound(store, key, 1)
    assert (event.lead_id, event.contact_key, event.sender) == ("", key, stranger)
    assert event.device_id == device_id
    assert (event.in_reply_to, event.origin, event.origin_id) == ("", None, "")


async def test_a_message_reported_twice_is_recorded_once(
    store: EventStore, gateway: InProcessGateway, device: tuple[str, str], ids: Callable[[str], str]
) -> None:
    device_id, _ = device
    lead = ids("lead")
    await claim(store, LEAD_PHONE, lead)
    assert gateway.gateway is not None
    message = Inbound(
        wa_message_id="3EB0TWICE", sender="5511987654321", text="hi", media_kind="image"
    )

    await gateway.gateway.listener.on_inbound(device_id, message)
    await gateway.gateway.listener.on_inbound(device_id, message)
    await gateway.gateway.listener.drain(10)

    [event] = await wait_inbound(store, lead, 1)
    assert (event.sender, event.media_type) == (LEAD_PHONE, "image")
    assert len(await inbound_of(store, lead)) == 1


async def test_a_reply_after_a_gateway_restart_is_still_attributed(
    store: EventStore,
    sim: Simulator,
    gateway_settings: Callable[..., Settings],
    ids: Callable[[str], str],
    nc: Client,
    streams: Topology,
) -> None:
    first = InProcessGateway(gateway_settings(replica_id="gw-1"))
    await first.start()
    device_id = ids("inbox")
    try:
        await register_and_pair(Requester(nc, streams, timeout=5), store, T, [device_id])
        phone = (await device_state(store, T, device_id)).phone
        lead = ids("lead")
        await claim(store, LEAD_PHONE, lead)
        message_id = ids("m")
        await request_send(
            store, T, device_id, message_id, to=LEAD_PHONE, lead_id=lead, pacing=NOW_PACING
        )
        await sent(store, message_id)
    finally:
        await first.stop()

    second = InProcessGateway(gateway_settings(replica_id="gw-2"))
    await second.start()
    try:
        await sim.post("/sim/v1/inbound", {"from": LEAD_PHONE, "to": phone, "text": "STOP"})

        [event] = await wait_inbound(store, lead, 1)
        assert (event.lead_id, event.in_reply_to, event.text) == (lead, message_id, "STOP")
    finally:
        await second.stop()
