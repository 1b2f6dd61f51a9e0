"""Daily caps, the warm-up ramp and send windows, on the controlled clock: what is over the
cap or outside its window waits in the lane (pending, never failed), across a gateway
restart, and goes when its local day or hour comes, paced."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from nats.aio.client import Client

from wacast.contracts import messages as m
from wacast.contracts.commands import SetDeviceLimits
from wacast.contracts.devices import WARMUP_RAMP
from wacast.contracts.streams import MESSAGES
from wacast.contracts.subjects import Topology
from wacast.contracts.tenants import TenantSettingsChanged
from wacast.contracts.values import Pacing, SendWindow
from wacast.device_gateway.domain.limits import local_day
from wacast.device_gateway.settings import Settings
from wacast.device_gateway.testing import (
    InProcessGateway,
    eventually,
    register_and_pair,
    request_send,
)
from wacast.runtime.clock import CONTROLLED_EPOCH, advance_clock
from wacast.runtime.commands import Requester
from wacast.runtime.eventstore import EventStore

T = "acme"
ZONE = "America/Sao_Paulo"  # UTC-3 all year
LOCAL_MIDNIGHT = datetime(2030, 1, 8, 3, 0, tzinfo=UTC)  # after the controlled clock's start
PACING = Pacing(min_seconds=10, max_seconds=20)
NOW_PACING = Pacing(min_seconds=0, max_seconds=0)
LEAD = 0.2
"""A hand-off is recorded up to this long before its send is due (prepare and typing)."""


@pytest.fixture
def controlled(gateway_settings: Callable[..., Settings]) -> Callable[[str], Settings]:
    return lambda replica: gateway_settings(
        replica_id=replica, clock="controlled", offline_timeout_seconds=60.0
    )


@pytest.fixture
async def gateway(controlled: Callable[[str], Settings]) -> AsyncIterator[InProcessGateway]:
    running = InProcessGateway(controlled("gw-a"))
    await running.start()
    yield running
    await running.stop()


async def tenant(store: EventStore, daily_cap: int | None) -> None:
    event = TenantSettingsChanged(
        tenant_id=T, occurred_at=CONTROLLED_EPOCH, name="Acme", timezone=ZONE,
        device_daily_cap=daily_cap,
    )  # fmt: skip
    await store.append(
        event.subject(store.topology), [event], msg_id=f"t:{daily_cap}", expected=None
    )


async def lane_events(store: EventStore, device: str) -> list[m.MessageEvent]:
    return [s.event for s in await store.load(MESSAGES, store.topology.lane(T, device))]  # type: ignore[misc]


async def handed(store: EventStore, device: str) -> list[m.MessageDispatching]:
    return [e for e in await lane_events(store, device) if isinstance(e, m.MessageDispatching)]


async def cancelled(store: EventStore, device: str) -> list[m.MessageCancelled]:
    return [e for e in await lane_events(store, device) if isinstance(e, m.MessageCancelled)]


async def sent(store: EventStore, message_ids: list[str]) -> int:
    subjects = [store.topology.message(T, mid) for mid in message_ids]
    found = await store.last_of(MESSAGES, subjects)
    return sum(
        isinstance(s.event, m.MessageSent | m.MessageDelivered | m.MessageRead)
        for s in found.values()
    )


async def step_until(
    nc: Client, topology: Topology, check: Callable[[], Awaitable[bool]], what: str,
    step: timedelta = timedelta(seconds=1), steps: int = 200,
) -> None:  # fmt: skip
    """Move the controlled clock `step` at a time until `check()` holds."""
    for _ in range(steps):
        if await check():
            return
        await advance_clock(nc, topology, step)
        await asyncio.sleep(0.05)  # the gateway acts on the new time; `check` decides
    raise AssertionError(f"{what}: not within {steps} steps of {step}")


async def let_pass(nc: Client, topology: Topology, step: timedelta, steps: int) -> None:
    """Move the controlled clock on, a step at a time (the gateway sees each)."""
    for _ in range(steps):
        await advance_clock(nc, topology, step)
        await asyncio.sleep(0.05)


async def move_to(
    nc: Client, topology: Topology, gateway: InProcessGateway, when: datetime
) -> None:
    assert gateway.clock is not None
    await advance_clock(nc, topology, when - gateway.clock.now())

    async def there() -> bool:
        return gateway.clock is not None and gateway.clock.now() >= when

    await eventually(there, 5, f"the gateway's clock at {when}")


async def connected_device(
    nc: Client, store: EventStore, streams: Topology, ids: Callable[[str], str]
) -> str:
    device = ids("capped")
    await register_and_pair(Requester(nc, streams, timeout=5), store, T, [device])
    return device


async def test_the_daily_cap_holds_across_a_restart_and_the_rest_goes_after_local_midnight(
    nc: Client,
    store: EventStore,
    streams: Topology,
    controlled: Callable[[str], Settings],
    ids: Callable[[str], str],
) -> None:
    await tenant(store, daily_cap=3)
    first = InProcessGateway(controlled("gw-1"))
    await first.start()
    try:
        device = await connected_device(nc, store, streams, ids)
        messages = [f"{device}-m{i}" for i in range(5)]
        for i, mid in enumerate(messages):
            await request_send(store, T, device, mid, pacing=PACING, to=f"+551198765{i + 1:04d}")

        async def three_sent() -> bool:
            return await sent(store, messages) == 3

        await step_until(nc, streams, three_sent, "three messages sent")
        await let_pass(nc, streams, timedelta(minutes=10), 6)
        assert len(await handed(store, device)) == 3
    finally:
        await first.stop()
    checkpoint = await store.load(MESSAGES, streams.lane_checkpoint(T, device))
    last = checkpoint[-1].event
    assert isinstance(last, m.LaneCheckpointed)
    assert (last.day, last.sent_that_day) == ("2030-01-07", 3)
    assert last.open_from_seq < last.lane_seq  # the replay sees the day's hand-offs again

    second = InProcessGateway(controlled("gw-2"))
    gateway = await second.start()
    try:

        async def serving() -> bool:
            slot = gateway.lanes.slots.get(device)
            return slot is not None and gateway.sessions.sendable(device)

        await eventually(serving, 15, "the restarted gateway serving the device online")
        lane = gateway.lanes.slots[device].lane
        assert second.clock is not None
        assert lane.sent_on(local_day(second.clock.now(), ZONE)) == 3
        assert gateway.lanes.daily(second.clock.now()) == (3, 3, 1)  # sent, cap, lanes at cap
        await move_to(nc, streams, second, LOCAL_MIDNIGHT - timedelta(minutes=1))  # 23:59 local
        await let_pass(nc, streams, timedelta(seconds=10), 5)
        assert len(await handed(store, device)) == 3, "nothing more before local midnight"
        assert await cancelled(store, device) == []
        assert set(lane.pending) == set(messages[3:])

        async def all_sent() -> bool:
            return await sent(store, messages) == 5

        await step_until(nc, streams, all_sent, "the other two sent after midnight")
    finally:
        await second.stop()
    fourth, fifth = (await handed(store, device))[3:]
    after_midnight = (fourth.occurred_at - LOCAL_MIDNIGHT).total_seconds()
    assert PACING.min_seconds - LEAD <= after_midnight <= PACING.max_seconds + 1
    gap = (fifth.occurred_at - fourth.occurred_at).total_seconds()
    assert PACING.min_seconds - LEAD <= gap <= PACING.max_seconds + 1


async def test_a_device_with_warm_up_paired_today_sends_the_ramps_first_step_at_most(
    nc: Client,
    store: EventStore,
    streams: Topology,
    gateway: InProcessGateway,
    ids: Callable[[str], str],
) -> None:
    await tenant(store, daily_cap=None)
    device = await connected_device(nc, store, streams, ids)
    requester = Requester(nc, streams, timeout=5)
    limits = SetDeviceLimits(tenant_id=T, device_id=device, daily_cap=500, warmup=True)
    assert (await requester.send(limits)).ok
    allowed = WARMUP_RAMP[0]
    messages = [f"{device}-m{i}" for i in range(allowed + 2)]
    for i, mid in enumerate(messages):
        await request_send(store, T, device, mid, pacing=NOW_PACING, to=f"+551198765{i + 1:04d}")

    async def ramp_sent() -> bool:
        return await sent(store, messages) >= allowed

    await eventually(ramp_sent, 30, f"{allowed} messages sent")
    await let_pass(nc, streams, timedelta(minutes=10), 6)
    assert len(await handed(store, device)) == allowed
    assert await cancelled(store, device) == []


async def test_a_message_outside_its_window_waits_pending_and_goes_when_the_window_opens(
    nc: Client,
    store: EventStore,
    streams: Topology,
    gateway: InProcessGateway,
    ids: Callable[[str], str],
) -> None:
    await tenant(store, daily_cap=None)
    device = await connected_device(nc, store, streams, ids)
    window = SendWindow(days=[0, 1, 2, 3, 4], start_hour=12, end_hour=18)  # the tenant's zone
    await request_send(store, T, device, f"{device}-w", pacing=NOW_PACING, window=window)
    await request_send(store, T, device, f"{device}-now", pacing=NOW_PACING, to="+5511900000001")

    async def accepted_and_other_sent() -> bool:
        return await sent(store, [f"{device}-now"]) == 1

    await eventually(accepted_and_other_sent, 15, "the message without a window sent")
    opens = datetime(2030, 1, 7, 15, 0, tzinfo=UTC)  # 12:00 in Sao Paulo
    await move_to(nc, streams, gateway, opens - timedelta(minutes=5))  # hours past the timeouts
    await let_pass(nc, streams, timedelta(seconds=30), 6)
    assert [e.message_id for e in await handed(store, device)] == [f"{device}-now"]
    assert await cancelled(store, device) == []
    assert gateway.gateway is not None
    assert f"{device}-w" in gateway.gateway.lanes.slots[device].lane.pending

    async def window_sent() -> bool:
        return await sent(store, [f"{device}-w"]) == 1

    await step_until(nc, streams, window_sent, "sent once the window opens", timedelta(seconds=30))
    [dispatch] = [e for e in await handed(store, device) if e.message_id == f"{device}-w"]
    assert dispatch.occurred_at >= opens
