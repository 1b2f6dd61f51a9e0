"""Loading and appending Device aggregates: the directory's copy plus the subject's tail."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

from nats.js.errors import NotFoundError

from wacast.contracts.devices import DeviceEvent
from wacast.contracts.streams import DEVICES
from wacast.device_gateway.directory import Directory
from wacast.device_gateway.domain.device import Device, accepts, evolve
from wacast.runtime.clock import Clock
from wacast.runtime.coalescer import Coalescer
from wacast.runtime.eventstore import MSG_ID, Append, Appended, Conflict, retry_on_conflict

log = logging.getLogger(__name__)


class DeviceStore:
    def __init__(self, appender: Coalescer, directory: Directory, clock: Clock) -> None:
        self.appender = appender
        self.store = appender.store
        self.directory = directory
        self.clock = clock
        self.topology = appender.store.topology

    async def load(self, tenant_id: str, device_id: str) -> tuple[Device, int]:
        """The device as of its subject's last event, and that event's sequence.

        Starts from the directory's copy (which may lag by a few events) and reads only
        the events after it, so a device with a long history loads in one or two gets.
        """
        known = self.directory.get(device_id)
        if known is not None and known.state.tenant_id == tenant_id:
            state, after = known.state, known.seq
        else:
            state, after = Device(device_id), 0
        subject = self.topology.device(tenant_id, device_id)
        for stored in await self.store.load(DEVICES, subject, after=after):
            state = evolve(state, stored.event)  # type: ignore[arg-type]
            after = stored.seq
        return state, after

    async def append(
        self, state: Device, seq: int, events: Sequence[DeviceEvent], msg_id: str
    ) -> Appended:
        subject = self.topology.device(events[0].tenant_id, state.device_id)
        items = [
            Append(subject, event, f"{msg_id}.{i}", seq if i == 0 else None)
            for i, event in enumerate(events)
        ]
        return await self.appender.append_group(items)

    async def record(self, tenant_id: str, device_id: str, fact: DeviceEvent) -> bool:
        """Append a fact the network reported, unless it changes nothing; True if appended.

        First from the directory's copy alone (no read: facts are appended by the replica
        that serves the device, so the copy is rarely behind); a stale copy is refused by
        the expected sequence, and then the subject's tail is read."""
        known = self.directory.get(device_id)
        if known is not None and known.state.tenant_id == tenant_id:
            try:
                return await self._record(known.state, known.seq, fact)
            except Conflict:
                pass

        async def attempt() -> bool:
            state, seq = await self.load(tenant_id, device_id)
            return await self._record(state, seq, fact)

        return await retry_on_conflict(attempt)

    async def _record(self, state: Device, seq: int, fact: DeviceEvent) -> bool:
        if not accepts(state, fact):
            log.debug(
                "%s changes nothing for %s (%s)", type(fact).__name__, state.device_id, state.status
            )
            return False
        msg_id = f"fact:{state.device_id}:{seq}:{type(fact).__name__}"
        subject = self.topology.device(fact.tenant_id, state.device_id)
        await self.appender.append(Append(subject, fact, msg_id, seq))
        return True

    async def last_msg_id(self, tenant_id: str, device_id: str) -> tuple[str, int]:
        """`Nats-Msg-Id` and sequence of the device subject's last event ("", 0 if none)."""
        subject = self.topology.device(tenant_id, device_id)
        try:
            msg = await self.store.js.get_last_msg(
                DEVICES.name(self.topology), subject, direct=True
            )
        except NotFoundError:
            return "", 0
        return (msg.headers or {}).get(MSG_ID, ""), int(msg.seq or 0)


def command_msg_id(kind: str, tenant_id: str, idempotency_key: str, fallback: bytes) -> str:
    """A client's idempotency key names the decision; without one, its content does."""
    if idempotency_key:
        digest = hashlib.sha256(f"{tenant_id}\x1f{idempotency_key}".encode()).hexdigest()
        return f"cmd:{kind}:{digest[:32]}"
    return f"cmd:{kind}:{hashlib.sha256(fallback).hexdigest()[:32]}"
