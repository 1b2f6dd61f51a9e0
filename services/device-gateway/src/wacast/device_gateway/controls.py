"""Holds and withdrawals of waiting sends, decided by the campaign and sequence services.

Each replica folds every `sendctl` event (they are few: one per pause, resume or cancel of
a campaign, enrollment or lead) and tells the lanes when one arrives, so a cancelled
campaign's pending messages are cancelled and a held one's are skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from nats.aio.client import Client

from wacast.contracts import messages as m
from wacast.contracts.streams import MESSAGES, codec
from wacast.contracts.subjects import Topology
from wacast.contracts.versioning import StreamCodec
from wacast.device_gateway.domain.lane import Entry
from wacast.runtime.reader import SubjectReader

log = logging.getLogger(__name__)

Scope = tuple[str, str, str]
"""(tenant, scope kind, scope id)"""
Listener = Callable[[m.SendControlEventBase], Awaitable[None]]


def scopes_of(tenant_id: str, entry: Entry) -> tuple[Scope, Scope]:
    owner = "campaign" if entry.origin == "campaign" else "enrollment"
    return (tenant_id, owner, entry.origin_id), (tenant_id, "lead", entry.lead_id)


class Controls:
    def __init__(self, nc: Client, topology: Topology) -> None:
        self.nc = nc
        self.topology = topology
        self.held: set[Scope] = set()
        self.withdrawn: dict[Scope, str] = {}
        self.listeners: list[Listener] = []
        self.ready = asyncio.Event()

    def is_held(self, tenant_id: str, entry: Entry) -> bool:
        return any(scope in self.held for scope in scopes_of(tenant_id, entry))

    def withdrawal(self, tenant_id: str, entry: Entry) -> str | None:
        """The reason `entry` must be cancelled, if its campaign, enrollment or lead was
        withdrawn."""
        for scope in scopes_of(tenant_id, entry):
            reason = self.withdrawn.get(scope)
            if reason is not None:
                return reason
        return None

    async def run(self) -> None:
        decoder = codec(MESSAGES)
        stream = MESSAGES.name(self.topology)
        async with SubjectReader(self.nc, stream, self.topology.all_of("sendctl")) as reader:
            async for batch in reader.replay():
                for msg in batch:
                    self._fold(_decode(decoder, msg.data))
            self.ready.set()
            async for batch in reader.follow():
                for msg in batch:
                    event = self._fold(_decode(decoder, msg.data))
                    if event is not None:
                        for listener in self.listeners:
                            try:
                                await listener(event)
                            except Exception:
                                log.exception("send control listener failed")

    def _fold(self, event: object) -> m.SendControlEventBase | None:
        if not isinstance(event, m.SendControlEventBase):
            return None
        scope = (event.tenant_id, event.scope, event.scope_id)
        match event:
            case m.SendsHeld():
                self.held.add(scope)
            case m.SendsReleased():
                self.held.discard(scope)
            case m.SendsWithdrawn():
                self.held.discard(scope)
                self.withdrawn[scope] = event.reason
        return event


def _decode(decoder: StreamCodec, data: bytes) -> object:
    try:
        return decoder.decode(data)
    except Exception as exc:
        log.error("undecodable send control event: %s", exc)
        return None
