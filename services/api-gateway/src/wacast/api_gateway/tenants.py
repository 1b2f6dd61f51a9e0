"""Tenants and API keys: the api-gateway owns them (commands of owner `tenants`).

A tenant is created once (its subject appended with expected sequence 0); a key is issued
once under its own subject, only for a tenant that exists, and revoked by its tenant. A key
issued again with the same hash for the same tenant is the same key: the reply repeats the
first one, which makes the dev tenant's start-up hook idempotent.
"""

from __future__ import annotations

import functools
import logging
import re
import zoneinfo
from typing import Any

from faststream.nats import NatsBroker

from wacast.api_gateway.keys import KeyIndex
from wacast.contracts import queries as q
from wacast.contracts import tenants as tn
from wacast.contracts.base import Reply
from wacast.contracts.commands import (
    ChangeTenantSettings,
    CreateTenant,
    IssueApiKey,
    RevokeApiKey,
    TenantCommand,
)
from wacast.contracts.streams import TENANTS
from wacast.contracts.subjects import Topology, check_token
from wacast.runtime.clock import Clock
from wacast.runtime.commands import problem, serve_commands, serve_query
from wacast.runtime.eventstore import Conflict, EventStore

log = logging.getLogger("wacast.api.tenants")

_SHA256 = re.compile(r"[0-9a-f]{64}")
_REGION = re.compile(r"[A-Z]{2}")
MAX_KEYWORDS = 50
"""Opt-out keywords a tenant may have."""
MAX_KEYWORD_LENGTH = 40
"""Characters of one opt-out keyword."""


@functools.cache
def time_zones() -> frozenset[str]:
    """IANA names of the installed time zone database (the `tzdata` package or the
    system's); UTC even without one, so a bare image can still create tenants."""
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def settings_problem(command: CreateTenant | ChangeTenantSettings) -> Reply | None:
    """The problem with a tenant's new settings, None when they are fine."""
    if command.timezone not in time_zones():
        return problem(
            "invalid_request",
            "The settings are not valid",
            422,
            f"timezone must be an IANA time zone such as Europe/Madrid, got {command.timezone!r}",
        )
    if not _REGION.fullmatch(command.default_region):
        return problem(
            "invalid_request",
            "The settings are not valid",
            422,
            "default_region must be an ISO 3166 alpha-2 code such as ES",
        )
    keywords = getattr(command, "opt_out_keywords", None)
    if keywords is not None and (
        not 1 <= len(keywords) <= MAX_KEYWORDS
        or any(not 1 <= len(k.strip()) <= MAX_KEYWORD_LENGTH for k in keywords)
    ):
        return problem(
            "invalid_request",
            "The settings are not valid",
            422,
            f"opt_out_keywords: 1-{MAX_KEYWORDS} keywords of 1-{MAX_KEYWORD_LENGTH} characters",
        )
    return None


def keywords_of(given: list[str] | None) -> list[str]:
    """The keywords stripped, each once (case-insensitively), in the order given."""
    seen: dict[str, str] = {}
    for keyword in given if given is not None else tn.DEFAULT_OPT_OUT_KEYWORDS:
        seen.setdefault(keyword.strip().casefold(), keyword.strip())
    return list(seen.values())


def fold_settings(history: list[tn.TenantEvent]) -> tn.TenantSettingsChanged | None:
    """The tenant's current settings from its subject's events (None: no such tenant)."""
    current: tn.TenantSettingsChanged | None = None
    for event in history:
        if isinstance(event, tn.TenantCreated):
            current = tn.TenantSettingsChanged(
                tenant_id=event.tenant_id,
                occurred_at=event.occurred_at,
                name=event.name,
                timezone=event.timezone,
                default_region=event.default_region,
            )
        elif isinstance(event, tn.TenantSettingsChanged) and current is not None:
            current = event
    return current


class Tenants:
    """Decides tenant and key commands. With the replica's key index, a command about a key
    answers once that index applied it: a key works, or stops working, on this replica the
    moment the reply arrives (other replicas follow within milliseconds)."""

    def __init__(
        self, store: EventStore, topology: Topology, clock: Clock, keys: KeyIndex | None = None
    ) -> None:
        self.store = store
        self.topology = topology
        self.clock = clock
        self.keys = keys

    async def handle(self, command: TenantCommand) -> Reply:
        try:
            check_token(command.tenant_id, "tenant id")
        except ValueError as exc:
            return problem("invalid_request", "The tenant id is not valid", 422, str(exc))
        if isinstance(command, CreateTenant):
            return await self.create(command)
        if isinstance(command, ChangeTenantSettings):
            return await self.change(command)
        reply = await (
            self.issue(command) if isinstance(command, IssueApiKey) else self.revoke(command)
        )
        if reply.ok and self.keys is not None:
            await self.keys.reach(reply.seq)
        return reply

    def _base(self, tenant_id: str) -> dict[str, Any]:
        return {"tenant_id": tenant_id, "occurred_at": self.clock.now()}

    async def _append(
        self, subject: str, event: tn.TenantEvent, msg_id: str, expected: int, id_: str
    ) -> Reply:
        appended = await self.store.append(subject, [event], msg_id=msg_id, expected=expected)
        return Reply(ok=True, seq=appended.seq, stream=TENANTS.key, id=id_)

    async def create(self, command: CreateTenant) -> Reply:
        if (refused := settings_problem(command)) is not None:
            return refused
        subject = self.topology.tenant(command.tenant_id)
        if await self.store.last_seq(TENANTS, subject):
            return problem("tenant_exists", "A tenant with this id exists", 409)
        event = tn.TenantCreated(
            **self._base(command.tenant_id),
            name=command.name,
            timezone=command.timezone,
            default_region=command.default_region,
        )
        try:
            return await self._append(
                subject, event, f"tenant:{command.tenant_id}", 0, command.tenant_id
            )
        except Conflict:
            return problem("tenant_exists", "A tenant with this id exists", 409)

    async def change(self, command: ChangeTenantSettings) -> Reply:
        if (refused := settings_problem(command)) is not None:
            return refused
        subject = self.topology.tenant(command.tenant_id)
        last = await self.store.last_seq(TENANTS, subject)
        if not last:
            return problem("not_found", "No such tenant", 404)
        event = tn.TenantSettingsChanged(
            **self._base(command.tenant_id),
            name=command.name,
            timezone=command.timezone,
            default_region=command.default_region,
            opt_out_keywords=keywords_of(command.opt_out_keywords),
            device_daily_cap=command.device_daily_cap,
            pacing=command.pacing,
        )
        msg_id = f"tenant:{command.tenant_id}:{command.idempotency_key or last}"
        try:
            return await self._append(subject, event, msg_id, last, command.tenant_id)
        except Conflict:
            return problem("conflict", "The settings changed meanwhile: read them again", 409)

    async def settings(self, tenant_id: str) -> tn.TenantSettingsChanged | None:
        """The tenant's settings as its own subject has them (always current)."""
        history = await self.store.load(TENANTS, self.topology.tenant(tenant_id))
        return fold_settings([s.event for s in history])  # type: ignore[misc]

    async def issue(self, command: IssueApiKey) -> Reply:
        try:
            check_token(command.key_id, "key id")
        except ValueError as exc:
            return problem("invalid_request", "The key id is not valid", 422, str(exc))
        if not _SHA256.fullmatch(command.key_hash):
            return problem("invalid_request", "key_hash must be a hex sha256", 422)
        if not await self.store.last_seq(TENANTS, self.topology.tenant(command.tenant_id)):
            return problem("not_found", "No such tenant", 404)
        subject = self.topology.api_key(command.key_id)
        history = await self.store.load(TENANTS, subject)
        if history:
            first = history[0].event
            same = (
                isinstance(first, tn.ApiKeyIssued)
                and first.tenant_id == command.tenant_id
                and first.key_hash == command.key_hash
                and len(history) == 1
            )
            if same:
                return Reply(ok=True, seq=history[0].seq, stream=TENANTS.key, id=command.key_id)
            return problem("key_exists", "A key with this id exists", 409)
        event = tn.ApiKeyIssued(
            **self._base(command.tenant_id),
            key_id=command.key_id,
            key_hash=command.key_hash,
            name=command.name,
            prefix=command.prefix,
            expires_at=command.expires_at,
        )
        try:
            return await self._append(subject, event, f"apikey:{command.key_id}", 0, command.key_id)
        except Conflict:
            return problem("key_exists", "A key with this id exists", 409)

    async def revoke(self, command: RevokeApiKey) -> Reply:
        try:
            subject = self.topology.api_key(command.key_id)
        except ValueError:
            return problem("not_found", "No such API key", 404)
        history = await self.store.load(TENANTS, subject)
        if not history or history[0].event.tenant_id != command.tenant_id:
            return problem("not_found", "No such API key", 404)
        if any(isinstance(s.event, tn.ApiKeyRevoked) for s in history):
            return Reply(ok=True, seq=history[-1].seq, stream=TENANTS.key, id=command.key_id)
        event = tn.ApiKeyRevoked(
            **self._base(command.tenant_id), key_id=command.key_id, reason=command.reason
        )
        return await self._append(
            subject, event, f"apikey:{command.key_id}:revoked", history[-1].seq, command.key_id
        )


def serve_tenants(broker: NatsBroker, topology: Topology, tenants: Tenants, keys: KeyIndex) -> None:
    """The `tenants` owner's commands, and the `tenants.keys` query from the key index."""
    serve_commands(broker, topology, "tenants", TenantCommand, tenants.handle)

    async def list_keys(query: q.Query) -> q.ApiKeyPage:
        return q.ApiKeyPage(items=[record.public() for record in keys.of_tenant(query.tenant_id)])

    serve_query(broker, topology, q.API_KEYS, q.Query, list_keys, queue="tenants")


async def ensure_dev_tenant(tenants: Tenants, tenant_id: str, api_key: str) -> str:
    """Create the dev tenant and its key when missing; returns the key (random when none is
    given). Safe to run at every start."""
    key = api_key or tn.new_api_key()
    created = await tenants.handle(CreateTenant(tenant_id=tenant_id, name=tenant_id))
    if not created.ok and (created.problem is None or created.problem.code != "tenant_exists"):
        raise RuntimeError(f"cannot create the dev tenant {tenant_id}: {created.problem}")
    issued = await tenants.handle(
        IssueApiKey(
            tenant_id=tenant_id,
            key_id=tn.key_id_of(key),
            key_hash=tn.key_hash(key),
            name="dev",
            prefix=tn.key_display_prefix(key),
        )
    )
    if not issued.ok:
        raise RuntimeError(f"cannot issue the dev API key: {issued.problem}")
    return key
