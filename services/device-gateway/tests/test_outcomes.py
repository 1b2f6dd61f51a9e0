"""What becomes of a message, with an in-memory driver that fails on cue: unknown outcomes
are never resent, known-not-sent failures are retried, stuck sends time out, and what waits
is cancelled when its campaign is withdrawn or its device stays offline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import pytest
from nats.aio.client import Client

from wacast.contracts import messages as m
from wacast.contracts.streams import MESSAGES
from wacast.contracts.subjects import Topology
from wacast.contracts.values import Pacing, RetryPolicy
from wacast.device_gateway.drivers.base import DriverListener, Outbound, SendError, Sent
from wacast.device_gateway.drivers.registry import Drivers
from wacast.device_gateway.settings import Settings
from wacast.device_gateway.testing import (
    InProcessGateway,
    eventually,
    outcomes,
    register_and_pair,
    request_send,
)
from wacast.runtime.commands import Requester
from wacast.runtime.eventstore import EventStore

T = "acme"
NOW_PACING = Pacing(min_seconds=0, max_seconds=0)
HANG = "hang"


class FakeDriver:
    """Links at once; each send does what its message's script says next (default: sent)."""

    name = "sim"

    def __init__(self) -> None:
        self.listener: DriverListener | None = None
        self.script: dict[str, list[SendError | str]] = {}
        self.sends: list[str] = []
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self, listener: DriverListener) -> None:
        self.listener = listener

    async def close(self) -> None:
        return None

    async def connect(self, device_id: str, session: bytes | None) -> None:
        asyncio.get_running_loop().call_soon(self._later, "on_connected", device_id)

    async def pair_qr(self, device_id: str) -> None:
        self._spawn(self._link(device_id))

    async def pair_code(self, device_id: str, phone: str) -> str:
        self._spawn(self._link(device_id))
        return "ABCD-EFGH"

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _link(self, device_id: str) -> None:
        assert self.listener is not None
        await self.listener.on_paired(device_id, "+15550001111", "15550001111@s.whatsapp.net")
        await self.listener.on_session(device_id, b"session")
        await self.listener.on_connected(device_id)

    def _later(self, callback: str, *args: object) -> None:
        self._spawn(getattr(self.listener, callback)(*args))

    async def typing(self, device_id: str, to: str, seconds: float) -> None:
        return None

    async def send(self, device_id: str, message: Outbound) -> Sent:
        self.sends.append(message.origin_message_id)
        steps = self.script.get(message.origin_message_id, [])
        step = steps.pop(0) if steps else None
        if step == HANG:
            await asyncio.sleep(3600)
        if isinstance(step, SendError):
            raise step
        return Sent(wa_message_id=f"wa-{message.origin_message_id}", at=datetime.now(UTC))

    async def disconnect(self, device_id: str) -> None:
        return None

    async def logout(self, device_id: str) -> None:
        return None


@pytest.fixture
def fake() -> FakeDriver:
    return FakeDriver()


@pytest.fixture
async def gateway(
    gateway_settings: Callable[..., Settings], fake: FakeDriver
) -> AsyncIterator[InProcessGateway]:
    settings = gateway_settings(stuck_timeout_seconds=1.0, offline_timeout_seconds=1.0)
    running = InProcessGateway(settings, drivers=Drivers({"sim": lambda: fake}))
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
async def device(
    nc: Client,
    store: EventStore,
    streams: Topology,
    gateway: InProcessGateway,
    ids: Callable[[str], str],
) -> str:
    device_id = ids("fake")
    await register_and_pair(Requester(nc, streams, timeout=5), store, T, [device_id])
    return device_id


async def final(store: EventStore, message_id: str) -> m.MessageEvent | None:
    found = await outcomes(store, T, message_id)
    return next((e for e in found if isinstance(e, m.MessageSent | m.MessageFailed)), None)


async def settled(store: EventStore, message_id: str) -> m.MessageEvent:
    async def done() -> bool:
        return await final(store, message_id) is not None

    await eventually(done, 10, f"an outcome for {message_id}")
    found = await final(store, message_id)
    assert found is not None
    return found


async def lane_events(store: EventStore, topology: Topology, device: str) -> list[m.MessageEvent]:
    return [s.event for s in await store.load(MESSAGES, topology.lane(T, device))]  # type: ignore[misc]


async def test_an_unknown_outcome_fails_as_unknown_and_is_never_resent(
    store: EventStore, fake: FakeDriver, device: str
) -> None:
    fake.script["m-1"] = [SendError("connection_lost", retryable=False, accepted=None)]
    await request_send(store, T, device, "m-1", pacing=NOW_PACING)
    await request_send(store, T, device, "m-2", pacing=NOW_PACING, to="+5511911112222")

    failed = await settled(store, "m-1")
    await settled(store, "m-2")

    assert isinstance(failed, m.MessageFailed)
    assert (failed.reason, failed.retryable) == ("unknown", False)
    assert fake.sends.count("m-1") == 1


async def test_a_known_not_sent_failure_is_retried_then_sent(
    store: EventStore, streams: Topology, fake: FakeDriver, device: str
) -> None:
    transient = SendError("transient", retryable=True, accepted=False)
    fake.script["m-1"] = [transient, transient]
    retry = RetryPolicy(max_attempts=3, backoff_seconds=0.05)
    await request_send(store, T, device, "m-1", pacing=NOW_PACING, retry=retry)

    sent = await settled(store, "m-1")

    assert isinstance(sent, m.MessageSent)
    assert sent.attempt == 3
    assert fake.sends == ["m-1"] * 3
    retries = [
        e
        for e in await lane_events(store, streams, device)
        if isinstance(e, m.MessageRetryScheduled)
    ]
    assert [r.attempt for r in retries] == [2, 3]


async def test_transient_failures_beyond_the_retry_limit_fail_as_exhausted(
    store: EventStore, fake: FakeDriver, device: str
) -> None:
    fake.script["m-1"] = [SendError("transient", retryable=True, accepted=False)] * 2
    retry = RetryPolicy(max_attempts=2, backoff_seconds=0.05)
    await request_send(store, T, device, "m-1", pacing=NOW_PACING, retry=retry)

    failed = await settled(store, "m-1")

    assert isinstance(failed, m.MessageFailed)
    assert (failed.reason, failed.retryable, failed.attempt) == ("transient_exhausted", True, 2)


async def test_a_number_not_on_whatsapp_fails_without_a_retry(
    store: EventStore, fake: FakeDriver, device: str
) -> None:
    fake.script["m-1"] = [SendError("not_on_whatsapp", retryable=False, accepted=False)]
    await request_send(store, T, device, "m-1", pacing=NOW_PACING)

    failed = await settled(store, "m-1")

    assert isinstance(failed, m.MessageFailed)
    assert failed.reason == "not_on_whatsapp"
    assert fake.sends == ["m-1"]


async def test_a_send_stuck_past_the_stuck_timeout_fails_as_timeout_and_the_lane_goes_on(
    store: EventStore, fake: FakeDriver, device: str
) -> None:
    fake.script["m-1"] = [HANG]
    await request_send(store, T, device, "m-1", pacing=NOW_PACING)
    await request_send(store, T, device, "m-2", pacing=NOW_PACING, to="+5511911112222")

    stuck = await settled(store, "m-1")
    after = await settled(store, "m-2")

    assert isinstance(stuck, m.MessageFailed)
    assert stuck.reason == "timeout"
    assert isinstance(after, m.MessageSent)
    assert fake.sends == ["m-1", "m-2"]


async def test_a_withdrawn_campaign_cancels_what_waits_and_what_comes_later(
    store: EventStore, streams: Topology, fake: FakeDriver, device: str
) -> None:
    slow = Pacing(min_seconds=30, max_seconds=40)
    for i in range(3):
        await request_send(store, T, device, f"m-{i}", pacing=slow, to=f"+55119111{i + 1:05d}")
    await settled(store, "m-0")
    withdrawn = m.SendsWithdrawn(
        tenant_id=T, occurred_at=datetime.now(UTC), scope="campaign", scope_id="c1",
        reason="campaign_cancelled",
    )  # fmt: skip
    await store.append(withdrawn.subject(streams), [withdrawn], msg_id="w-1", expected=None)
    await request_send(store, T, device, "m-late", pacing=slow, to="+5511922223333")

    async def cancelled() -> bool:
        events = await lane_events(store, streams, device)
        gone = {e.message_id for e in events if isinstance(e, m.MessageCancelled)}
        return gone == {"m-1", "m-2", "m-late"}

    await eventually(cancelled, 10, "the campaign's waiting messages cancelled")
    reasons = {
        e.reason
        for e in await lane_events(store, streams, device)
        if isinstance(e, m.MessageCancelled)
    }
    assert reasons == {"campaign_cancelled"}
    assert fake.sends == ["m-0"]


async def test_an_opted_in_lead_gets_new_messages_while_what_was_cancelled_stays_cancelled(
    store: EventStore, streams: Topology, fake: FakeDriver, device: str
) -> None:
    async def control(event: m.SendControlEventBase, msg_id: str) -> None:
        await store.append(event.subject(streams), [event], msg_id=msg_id, expected=None)

    now = datetime.now(UTC)
    await control(
        m.SendsWithdrawn(
            tenant_id=T, occurred_at=now, scope="lead", scope_id="lead-x", reason="opted_out"
        ),
        "w-lead",
    )
    await request_send(store, T, device, "m-1", pacing=NOW_PACING, lead_id="lead-x")

    async def cancelled() -> bool:
        events = await lane_events(store, streams, device)
        return any(isinstance(e, m.MessageCancelled) for e in events)

    await eventually(cancelled, 10, "the opted-out lead's message cancelled")
    await control(
        m.SendsReleased(tenant_id=T, occurred_at=now, scope="lead", scope_id="lead-x"), "r-lead"
    )
    await request_send(store, T, device, "m-2", pacing=NOW_PACING, lead_id="lead-x")

    assert isinstance(await settled(store, "m-2"), m.MessageSent)
    [gone] = [
        e for e in await lane_events(store, streams, device) if isinstance(e, m.MessageCancelled)
    ]
    assert (gone.message_id, gone.reason) == ("m-1", "opted_out")
    assert await final(store, "m-1") is None
    assert fake.sends == ["m-2"]


async def test_held_messages_wait_until_released(
    store: EventStore, streams: Topology, fake: FakeDriver, device: str
) -> None:
    held = m.SendsHeld(tenant_id=T, occurred_at=datetime.now(UTC), scope="campaign", scope_id="c1")
    await store.append(held.subject(streams), [held], msg_id="h-1", expected=None)
    await request_send(store, T, device, "m-1", pacing=NOW_PACING)
    await asyncio.sleep(0.5)
    assert fake.sends == []

    released = m.SendsReleased(
        tenant_id=T, occurred_at=datetime.now(UTC), scope="campaign", scope_id="c1"
    )
    await store.append(released.subject(streams), [released], msg_id="r-1", expected=None)

    assert isinstance(await settled(store, "m-1"), m.MessageSent)


async def test_messages_pending_on_an_offline_device_are_cancelled_after_the_offline_timeout(
    store: EventStore,
    streams: Topology,
    fake: FakeDriver,
    device: str,
    gateway: InProcessGateway,
) -> None:
    assert fake.listener is not None
    await fake.listener.on_disconnected(device, "connection_lost")
    fake.connect = _stay_offline  # type: ignore[method-assign]
    await request_send(store, T, device, "m-1", pacing=NOW_PACING)

    async def cancelled() -> bool:
        events = await lane_events(store, streams, device)
        return any(isinstance(e, m.MessageCancelled) for e in events)

    await eventually(cancelled, 10, "the pending message cancelled")
    [gone] = [
        e for e in await lane_events(store, streams, device) if isinstance(e, m.MessageCancelled)
    ]
    assert gone.reason == "device_offline"
    assert fake.sends == []


async def _stay_offline(device_id: str, session: bytes | None) -> None:
    return None


async def test_a_malformed_send_request_is_dead_lettered_and_the_lane_goes_on(
    nc: Client, store: EventStore, streams: Topology, fake: FakeDriver, device: str
) -> None:
    poison = streams.send_request(T, device, "m-poison")
    await nc.jetstream().publish(poison, b'{"type": "MessageRequested", "nonsense": 1}')
    await request_send(store, T, device, "m-1", pacing=NOW_PACING)

    assert isinstance(await settled(store, "m-1"), m.MessageSent)
    dead = await nc.jetstream().get_last_msg(streams.stream("DLQ"), f"{streams.prefix}.dlq.>")
    assert dead.headers is not None
    assert "m-poison" in dead.headers["Wacast-Original-Subject"]
