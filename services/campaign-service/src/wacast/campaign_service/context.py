"""What every part of the service is handed: the stores, the clock, the settings; and the
small helpers they share (loading aggregates, choosing ids, building replies)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nats.js.errors import NotFoundError

from wacast.campaign_service.adapters.fetch import Fetcher
from wacast.campaign_service.adapters.objects import MediaObjects
from wacast.campaign_service.adapters.readmodel import ReadModel
from wacast.campaign_service.domain import campaign as campaign_rules
from wacast.campaign_service.domain import lead as lead_rules
from wacast.campaign_service.domain.errors import invalid
from wacast.campaign_service.settings import Settings
from wacast.contracts.base import Event, Reply, encode
from wacast.contracts.media import MediaDeleted, MediaStored
from wacast.contracts.streams import CAMPAIGNS, LEADS, MEDIA, StreamSpec, codec
from wacast.contracts.subjects import Topology, check_token
from wacast.runtime.clock import Clock
from wacast.runtime.eventstore import Append, Appended, EventStore


@dataclass
class Deps:
    store: EventStore
    topology: Topology
    clock: Clock
    settings: Settings
    reads: ReadModel
    objects: MediaObjects
    fetcher: Fetcher

    # loading aggregates --------------------------------------------------------------
    async def lead(self, tenant_id: str, lead_id: str) -> lead_rules.Lead:
        stored = await self.store.load(LEADS, self.topology.lead(tenant_id, lead_id))
        return lead_rules.replay(tenant_id, lead_id, ((s.seq, s.event) for s in stored))

    async def claim(self, tenant_id: str, phone_key: str) -> lead_rules.Claim:
        subject = self.topology.lead_phone(tenant_id, phone_key)
        seq, event = await self.last(LEADS, subject)
        return lead_rules.claim_of(phone_key, event, seq)

    async def claims(self, tenant_id: str, keys: Sequence[str]) -> dict[str, lead_rules.Claim]:
        """The claims of many phones at once (batched direct gets)."""
        subjects = {self.topology.lead_phone(tenant_id, key): key for key in keys}
        found = await self.store.last_of(LEADS, list(subjects))
        claims: dict[str, lead_rules.Claim] = {}
        for subject, key in subjects.items():
            last = found.get(subject)
            event, seq = (last.event, last.seq) if last else (None, 0)
            claims[key] = lead_rules.claim_of(key, event, seq)
        return claims

    async def campaign(self, tenant_id: str, campaign_id: str) -> campaign_rules.Campaign:
        stored = await self.store.load(CAMPAIGNS, self.topology.campaign(tenant_id, campaign_id))
        return campaign_rules.replay(tenant_id, campaign_id, ((s.seq, s.event) for s in stored))

    async def media(self, tenant_id: str, media_id: str) -> MediaStored | None:
        """The media item when it is stored and not deleted."""
        stored = await self.store.load(MEDIA, self.topology.media(tenant_id, media_id))
        found: MediaStored | None = None
        for item in stored:
            if isinstance(item.event, MediaStored):
                found = item.event
            elif isinstance(item.event, MediaDeleted):
                found = None
        return found

    async def last(self, spec: StreamSpec, subject: str) -> tuple[int, Event | None]:
        """The subject's last sequence and event ((0, None) when it is empty)."""
        try:
            msg = await self.store.js.get_last_msg(spec.name(self.topology), subject, direct=True)
        except NotFoundError:
            return 0, None
        return int(msg.seq or 0), codec(spec).decode(msg.data or b"")

    async def region(self, tenant_id: str) -> str:
        """The tenant's default phone region (its settings, else the service default)."""
        found = await self.reads.tenant(tenant_id)
        if found is None:
            await self.reads.caught_up("TENANTS")
            found = await self.reads.tenant(tenant_id)
        return found[0] if found else self.settings.default_phone_region

    async def timezone(self, tenant_id: str) -> str:
        found = await self.reads.tenant(tenant_id)
        return found[1] if found else "UTC"


def new_id(prefix: str, tenant_id: str, idempotency_key: str, given: str, what: str) -> str:
    """The id given by the client, one derived from its idempotency key (a retried command
    finds what the first one made), or a fresh one."""
    if given:
        try:
            return check_token(given, what)
        except ValueError as exc:
            raise invalid("invalid_id", f"The {what} is not usable", str(exc)) from None
    if idempotency_key:
        digest = hashlib.sha256(f"{tenant_id}\x1f{what}\x1f{idempotency_key}".encode())
        return prefix + digest.hexdigest()[:24]
    return prefix + uuid.uuid4().hex[:24]


def decision_id(prefix: str, events: Sequence[Event]) -> str:
    """A message id for a decision: the same bytes retried are one message, while another
    decision taken on the same state (different content) is never mistaken for it."""
    digest = hashlib.sha256(b"".join(encode(e) for e in events)).hexdigest()[:16]
    return f"{prefix}.{digest}"


def subject_items(
    subject: str, events: Sequence[Event], expected: int, msg_id: str
) -> list[Append]:
    """Events for one aggregate inside a batch: only the first carries the expected
    sequence (the server refuses one on a later message of the same subject)."""
    prefix = decision_id(msg_id, events)
    return [
        Append(subject, event, f"{prefix}.{i}", expected if i == 0 else None)
        for i, event in enumerate(events)
    ]


def ok(appended: Appended | None, spec: StreamSpec, ident: str, **data: Any) -> Reply:
    """A decision's reply: the stream key and sequence of what it appended (0: nothing)."""
    if appended is None:
        return Reply(ok=True, id=ident, data=data)
    return Reply(ok=True, seq=appended.seq, stream=spec.key, id=ident, data=data)
