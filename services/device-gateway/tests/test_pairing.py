"""Pairing against the wa-simulator, and bad input answered with a clear problem."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg

from wacast.contracts.commands import RegisterDevice, StartPairing
from wacast.contracts.devices import DEVICE_QR_QUERY, DeviceDisconnected, DeviceQr, DeviceQrQuery
from wacast.contracts.streams import DEVICES
from wacast.contracts.subjects import Topology
from wacast.device_gateway.testing import (
    InProcessGateway,
    Simulator,
    device_state,
    eventually,
    register_and_pair,
)
from wacast.runtime.commands import Requester
from wacast.runtime.eventstore import EventStore

T = "acme"


def mobile() -> str:
    """A valid mobile number no other test links (the simulator is shared)."""
    return f"+55119{random.randrange(10**8):08d}"


async def _connected(store: EventStore, device_id: str) -> bool:
    return (await device_state(store, T, device_id)).status == "connected"


async def test_pairing_by_qr_and_by_code_ends_connected(
    nc: Client,
    store: EventStore,
    streams: Topology,
    gateway: InProcessGateway,
    sim: Simulator,
    ids: Callable[[str], str],
) -> None:
    requester = Requester(nc, streams, timeout=5)
    live: list[DeviceQr] = []

    async def keep(msg: Msg) -> None:
        live.append(msgspec.json.decode(msg.data, type=DeviceQr))

    sub = await nc.subscribe(streams.live(T), cb=keep)
    phone = mobile()
    for device_id in (ids("qr-1"), ids("code-1")):
        reply = await requester.send(
            RegisterDevice(tenant_id=T, name=device_id, driver="sim", device_id=device_id)
        )
        assert reply.ok, reply.problem

    by_qr = await requester.send(StartPairing(tenant_id=T, device_id=ids("qr-1"), method="qr"))
    by_code = await requester.send(
        StartPairing(tenant_id=T, device_id=ids("code-1"), method="code", phone=phone)
    )

    assert by_qr.ok, by_qr.problem
    assert by_code.ok, by_code.problem
    await eventually(lambda: _connected(store, ids("qr-1")), 10, "qr-1 connected")
    await eventually(lambda: _connected(store, ids("code-1")), 10, "code-1 connected")
    await sub.unsubscribe()
    qr = next(p for p in live if p.device_id == ids("qr-1"))
    code = next(p for p in live if p.device_id == ids("code-1"))
    assert qr.method == "qr"
    assert qr.png_base64
    assert qr.svg.startswith("<?xml")
    assert code.method == "code"
    assert len(code.code.replace("-", "")) == 8
    paired = await device_state(store, T, ids("code-1"))
    assert paired.phone == phone


async def test_bad_input_gets_a_clear_problem(
    nc: Client,
    store: EventStore,
    streams: Topology,
    gateway: InProcessGateway,
    ids: Callable[[str], str],
) -> None:
    requester = Requester(nc, streams, timeout=5)
    assert (
        await requester.send(
            RegisterDevice(tenant_id=T, name="one", driver="sim", device_id=ids("d-1"))
        )
    ).ok
    await requester.send(StartPairing(tenant_id=T, device_id=ids("d-1")))
    await eventually(lambda: _connected(store, ids("d-1")), 10, "d-1 connected")

    unknown = await requester.send(StartPairing(tenant_id=T, device_id="nope"))
    other_tenant = await requester.send(StartPairing(tenant_id="other", device_id=ids("d-1")))
    paired_again = await requester.send(StartPairing(tenant_id=T, device_id=ids("d-1")))
    await requester.send(
        RegisterDevice(tenant_id=T, name="two", driver="sim", device_id=ids("d-2"))
    )
    bad_phone = await requester.send(
        StartPairing(tenant_id=T, device_id=ids("d-2"), method="code", phone="555-0100")
    )
    registered_again = await requester.send(
        RegisterDevice(tenant_id=T, name="x", driver="sim", device_id=ids("d-1"))
    )
    bad_id = await requester.send(StartPairing(tenant_id=T, device_id="has space"))

    assert unknown.problem is not None
    assert unknown.problem.status == 404
    assert other_tenant.problem is not None
    assert other_tenant.problem.status == 404
    assert paired_again.problem is not None
    assert (paired_again.problem.status, paired_again.problem.code) == (409, "already_paired")
    assert bad_phone.problem is not None
    assert (bad_phone.problem.status, bad_phone.problem.code) == (422, "invalid_phone")
    assert registered_again.problem is not None
    assert registered_again.problem.status == 409
    assert bad_id.problem is not None
    assert bad_id.problem.status == 422


async def test_a_retried_command_with_its_idempotency_key_gets_the_first_reply(
    nc: Client, streams: Topology, gateway: InProcessGateway
) -> None:
    requester = Requester(nc, streams, timeout=5)
    command = RegisterDevice(tenant_id=T, name="front", driver="sim", idempotency_key="k-1")

    first, second = await requester.send(command), await requester.send(command)

    assert first.ok
    assert second.ok
    assert (first.id, first.seq) == (second.id, second.seq)


async def test_the_qr_query_answers_for_a_pairing_device_only(
    nc: Client,
    store: EventStore,
    streams: Topology,
    gateway: InProcessGateway,
    ids: Callable[[str], str],
) -> None:
    requester = Requester(nc, streams, timeout=5)
    await requester.send(
        RegisterDevice(tenant_id=T, name="one", driver="sim", device_id=ids("q-1"))
    )

    nothing = await requester.query(
        DEVICE_QR_QUERY, DeviceQrQuery(tenant_id=T, device_id=ids("q-1")), DeviceQr
    )
    await requester.send(
        StartPairing(tenant_id=T, device_id=ids("q-1"), method="code", phone=mobile())
    )

    async def prompt() -> bool:
        found = await requester.query(
            DEVICE_QR_QUERY, DeviceQrQuery(tenant_id=T, device_id=ids("q-1")), DeviceQr
        )
        return isinstance(found, DeviceQr)

    await eventually(prompt, 5, "a pairing code")
    assert not isinstance(nothing, DeviceQr)
    assert nothing.problem is not None
    assert nothing.problem.status in (404, 503)
    await asyncio.sleep(0)


async def test_a_session_dropped_by_the_network_comes_back_by_itself(
    nc: Client,
    store: EventStore,
    streams: Topology,
    gateway: InProcessGateway,
    sim: Simulator,
    ids: Callable[[str], str],
) -> None:
    device = ids("drop")
    await register_and_pair(Requester(nc, streams, timeout=5), store, T, [device])

    before = await store.last_seq(DEVICES, streams.device(T, device))
    await sim.post(f"/sim/v1/devices/{device}/drop", {"seconds": 0.5})

    async def back() -> bool:
        events = await store.load(DEVICES, streams.device(T, device), after=before)
        return [type(s.event).__name__ for s in events][-1:] == ["DeviceConnected"]

    await eventually(back, 10, "disconnected, then connected again")
    events = [s.event for s in await store.load(DEVICES, streams.device(T, device), after=before)]
    assert [type(e).__name__ for e in events] == ["DeviceDisconnected", "DeviceConnected"]
    assert isinstance(events[0], DeviceDisconnected)
    assert events[0].reason == "network"
    assert (await sim.get(f"/sim/v1/devices/{device}"))["connected"]
