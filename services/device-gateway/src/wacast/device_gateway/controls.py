"""Holds and withdrawals of waiting sends, decided by the campaign and sequence services.

Each replica folds every `sendctl` event (they are few: one per pause, resume or cancel of
a campaign, enrollment or lead) and tells the lanes when one arrives, so a cancelled
campaign's pending messages are cancelled and a held one's are skipped.

A campaign's or enrollment's withdrawal is final. A lead's is not: an explicit opt-in
appends `SendsReleased` for the lead, and requests appended after that release go out
again, while those requested before it stay withdrawn (cancelled, or cancelled when swept).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from nats.aio.client import Client
from nats.js.errors import NotFoundError

from wacast.contracts import messages as m
from wacast.contracts.streams import MESSAGES, codec
from wacast.contracts.subjects import Topology
from wacast.contracts.versioning import StreamCodec
from wacast.device_gateway.domain.lane import Entry
from wacast.runtime.reader import SubjectReader, position

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
        self.released_at: dict[Scope, int] = {}
        """Lead scopes released after their withdrawal: stream sequence of the release
        (requests at or after it are not withdrawn)."""
        self._folded: dict[Scope, int] = {}
        self.listeners: list[Listener] = []
        self.ready = asyncio.Event()

    def is_held(self, tenant_id: str, entry: Entry) -> bool:
        return any(scope in self.held for scope in scopes_of(tenant_id, entry))

    def withdrawal(self, tenant_id: str, entry: Entry) -> str | None:
        """The reason `entry` must be cancelled, if its campaign, enrollment or lead was
        withdrawn."""
        for scope in scopes_of(tenant_id, entry):
            reason = self._withdrawn(scope, entry)
            if reason is not None:
                return reason
        return None

    def lead_withdrawn(self, tenant_id: str, entry: Entry) -> bool:
        return self._withdrawn(scopes_of(tenant_id, entry)[1], entry) is not None

    def _withdrawn(self, scope: Scope, entry: Entry) -> str | None:
        reason = self.withdrawn.get(scope)
        if reason is None:
            return None
        released = self.released_at.get(scope)
        return reason if released is None or entry.request_seq < released else None

    async def run(self) -> None:
        decoder = codec(MESSAGES)
        stream = MESSAGES.name(self.topology)
        async with SubjectReader(self.nc, stream, self.topology.all_of("sendctl")) as reader:
            async for batch in reader.replay():
                for msg in batch:
                    self._fold(position(msg), _decode(decoder, msg.data))
            self.ready.set()
            async for batch in reader.follow():
                for msg in batch:
                    event = self._fold(position(msg), _decode(decoder, msg.data))
                    if event is not None:
                        for listener in self.listeners:
                            try:
                                await listener(event)
                            except Exception:
                                log.exception("send control listener failed")

    async def refresh(self, tenant_id: str, scope: str, scope_id: str) -> None:
        """Fold the scope's latest event now (a release may be on its way to the follower
        while a request that came after it is being recorded)."""
        stream = MESSAGES.name(self.topology)
        subject = self.topology.send_control(tenant_id, scope, scope_id)
        try:
            msg = await self.nc.jetstream().get_last_msg(stream, subject, direct=True)
        except NotFoundError:
            return
        self._fold(int(msg.seq or 0), _decode(codec(MESSAGES), msg.data or b""))

    def _fold(self, seq: int, event: object) -> m.SendControlEventBase | None:
        if not isinstance(event, m.SendControlEventBase):
            return None
        scope = (event.tenant_id, event.scope, event.scope_id)
        if seq <= self._folded.get(scope, 0):
            return event  # folded already by `refresh`
        self._folded[scope] = seq
        match event:
            case m.SendsHeld():
                self.held.add(scope)
            case m.SendsReleased():
                self.held.discard(scope)
                if event.scope == "lead" and scope in self.withdrawn:
                    self.released_at[scope] = seq
            case m.SendsWithdrawn():
                self.held.discard(scope)
                self.withdrawn[scope] = event.reason
                self.released_at.pop(scope, None)
        return event


def _decode(decoder: StreamCodec, data: bytes) -> object:
    try:
        return decoder.decode(data)
    except Exception as exc:
        log.error("undecodable send control event: %s", exc)
        return None
