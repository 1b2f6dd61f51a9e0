"""Commands of the `webhooks` owner and the queries it answers.

A command answers once this service's tables (and its directory) hold what it appended:
an event that happens after a 201 reaches the new endpoint, and a deleted one gets nothing
that is taken in after the answer.
"""

from __future__ import annotations

import secrets

import msgspec

from wacast.contracts import webhooks as wh
from wacast.contracts.base import Command, Reply
from wacast.contracts.streams import WEBHOOKS
from wacast.contracts.subjects import check_token
from wacast.runtime.commands import invalid, problem
from wacast.runtime.eventstore import Conflict, Stored
from wacast.runtime.urlguard import Unresolvable, UrlRefused
from wacast.webhook_service import signing
from wacast.webhook_service.core import Core

NOT_FOUND = ("webhook_not_found", "No such webhook")


class Commands:
    def __init__(self, core: Core) -> None:
        self.core = core

    async def handle(self, command: Command) -> Reply:
        match command:
            case wh.CreateWebhook():
                return await self.create(command)
            case wh.DeleteWebhook():
                return await self.delete(command)
            case wh.ReplayWebhookDelivery():
                return await self.replay(command)
        return problem("unknown_command", "Not a webhook command", 400)

    async def create(self, command: wh.CreateWebhook) -> Reply:
        core = self.core
        tenant = command.tenant_id
        webhook_id = command.webhook_id or f"wh_{secrets.token_hex(10)}"
        try:
            subject = core.topology.webhook(tenant, check_token(webhook_id, "webhook id"))
        except ValueError as exc:
            return invalid(exc)
        stored = await core.store.load(WEBHOOKS, subject)
        if stored:
            return _existing(command, stored)
        limit = core.settings.webhook_max_per_tenant
        if core.directory.count(tenant) >= limit:
            return problem(
                "too_many_webhooks",
                "The tenant has as many webhooks as it may",
                422,
                f"at most {limit} webhooks per tenant; delete one first",
            )
        try:
            await core.poster.check(command.url)
        except UrlRefused as exc:
            return problem("url_refused", "The webhook URL may not be reached", 422, str(exc))
        except Unresolvable as exc:
            return problem(
                "url_unresolvable", "The webhook URL's host has no address", 422, str(exc)
            )
        created = wh.WebhookCreated(
            tenant_id=tenant,
            occurred_at=core.clock.now(),
            webhook_id=webhook_id,
            url=command.url,
            event_types=command.event_types,
            secret=signing.new_secret(),
            description=command.description,
        )
        try:
            appended = await core.store.append(
                subject, [created], msg_id=f"create-{webhook_id}", expected=0
            )
        except Conflict:
            return _existing(command, await core.store.load(WEBHOOKS, subject))
        await core.runner.wait_until(WEBHOOKS.key, appended.seq, core.settings.webhook_read_timeout)
        return _created(created, appended.seq)

    async def delete(self, command: wh.DeleteWebhook) -> Reply:
        core = self.core
        if core.directory.get(command.tenant_id, command.webhook_id) is None:
            return problem(*NOT_FOUND, 404, command.webhook_id)
        deleted = wh.WebhookDeleted(
            tenant_id=command.tenant_id,
            occurred_at=core.clock.now(),
            webhook_id=command.webhook_id,
        )
        subject = deleted.subject(core.topology)
        last = await core.store.last_seq(WEBHOOKS, subject)
        try:
            appended = await core.store.append(
                subject, [deleted], msg_id=f"delete-{command.webhook_id}", expected=last
            )
        except Conflict:
            return problem(*NOT_FOUND, 404, command.webhook_id)
        await core.runner.wait_until(WEBHOOKS.key, appended.seq, core.settings.webhook_read_timeout)
        return Reply(ok=True, seq=appended.seq, stream=WEBHOOKS.key, id=command.webhook_id)

    async def replay(self, command: wh.ReplayWebhookDelivery) -> Reply:
        core = self.core
        if core.directory.get(command.tenant_id, command.webhook_id) is None:
            return problem(*NOT_FOUND, 404, command.webhook_id)
        found = await core.lookups.delivery(command.tenant_id, command.delivery_id)
        if found is None or found[0].webhook_id != command.webhook_id:
            return problem("delivery_not_found", "No such delivery", 404, command.delivery_id)
        delivery, last_seq = found
        if delivery.status == "pending":
            return problem(
                "delivery_pending",
                "The delivery is still pending",
                409,
                "only a delivered or dead delivery can be replayed",
            )
        replay = wh.WebhookReplayRequested(
            tenant_id=command.tenant_id,
            occurred_at=core.clock.now(),
            delivery_id=delivery.id,
            webhook_id=delivery.webhook_id,
            source_stream=delivery.source_stream,
            source_seq=delivery.source_seq,
            event_type=delivery.event_type,
        )
        try:
            appended = await core.store.append(
                replay.subject(core.topology),
                [replay],
                msg_id=f"replay-{delivery.id}-{last_seq}",
                expected=last_seq,
            )
        except Conflict:
            return problem("delivery_changed", "The delivery changed meanwhile; try again", 409)
        await core.runner.wait_until(WEBHOOKS.key, appended.seq, core.settings.webhook_read_timeout)
        return Reply(ok=True, seq=appended.seq, stream=WEBHOOKS.key, id=delivery.id)


def _existing(command: wh.CreateWebhook, stored: list[Stored]) -> Reply:
    """A retried creation (same id, same endpoint) gets the first answer; else a clash."""
    first = stored[0].event if len(stored) == 1 else None
    if (
        isinstance(first, wh.WebhookCreated)
        and first.url == command.url
        and first.event_types == command.event_types
    ):
        return _created(first, stored[0].seq)
    return problem("webhook_exists", "A webhook with this id exists", 409, command.webhook_id)


def _created(created: wh.WebhookCreated, seq: int) -> Reply:
    return Reply(
        ok=True,
        seq=seq,
        stream=WEBHOOKS.key,
        id=created.webhook_id,
        data={
            "secret": created.secret,
            "created_at": msgspec.to_builtins(created.occurred_at),
        },
    )


class Queries:
    def __init__(self, core: Core) -> None:
        self.core = core

    async def _caught_up(self, query: wh.WebhookQuery) -> None:
        if query.after_seq:
            await self.core.runner.wait_until(
                WEBHOOKS.key, query.after_seq, self.core.settings.webhook_read_timeout
            )

    async def list(self, query: wh.ListWebhooks) -> wh.WebhookPage:
        await self._caught_up(query)
        return await self.core.lookups.list_webhooks(query.tenant_id, query.cursor, query.limit)

    async def get(self, query: wh.GetWebhook) -> wh.Webhook | Reply:
        await self._caught_up(query)
        found = await self.core.lookups.webhook(query.tenant_id, query.webhook_id)
        return found if found is not None else problem(*NOT_FOUND, 404, query.webhook_id)

    async def deliveries(self, query: wh.ListDeliveries) -> wh.DeliveryPage | Reply:
        await self._caught_up(query)
        if await self.core.lookups.webhook(query.tenant_id, query.webhook_id) is None:
            return problem(*NOT_FOUND, 404, query.webhook_id)
        return await self.core.lookups.list_deliveries(
            query.tenant_id, query.webhook_id, query.status, query.cursor, query.limit
        )
