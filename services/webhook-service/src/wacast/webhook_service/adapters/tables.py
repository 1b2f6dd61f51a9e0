"""The webhook-service's tables, a projection of the WEBHOOKS stream.

`webhooks` holds each endpoint (and its signing secret); `deliveries` is the delivery log:
one row per source event and endpoint with its status, tries and last answer. It is also
the durable queue the dispatcher reads: pending rows by resource and source sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from wacast.contracts import webhooks as wh
from wacast.contracts.streams import WEBHOOKS, StreamSpec
from wacast.runtime.projection import DbConnection, Envelope
from wacast.webhook_service.directory import Directory, Endpoint

DDL = (
    """
    CREATE TABLE IF NOT EXISTS webhooks (
        tenant_id text NOT NULL,
        webhook_id text NOT NULL,
        url text NOT NULL,
        event_types text[] NOT NULL,
        description text NOT NULL,
        secret text NOT NULL,
        created_at timestamptz NOT NULL,
        deleted_at timestamptz,
        last_seq bigint NOT NULL,
        PRIMARY KEY (tenant_id, webhook_id)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS deliveries (
        tenant_id text NOT NULL,
        delivery_id text NOT NULL,
        webhook_id text NOT NULL,
        event_type text NOT NULL,
        resource text NOT NULL,
        source_stream text NOT NULL,
        source_seq bigint NOT NULL,
        status text NOT NULL,
        attempts int NOT NULL DEFAULT 0,
        last_status_code int,
        last_error text NOT NULL DEFAULT '',
        next_attempt_at timestamptz,
        queued_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        delivered_at timestamptz,
        replays int NOT NULL DEFAULT 0,
        queued_seq bigint NOT NULL,
        last_seq bigint NOT NULL,
        PRIMARY KEY (tenant_id, delivery_id)
    )
    """,
    """
    CREATE INDEX IF NOT EXISTS deliveries_log
        ON deliveries (tenant_id, webhook_id, queued_seq DESC)
    """,
    """
    CREATE INDEX IF NOT EXISTS deliveries_pending
        ON deliveries (tenant_id, webhook_id, resource, source_seq)
        WHERE status = 'pending'
    """,
)

_QUEUE = """
INSERT INTO deliveries (tenant_id, delivery_id, webhook_id, event_type, resource,
    source_stream, source_seq, status, next_attempt_at, queued_at, updated_at, queued_seq,
    last_seq)
SELECT $1, $2, $3, $4, $5, $6, $7,
    CASE WHEN EXISTS (SELECT 1 FROM webhooks w WHERE w.tenant_id = $1 AND w.webhook_id = $3
        AND w.deleted_at IS NULL) THEN 'pending' ELSE 'cancelled' END,
    $8, $8, $8, $9, $9
ON CONFLICT DO NOTHING
"""
_ATTEMPTED = """
UPDATE deliveries SET attempts = $3, last_status_code = $4, last_error = $5,
    next_attempt_at = $6, updated_at = $7, last_seq = $8
WHERE tenant_id = $1 AND delivery_id = $2
"""
_DELIVERED = """
UPDATE deliveries SET status = 'delivered', attempts = $3, last_status_code = $4,
    last_error = '', next_attempt_at = NULL, updated_at = $5, delivered_at = $5, last_seq = $6
WHERE tenant_id = $1 AND delivery_id = $2
"""
_DEAD = """
UPDATE deliveries SET status = 'dead', attempts = $3, last_status_code = $4, last_error = $5,
    next_attempt_at = NULL, updated_at = $6, last_seq = $7
WHERE tenant_id = $1 AND delivery_id = $2
"""
_REPLAY = """
UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $3, updated_at = $3,
    replays = replays + 1, last_seq = $4
WHERE tenant_id = $1 AND delivery_id = $2
"""


class WebhookTables:
    name = "webhooks"
    streams: Sequence[StreamSpec] = (WEBHOOKS,)

    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    async def migrate(self, conn: DbConnection) -> None:
        for statement in DDL:
            await conn.execute(statement)

    async def apply(self, conn: DbConnection, batch: Sequence[Envelope]) -> None:
        for envelope in batch:
            await self._apply(conn, envelope.event, envelope.seq)

    async def _apply(self, conn: DbConnection, event: Any, seq: int) -> None:
        at: datetime = event.occurred_at
        tenant = event.tenant_id
        match event:
            case wh.WebhookCreated():
                await conn.execute(
                    "INSERT INTO webhooks VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8) "
                    "ON CONFLICT DO NOTHING",
                    tenant,
                    event.webhook_id,
                    event.url,
                    event.event_types,
                    event.description,
                    event.secret,
                    at,
                    seq,
                )
                self.directory.add(endpoint_of(event))
            case wh.WebhookDeleted():
                await conn.execute(
                    "UPDATE webhooks SET deleted_at = $3, last_seq = $4 "
                    "WHERE tenant_id = $1 AND webhook_id = $2",
                    tenant,
                    event.webhook_id,
                    at,
                    seq,
                )
                await conn.execute(
                    "UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, "
                    "updated_at = $3 WHERE tenant_id = $1 AND webhook_id = $2 "
                    "AND status = 'pending'",
                    tenant,
                    event.webhook_id,
                    at,
                )
                self.directory.remove(tenant, event.webhook_id)
            case wh.WebhookDeliveryQueued():
                await conn.execute(
                    _QUEUE,
                    tenant,
                    event.delivery_id,
                    event.webhook_id,
                    event.event_type,
                    event.resource,
                    event.source_stream,
                    event.source_seq,
                    at,
                    seq,
                )
            case wh.WebhookDeliveryAttempted():
                await conn.execute(
                    _ATTEMPTED,
                    tenant,
                    event.delivery_id,
                    event.attempt,
                    event.status_code or None,
                    event.error,
                    event.retry_at,
                    at,
                    seq,
                )
            case wh.WebhookDelivered():
                await conn.execute(
                    _DELIVERED,
                    tenant,
                    event.delivery_id,
                    event.attempt,
                    event.status_code,
                    at,
                    seq,
                )
            case wh.WebhookDeliveryDead():
                await conn.execute(
                    _DEAD,
                    tenant,
                    event.delivery_id,
                    event.attempts,
                    event.status_code or None,
                    event.error,
                    at,
                    seq,
                )
            case wh.WebhookReplayRequested():
                await conn.execute(_REPLAY, tenant, event.delivery_id, at, seq)


def endpoint_of(event: wh.WebhookCreated) -> Endpoint:
    return Endpoint(
        tenant_id=event.tenant_id,
        webhook_id=event.webhook_id,
        url=event.url,
        event_types=tuple(event.event_types),
        secret=event.secret,
        created_at=event.occurred_at,
    )
