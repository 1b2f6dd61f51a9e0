"""A controlled clock moves for every process at once, and only when told."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from nats.aio.client import Client

from wacast.contracts.subjects import Topology
from wacast.runtime.clock import CONTROLLED_EPOCH, ControlledClock, advance_clock


async def test_timers_fire_when_the_shared_clock_passes_them(nc: Client, streams: Topology) -> None:
    one, two = ControlledClock(), ControlledClock()
    await one.follow(nc, streams)
    await two.follow(nc, streams)
    due = CONTROLLED_EPOCH + timedelta(hours=1)
    timer = asyncio.create_task(two.sleep_until(due))

    await advance_clock(nc, streams, timedelta(minutes=59))
    await asyncio.wait_for(_until(lambda: one.now() == CONTROLLED_EPOCH + timedelta(minutes=59)), 5)
    assert not timer.done()

    await advance_clock(nc, streams, timedelta(minutes=1))
    await asyncio.wait_for(timer, 5)
    assert two.now() == due

    late = ControlledClock()
    await late.follow(nc, streams)
    assert late.now() == due
    for clock in (one, two, late):
        await clock.close()


async def _until(condition: object) -> None:
    while not condition():  # type: ignore[operator]
        await asyncio.sleep(0.01)
