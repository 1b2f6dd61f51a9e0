"""The sessions of the devices this replica serves: online at start-up, back after a drop.

When a replica takes a partition, every linked device of it is connected from its stored
session; a dropped session is connected again with exponential backoff and jitter; a health
check every few seconds reconciles what should be online with what is (and the events with
both). What the network reports arrives through `listener.Reports`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from wacast.contracts import devices as ev
from wacast.contracts.subjects import partition_of
from wacast.device_gateway import metrics
from wacast.device_gateway.device_store import DeviceStore
from wacast.device_gateway.directory import Directory
from wacast.device_gateway.domain.device import Device
from wacast.device_gateway.drivers.base import DriverError
from wacast.device_gateway.drivers.registry import Drivers, DriverUnavailable
from wacast.device_gateway.session_store import SessionStore
from wacast.device_gateway.settings import Settings
from wacast.runtime.clock import Clock

log = logging.getLogger(__name__)


class Sessions:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        rng: random.Random,
        directory: Directory,
        devices: DeviceStore,
        drivers: Drivers,
        store: SessionStore,
        serves: Callable[[str], bool],
        on_sendable: Callable[[str], None],
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.rng = rng
        self.directory = directory
        self.devices = devices
        self.drivers = drivers
        self.store = store
        self.serves = serves
        self.on_sendable = on_sendable
        self.online: set[str] = set()
        self.offline_since: dict[str, datetime] = {}
        self.banned_until: dict[str, datetime | None] = {}
        self.attempts: dict[str, int] = {}
        self.linking: set[str] = set()
        """Just linked here: online in the driver already, its session on its way."""
        self._retries: dict[str, asyncio.TimerHandle] = {}
        self._gate = asyncio.Semaphore(settings.connect_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    # -- what the lanes ask --------------------------------------------------------------

    def sendable(self, device_id: str) -> bool:
        """Online and not banned: its lane may send."""
        if device_id not in self.online:
            return False
        if device_id not in self.banned_until:
            return True
        until = self.banned_until[device_id]
        return until is not None and until <= self.clock.now()

    def offline_since_time(self, device_id: str) -> datetime | None:
        return None if self.sendable(device_id) else self.offline_since.get(device_id)

    # -- partitions ----------------------------------------------------------------------

    async def start_partition(self, partition: int) -> None:
        now = self.clock.now()
        states = self.directory.in_partition(partition)
        for state in states:
            self.offline_since.setdefault(state.device_id, now)
        await asyncio.gather(*(self._adopt(state) for state in states))

    async def stop_partition(self, partition: int, reason: str | None) -> None:
        """Let go of the partition's sessions; `reason` (graceful hand-over) is recorded."""
        devices = [d for d in list(self.online) if partition_of(d) == partition]
        for device_id in [d for d in self._retries if partition_of(d) == partition]:
            self._retries.pop(device_id).cancel()
        await asyncio.gather(*(self._let_go(d, reason) for d in devices))
        self.linking = {d for d in self.linking if partition_of(d) != partition}
        for table in (self.offline_since, self.banned_until, self.attempts):
            for device_id in [d for d in table if partition_of(d) == partition]:
                del table[device_id]

    async def _let_go(self, device_id: str, reason: str | None) -> None:
        """Disconnect the session (unless the whole process stops: closing the drivers
        ends every session at once) and record why."""
        self.online.discard(device_id)
        state = self.directory.state(device_id)
        if state is None:
            return
        if reason != "shutdown":
            try:
                await (await self.drivers.get(state.driver)).disconnect(device_id)
            except Exception as exc:
                log.info("disconnecting %s failed: %s", device_id, exc)
        if reason is not None:
            await self.record(state, ev.DeviceDisconnected, reason=reason)

    async def _adopt(self, state: Device) -> None:
        async with self._gate:
            if state.linked:
                if state.status == "banned":
                    self.banned_until[state.device_id] = state.banned_until
                await self.connect(state.device_id)

    # -- connecting ----------------------------------------------------------------------

    async def connect(self, device_id: str) -> None:
        state = self.directory.state(device_id)
        if state is None or not state.linked or not self.serves(device_id):
            return
        try:
            driver = await self.drivers.get(state.driver)
        except DriverUnavailable as exc:
            log.warning("device %s cannot connect: %s", device_id, exc)
            return
        session = self.store.preloaded(device_id)
        fresh = session is None
        if session is None:
            session = await self.store.get(device_id)
        if session is None:
            if device_id not in self.linking:
                await self.lost(state, "session_lost")
            return
        metrics.RECONNECTS.inc()
        try:
            await driver.connect(device_id, session)
        except DriverError as exc:
            if exc.code in ("logged_out", "bad_session", "no_session"):
                if not fresh:
                    await self.connect(device_id)  # the preloaded copy was stale
                else:
                    await self.lost(state, "session_lost")
                return
            log.info("connecting %s failed: %s", device_id, exc)
            self.reconnect_later(device_id)
        # Accepted: `connected` follows (or a drop); the health check catches stragglers.

    def reconnect_later(self, device_id: str) -> None:
        """Try again after a backoff, unless the device is online by then."""
        if device_id in self._retries or not self.serves(device_id):
            return
        attempt = self.attempts.get(device_id, 0) + 1
        self.attempts[device_id] = attempt
        s = self.settings
        delay = min(s.reconnect_max_seconds, s.reconnect_min_seconds * 2 ** (attempt - 1))
        delay *= self.rng.uniform(0.5, 1.0)
        loop = asyncio.get_running_loop()
        self._retries[device_id] = loop.call_later(delay, self._retry_due, device_id)

    def came_online(self, device_id: str) -> None:
        self.online.add(device_id)
        self.linking.discard(device_id)
        self.offline_since.pop(device_id, None)
        self.attempts.pop(device_id, None)
        handle = self._retries.pop(device_id, None)
        if handle is not None:
            handle.cancel()

    def went_offline(self, device_id: str) -> None:
        self.online.discard(device_id)
        self.linking.discard(device_id)
        self.offline_since.setdefault(device_id, self.clock.now())

    def _retry_due(self, device_id: str) -> None:
        self._retries.pop(device_id, None)
        if device_id not in self.online:
            self.spawn(self.connect(device_id))

    async def lost(self, state: Device, reason: str) -> None:
        self.online.discard(state.device_id)
        await self.store.delete(state.device_id)
        await self.record(state, ev.DeviceLoggedOut, reason=reason)

    async def health(self) -> None:
        """Every so often: connect what should be online, and set the events straight."""
        while True:
            await asyncio.sleep(self.settings.health_interval_seconds)
            try:
                self._check_health()
            except Exception:
                log.exception("health check failed")

    def _check_health(self) -> None:
        now = self.clock.now()
        for device_id, known in list(self.directory.known.items()):
            state = known.state
            if not self.serves(device_id) or not state.linked:
                continue
            offline = device_id not in self.online and device_id not in self.linking
            if offline and device_id not in self._retries:
                self.reconnect_later(device_id)
            elif device_id in self.online and state.status != "connected":
                until = self.banned_until.get(device_id, now)
                if until is not None and until <= now:
                    self.banned_until.pop(device_id, None)
                    self.spawn(self.record(state, ev.DeviceConnected))
                    self.on_sendable(device_id)

    # -- helpers -------------------------------------------------------------------------

    async def record(self, state: Device, kind: type[ev.DeviceEvent], **fields: object) -> None:
        fact = kind(
            tenant_id=state.tenant_id,
            occurred_at=self.clock.now(),
            device_id=state.device_id,
            **fields,  # type: ignore[arg-type]
        )
        try:
            await self.devices.record(state.tenant_id, state.device_id, fact)
        except Exception as exc:
            log.warning("recording %s of %s failed: %s", kind.__name__, state.device_id, exc)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def stop(self) -> None:
        for handle in self._retries.values():
            handle.cancel()
        self._retries.clear()
        for task in self._tasks:
            task.cancel()
