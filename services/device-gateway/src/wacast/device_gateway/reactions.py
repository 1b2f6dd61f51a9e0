"""What the replica serving a device does about a decision another replica may have made:
start or cancel linking, log the session out, carry a deletion through.

Commands are decided by any replica; their events reach every replica through the
directory, and only the one holding the device's partition acts. A replica that takes a
partition over finishes what its predecessor left half done (a deletion, a linking).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from wacast.contracts import devices as ev
from wacast.device_gateway.directory import Directory
from wacast.device_gateway.domain.device import Device
from wacast.device_gateway.drivers.base import DriverError
from wacast.device_gateway.drivers.registry import Drivers, DriverUnavailable
from wacast.device_gateway.qr import QrBoard
from wacast.device_gateway.session_store import SessionStore
from wacast.device_gateway.sessions import Sessions
from wacast.device_gateway.settings import Settings
from wacast.runtime.clock import Clock

log = logging.getLogger(__name__)


class Reactions:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        directory: Directory,
        sessions: Sessions,
        drivers: Drivers,
        board: QrBoard,
        store: SessionStore,
        cancel_lane: Callable[[str, str], Awaitable[None]],
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.directory = directory
        self.sessions = sessions
        self.drivers = drivers
        self.board = board
        self.store = store
        self.cancel_lane = cancel_lane
        """Cancel what waits in a device's lane, with a reason."""
        self.pairing_since: dict[str, datetime] = {}

    async def on_event(self, state: Device, event: ev.DeviceEvent) -> None:
        """Directory listener: act on decisions about devices this replica serves."""
        if not self.sessions.serves(state.device_id):
            return
        match event:
            case ev.DevicePairingStarted():
                self.sessions.spawn(self.pair(state))
            case ev.DevicePairingFailed(reason="cancelled"):
                self.sessions.spawn(self.stop_pairing(state))
            case ev.DeviceLoggedOut(reason="requested"):
                self.sessions.spawn(self.logout(state))
            case ev.DeviceDeleteRequested():
                self.sessions.spawn(self.delete(state))

    async def resume(self, partition: int) -> None:
        """At takeover: go on linking what was linking, finish deletions."""
        now = self.clock.now()
        for state in self.directory.in_partition(partition):
            if state.status == "deleting":
                self.sessions.spawn(self.delete(state))
            elif state.status == "pairing":
                started = state.since or now
                if now - started < timedelta(seconds=self.settings.pair_timeout_seconds):
                    self.sessions.spawn(self.pair(state, since=started))
                else:
                    self.sessions.spawn(self.pairing_failed(state, "timeout"))

    async def pair(self, state: Device, since: datetime | None = None) -> None:
        """Start linking; `since` (resuming a predecessor's linking) does nothing when this
        replica is linking the device already."""
        device_id = state.device_id
        if since is not None and device_id in self.pairing_since:
            return
        self.pairing_since[device_id] = since or self.clock.now()
        try:
            driver = await self.drivers.get(state.driver)
            if state.pairing_method == "code":
                code = await driver.pair_code(device_id, state.pairing_phone)
                await self.board.show(state.tenant_id, device_id, "code", code, self.clock.now())
            else:
                await driver.pair_qr(device_id)
        except DriverError as exc:
            if exc.code == "already_linked":
                return  # linked meanwhile: its `paired` report is on its way
            log.warning("linking %s failed to start: %s", device_id, exc)
            await self.pairing_failed(state, "error", str(exc))
        except DriverUnavailable as exc:
            await self.pairing_failed(state, "error", str(exc))

    async def pairing_failed(self, state: Device, reason: str, detail: str = "") -> None:
        await self.stop_pairing(state)
        await self.sessions.record(state, ev.DevicePairingFailed, reason=reason, detail=detail)

    async def stop_pairing(self, state: Device) -> None:
        self.pairing_since.pop(state.device_id, None)
        self.board.clear(state.device_id)
        await self._quietly(state, "disconnect")

    async def logout(self, state: Device) -> None:
        self.sessions.online.discard(state.device_id)
        await self._quietly(state, "logout")
        await self.store.delete(state.device_id)

    async def delete(self, state: Device) -> None:
        """Cancel what waits in the lane, unlink the session, then record the deletion."""
        await self.cancel_lane(state.device_id, "device_deleted")
        self.pairing_since.pop(state.device_id, None)
        self.board.clear(state.device_id)
        await self.logout(state)
        await self.sessions.record(state, ev.DeviceDeleted)

    async def watch_pairing(self) -> None:
        """Linking not done within the pairing timeout fails as `timeout`."""
        while True:
            await asyncio.sleep(min(5.0, self.settings.pair_timeout_seconds / 4))
            try:
                await self._time_out_pairings()
            except Exception:
                log.exception("checking pairing timeouts failed")

    async def _time_out_pairings(self) -> None:
        limit = self.clock.now() - timedelta(seconds=self.settings.pair_timeout_seconds)
        for device_id, since in list(self.pairing_since.items()):
            state = self.directory.state(device_id)
            if state is None or state.status != "pairing":
                self.pairing_since.pop(device_id, None)
            elif since <= limit:
                await self.pairing_failed(state, "timeout")

    async def _quietly(self, state: Device, action: str) -> None:
        try:
            driver = await self.drivers.get(state.driver)
            await getattr(driver, action)(state.device_id)
        except (DriverError, DriverUnavailable) as exc:
            log.info("%s of %s: %s", action, state.device_id, exc)
