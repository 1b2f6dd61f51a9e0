"""What the network reports, as Device events (and receipts, replies, QR codes).

Drivers call their listener one report at a time; handling a report means writing events
and session stores, so doing it inline would let one slow write hold up every device (and
10,000 devices linking at once would queue behind each other). Each report is handled in a
task of its own, in the order the reports about one device came; reports about different
devices go on in parallel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import datetime
from typing import Any, Literal

import nats.errors

from wacast.contracts import devices as ev
from wacast.device_gateway import metrics
from wacast.device_gateway.drivers.base import Inbound
from wacast.device_gateway.inbound import Inbox
from wacast.device_gateway.qr import QrBoard
from wacast.device_gateway.receipts import Receipts
from wacast.device_gateway.sessions import Sessions

log = logging.getLogger(__name__)

DROP_REASONS = {"connection_lost": "network", "driver_connection_lost": "network"}
LOGOUT_REASONS = {"remote_logout": "remote", "remote": "remote", "requested": "requested"}


class Reports:
    """The drivers' `DriverListener`."""

    def __init__(
        self, sessions: Sessions, board: QrBoard, receipts: Receipts, inbox: Inbox
    ) -> None:
        self.sessions = sessions
        self.board = board
        self.receipts = receipts
        self.inbox = inbox
        self._last: dict[str, asyncio.Task[None]] = {}

    # -- ordering --------------------------------------------------------------------------

    def _in_order(self, device_id: str, work: Coroutine[Any, Any, None]) -> None:
        previous = self._last.get(device_id)
        task = asyncio.create_task(self._after(previous, work, device_id))
        self._last[device_id] = task
        task.add_done_callback(lambda done: self._forget(device_id, done))

    async def _after(
        self, previous: asyncio.Task[None] | None, work: Coroutine[Any, Any, None], device_id: str
    ) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        try:
            await work
        except Exception:
            log.exception("handling a report about %s failed", device_id)

    def _forget(self, device_id: str, done: asyncio.Task[None]) -> None:
        if self._last.get(device_id) is done:
            del self._last[device_id]

    async def drain(self, timeout: float) -> None:
        """Wait (at most `timeout` seconds) until every report so far is handled: a session
        still to be stored must not be lost to a shutdown."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._last:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                log.warning("%s devices' reports left unhandled at shutdown", len(self._last))
                return
            await asyncio.wait(list(self._last.values()), timeout=left)

    def stop(self) -> None:
        for task in self._last.values():
            task.cancel()

    # -- DriverListener --------------------------------------------------------------------

    async def on_qr(self, device_id: str, code: str) -> None:
        self._in_order(device_id, self._qr(device_id, code))

    async def on_paired(self, device_id: str, phone: str, jid: str) -> None:
        self._in_order(device_id, self._paired(device_id, phone, jid))

    async def on_session(self, device_id: str, session: bytes) -> None:
        self._in_order(device_id, self._session(device_id, session))

    async def on_connected(self, device_id: str) -> None:
        self._in_order(device_id, self._connected(device_id))

    async def on_disconnected(self, device_id: str, reason: str) -> None:
        self._in_order(device_id, self._disconnected(device_id, reason))

    async def on_logged_out(self, device_id: str, reason: str) -> None:
        self._in_order(device_id, self._logged_out(device_id, reason))

    async def on_banned(self, device_id: str, until: datetime | None, reason: str) -> None:
        self._in_order(device_id, self._banned(device_id, until, reason))

    async def on_receipt(
        self, device_id: str, wa_message_id: str, kind: Literal["delivered", "read"], at: datetime
    ) -> None:
        self._in_order(device_id, self.receipts.receipt(device_id, wa_message_id, kind, at))

    async def on_inbound(self, device_id: str, message: Inbound) -> None:
        # In an order of their own: one waiting for start-up's read-back of recent sends
        # must not hold up the device's connection reports.
        self._in_order(f"{device_id}/inbound", self.inbox.received(device_id, message))

    # -- handling --------------------------------------------------------------------------

    async def _connected(self, device_id: str) -> None:
        s = self.sessions
        if not s.serves(device_id):
            return
        s.came_online(device_id)
        state = s.directory.state(device_id)
        if state is not None:
            await s.record(state, ev.DeviceConnected)
        s.on_sendable(device_id)

    async def _disconnected(self, device_id: str, reason: str) -> None:
        s = self.sessions
        if not s.serves(device_id):
            return
        s.went_offline(device_id)
        if reason == "replaced":
            return  # another connection (replica) holds the session now
        state = s.directory.state(device_id)
        if state is not None:
            await s.record(state, ev.DeviceDisconnected, reason=DROP_REASONS.get(reason, "error"))
        if reason != "requested":
            s.reconnect_later(device_id)

    async def _logged_out(self, device_id: str, reason: str) -> None:
        s = self.sessions
        state = s.directory.state(device_id)
        if state is None or not s.serves(device_id):
            return
        self.board.clear(device_id)
        await s.lost(state, LOGOUT_REASONS.get(reason, "session_lost"))

    async def _banned(self, device_id: str, until: datetime | None, reason: str) -> None:
        s = self.sessions
        state = s.directory.state(device_id)
        if state is None or not s.serves(device_id):
            return
        metrics.BANS.inc()
        s.banned_until[device_id] = until
        s.offline_since.setdefault(device_id, s.clock.now())
        await s.record(state, ev.DeviceBanned, until=until, reason=reason)
        if until is not None:
            s.spawn(self._unban_at(device_id, until))

    async def _unban_at(self, device_id: str, until: datetime) -> None:
        s = self.sessions
        await s.clock.sleep_until(until)
        if s.banned_until.get(device_id) != until:
            return
        s.banned_until.pop(device_id, None)
        state = s.directory.state(device_id)
        if state is not None and device_id in s.online:
            s.offline_since.pop(device_id, None)
            await s.record(state, ev.DeviceConnected)
            s.on_sendable(device_id)

    async def _session(self, device_id: str, session: bytes) -> None:
        """Keep the session: it is the link itself, so a busy bus gets more tries."""
        delay = 0.5
        while True:
            try:
                await self.sessions.store.put(device_id, session)
                return
            except (TimeoutError, nats.errors.Error) as exc:
                if delay > 30:
                    raise
                log.warning("storing the session of %s failed (%s); retrying", device_id, exc)
                await asyncio.sleep(delay)
                delay *= 2

    async def _paired(self, device_id: str, phone: str, jid: str) -> None:
        s = self.sessions
        state = s.directory.state(device_id)
        if state is None or not s.serves(device_id):
            return
        self.board.clear(device_id)
        s.linking.add(device_id)
        await s.record(state, ev.DevicePaired, phone=phone, jid=jid)

    async def _qr(self, device_id: str, code: str) -> None:
        s = self.sessions
        state = s.directory.state(device_id)
        if state is not None and s.serves(device_id):
            await self.board.show(state.tenant_id, device_id, "qr", code, s.clock.now())
