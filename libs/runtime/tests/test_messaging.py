"""Commands get an answer, and event consumers survive poison."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from faststream.nats import NatsBroker
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from wacast.contracts.base import Reply
from wacast.contracts.commands import DeviceCommand, RegisterDevice, RenameDevice
from wacast.contracts.devices import DeviceRegistered
from wacast.contracts.streams import DEVICES
from wacast.contracts.subjects import Topology
from wacast.runtime.commands import Requester, problem, serve_commands
from wacast.runtime.consumer import consume_events
from wacast.runtime.deadletter import ERROR_HEADER, DeadLetters
from wacast.runtime.eventstore import EventStore
from wacast.runtime.projection import Envelope
from wacast.runtime.testing import until_answering

AT = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
async def broker(nats_url: str) -> AsyncIterator[NatsBroker]:
    created = NatsBroker(nats_url)
    await created.connect()
    yield created
    await created.stop()


async def test_a_command_is_answered_by_its_owner_and_bad_input_gets_a_problem(
    broker: NatsBroker, nc: Client, streams: Topology
) -> None:
    async def handle(command: DeviceCommand) -> Reply:
        if isinstance(command, RegisterDevice):
            return Reply(ok=True, id="d1", data={"name": command.name})
        return problem("not_found", "No such device", 404)

    serve_commands(broker, streams, "devices", DeviceCommand, handle)
    await broker.start()
    await until_answering(nc, f"{streams.prefix}.cmd.devices.Probe")
    requester = Requester(nc, streams, timeout=3)

    ok = await requester.send(RegisterDevice(tenant_id="acme", name="front desk", driver="sim"))
    refused = await requester.send(RenameDevice(tenant_id="acme", device_id="nope", name="x"))
    malformed = await nc.request(f"{streams.prefix}.cmd.devices.RegisterDevice", b"{", timeout=3)

    assert ok.ok
    assert ok.data == {"name": "front desk"}
    assert refused.problem is not None
    assert refused.problem.status == 404
    assert b"invalid_request" in malformed.data


async def test_a_command_sent_while_its_owner_starts_is_answered(
    broker: NatsBroker, nc: Client, streams: Topology
) -> None:
    async def handle(command: DeviceCommand) -> Reply:
        return Reply(ok=True, id="d1")

    serve_commands(broker, streams, "devices", DeviceCommand, handle)
    sending = asyncio.create_task(
        Requester(nc, streams, timeout=5).send(
            RegisterDevice(tenant_id="acme", name="front desk", driver="sim")
        )
    )
    await asyncio.sleep(0.2)  # nobody serves the subject yet: the first tries find no one
    assert not sending.done()
    await broker.start()

    reply = await sending
    assert reply.ok, reply.problem


async def test_a_command_nobody_serves_is_answered_unavailable(
    nc: Client, streams: Topology
) -> None:
    reply = await Requester(nc, streams, timeout=1).send(
        RegisterDevice(tenant_id="acme", name="x", driver="sim")
    )
    assert reply.problem is not None
    assert reply.problem.status == 503


async def test_a_consumer_dead_letters_poison_and_goes_on(
    broker: NatsBroker, nc: Client, store: EventStore, streams: Topology, dead_letters: DeadLetters
) -> None:
    seen: list[str] = []
    done = asyncio.Event()

    async def handle(envelope: Envelope) -> None:
        event = envelope.event
        assert isinstance(event, DeviceRegistered)
        if event.name == "explodes":
            raise RuntimeError("handler cannot take this one")
        seen.append(event.device_id)
        if event.device_id == "last":
            done.set()

    consume_events(
        broker,
        streams,
        dead_letters,
        spec=DEVICES,
        subject=streams.all_of("device"),
        durable="test-consumer",
        handle=handle,
        max_deliver=2,
    )
    js = nc.jetstream()
    await js.publish(streams.device("acme", "junk"), b"not json at all")
    for device_id, name in (("first", "ok"), ("boom", "explodes"), ("last", "ok")):
        event = DeviceRegistered(
            tenant_id="acme", occurred_at=AT, device_id=device_id, name=name, driver="sim"
        )
        await store.append(event.subject(streams), [event], msg_id=device_id, expected=0)
    await broker.start()

    await asyncio.wait_for(done.wait(), 20)
    assert seen == ["first", "last"]
    dlq = await js.pull_subscribe("", durable=None, stream=streams.stream("DLQ"))
    letters: list[Msg] = []
    while len(letters) < 2:  # the handler failure is dead-lettered after its retry
        letters += await dlq.fetch(2 - len(letters), timeout=10)
    errors = sorted(m.headers[ERROR_HEADER] for m in letters if m.headers)
    assert errors[0].startswith("DecodeError")
    assert errors[1] == "RuntimeError: handler cannot take this one"


async def test_a_fetch_that_times_out_the_builtin_way_is_a_quiet_poll_not_an_error(
    broker: NatsBroker,
    nc: Client,
    store: EventStore,
    streams: Topology,
    dead_letters: DeadLetters,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """nats-py's fetch raises the builtin TimeoutError when its deadline passes before its
    second pull request; faststream's pull loop only expects nats-py's own, and logged an
    ERROR with a traceback. Every other poll of this consumer times out that way here."""
    pulls = JetStreamContext.PullSubscription
    fetch = pulls.fetch
    polls = 0

    async def sometimes_builtin(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal polls
        polls += 1
        if polls % 2:
            await asyncio.sleep(0.05)
            raise TimeoutError  # the builtin one, as nats-py raises it
        return await fetch(self, *args, **kwargs)

    monkeypatch.setattr(pulls, "fetch", sometimes_builtin)
    seen = asyncio.Event()

    async def handle(envelope: Envelope) -> None:
        seen.set()

    consume_events(
        broker,
        streams,
        dead_letters,
        spec=DEVICES,
        subject=streams.all_of("device"),
        durable="quiet-polls",
        handle=handle,
    )
    await broker.start()
    while polls < 5:
        await asyncio.sleep(0.05)
    event = DeviceRegistered(
        tenant_id="acme", occurred_at=AT, device_id="d", name="n", driver="sim"
    )
    await store.append(event.subject(streams), [event], msg_id="d", expected=0)

    await asyncio.wait_for(seen.wait(), 20)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
