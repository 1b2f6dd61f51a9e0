"""Time, chosen in settings: the system clock, or a clock that tests move across processes.

The controlled clock keeps "now" in a JetStream KV bucket; every process watches the key, so a
test advances time for the whole system with one `put` (`advance_clock`), and a process that
starts late reads the current value first. Timers and timeouts use `sleep_until`, never
`asyncio.sleep` on wall time, so they fire when the test moves the clock past them.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Protocol

from nats.aio.client import Client
from nats.js.errors import BucketNotFoundError, KeyNotFoundError
from nats.js.kv import KeyValue

from wacast.contracts.streams import CLOCK_BUCKET
from wacast.contracts.subjects import Topology
from wacast.runtime.tasks import cancel_and_wait

CLOCK_KEY = "now"
CONTROLLED_EPOCH = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
"""Where a controlled clock starts when nobody set it: a Monday morning, UTC."""


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep_until(self, when: datetime) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        delay = (when - self.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)

    async def close(self) -> None:
        return None


class ControlledClock:
    """Time that only moves when someone puts a new value in the clock bucket."""

    def __init__(self, start: datetime = CONTROLLED_EPOCH) -> None:
        self._now = start
        self._moved = asyncio.Condition()
        self._watch_task: asyncio.Task[None] | None = None

    def now(self) -> datetime:
        return self._now

    async def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("clock values must be timezone-aware")
        async with self._moved:
            if when > self._now:
                self._now = when
                self._moved.notify_all()

    async def sleep_until(self, when: datetime) -> None:
        async with self._moved:
            await self._moved.wait_for(lambda: self._now >= when)

    async def follow(self, nc: Client, topology: Topology) -> None:
        """Read the shared value, then follow every change of it."""
        kv = await clock_bucket(nc, topology)
        with contextlib.suppress(KeyNotFoundError):
            entry = await kv.get(CLOCK_KEY)
            if entry.value:
                await self.set(datetime.fromisoformat(entry.value.decode()))
        watcher = await kv.watch(CLOCK_KEY, include_history=False)

        async def pump() -> None:
            async for entry in watcher:
                if entry is not None and entry.value:
                    await self.set(datetime.fromisoformat(entry.value.decode()))

        self._watch_task = asyncio.create_task(pump(), name="clock-watch")

    async def close(self) -> None:
        if self._watch_task is not None:
            await cancel_and_wait([self._watch_task])


async def clock_bucket(nc: Client, topology: Topology) -> KeyValue:
    js = nc.jetstream()
    name = topology.bucket(CLOCK_BUCKET)
    try:
        return await js.key_value(name)
    except BucketNotFoundError:
        from nats.js.api import KeyValueConfig

        return await js.create_key_value(KeyValueConfig(bucket=name, history=1))


async def advance_clock(nc: Client, topology: Topology, by: timedelta) -> datetime:
    """Move the shared controlled clock forward (tests and demos)."""
    kv = await clock_bucket(nc, topology)
    try:
        current = datetime.fromisoformat((await kv.get(CLOCK_KEY)).value.decode())  # type: ignore[union-attr]
    except KeyNotFoundError:
        current = CONTROLLED_EPOCH
    new = current + by
    await kv.put(CLOCK_KEY, new.isoformat().encode())
    return new


def make_clock(kind: str) -> SystemClock | ControlledClock:
    return ControlledClock() if kind == "controlled" else SystemClock()
