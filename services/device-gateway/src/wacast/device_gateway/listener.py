"""The drivers' listener: every report is handled in a task of its own, in the order the
reports about one device came.

Drivers call their listener one report at a time; handling a report means writing events
and session stores, so doing it inline would let one slow write hold up every device (and
10,000 devices linking at once would queue behind each other). Reports about different
devices go on in parallel; those about one device stay in order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import datetime
from typing import Any, Literal

from wacast.device_gateway.drivers.base import Inbound
from wacast.device_gateway.sessions import Sessions

log = logging.getLogger(__name__)


class OrderedListener:
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions
        self._last: dict[str, asyncio.Task[None]] = {}

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

    async def idle(self) -> None:
        """Wait until every report so far is handled."""
        while self._last:
            await asyncio.wait(list(self._last.values()))

    def stop(self) -> None:
        for task in self._last.values():
            task.cancel()

    async def on_qr(self, device_id: str, code: str) -> None:
        self._in_order(device_id, self.sessions.qr(device_id, code))

    async def on_paired(self, device_id: str, phone: str, jid: str) -> None:
        self._in_order(device_id, self.sessions.paired(device_id, phone, jid))

    async def on_session(self, device_id: str, session: bytes) -> None:
        self._in_order(device_id, self.sessions.session(device_id, session))

    async def on_connected(self, device_id: str) -> None:
        self._in_order(device_id, self.sessions.connected(device_id))

    async def on_disconnected(self, device_id: str, reason: str) -> None:
        self._in_order(device_id, self.sessions.disconnected(device_id, reason))

    async def on_logged_out(self, device_id: str, reason: str) -> None:
        self._in_order(device_id, self.sessions.logged_out(device_id, reason))

    async def on_banned(self, device_id: str, until: datetime | None, reason: str) -> None:
        self._in_order(device_id, self.sessions.banned(device_id, until, reason))

    async def on_receipt(
        self, device_id: str, wa_message_id: str, kind: Literal["delivered", "read"], at: datetime
    ) -> None:
        self._in_order(device_id, self.sessions.receipt(device_id, wa_message_id, kind, at))

    async def on_inbound(self, device_id: str, message: Inbound) -> None:
        self._in_order(device_id, self.sessions.inbound(device_id, message))
