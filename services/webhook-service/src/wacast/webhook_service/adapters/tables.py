"""The webhook-service's tables, a projection of the WEBHOOKS stream.

`webhooks` holds each endpoint (and its signing secret); `deliveries` is the delivery log:
one row per source event and endpoint with its status, tries and last answer. It is also
the durable queue the dispatcher reads.

Only the first pending delivery of a resource (per endpoint) has a `next_attempt_at`: the
others wait behind it with none, and the projection hands the time on to the next one when
the first is delivered or dead. So the dispatcher's work is one bounded range of the
`deliveries_ready` index (pending, with a time, by time), never a scan of every pending row.
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
    """
    CREATE INDEX IF NOT EXISTS deliveries_ready
        ON deliveries (tenant_id, webhook_id, next_attempt_at, source_seq)
        WHERE status = 'pending' AND next_attempt_at IS NOT NULL
    """,
    # tables written before only the first pending delivery of a resource had a time
    """
    UPDATE deliveries d SET next_attempt_at = NULL
    WHERE d.status = 'pending' AND d.next_attempt_at IS NOT NULL AND EXISTS (
        SELECT 1 FROM deliveries e WHERE e.tenant_id = d.tenant_id
        AND e.webhook_id = d.webhook_id AND e.resource = d.resource
        AND e.status = 'pending' AND e.source_seq < d.source_seq)
    """,
)

_BEHIND = """
EXISTS (SELECT 1 FROM deliveries e WHERE e.tenant_id = $1 AND e.webhook_id = {webhook}
    AND e.resource = {resource} AND e.status = 'pending' AND e.source_seq < {seq})
"""
_DEMOTE = """
UPDATE deliveries SET next_attempt_at = NULL
WHERE tenant_id = $1 AND webhook_id = {webhook} AND resource = {resource}
    AND status = 'pending' AND source_seq > {seq} AND next_attempt_at IS NOT NULL
"""
# a delivery queued (or replayed) behind a pending one of its resource waits without a time;
# one queued before pending ones of its resource (two source subjects, one resource) goes
# first and they wait
_QUEUE = f"""
WITH demoted AS ({_DEMOTE.format(webhook="$3", resource="$5", seq="$7")})
INSERT INTO deliveries (tenant_id, delivery_id, webhook_id, event_type, resource,
    source_stream, source_seq, status, next_attempt_at, queued_at, updated_at, queued_seq,
    last_seq)
SELECT $1, $2, $3, $4, $5, $6, $7,
    CASE WHEN EXISTS (SELECT 1 FROM webhooks w WHERE w.tenant_id = $1 AND w.webhook_id = $3
        AND w.deleted_at IS NULL) THEN 'pending' ELSE 'cancelled' END,
    CASE WHEN {_BEHIND.format(webhook="$3", resource="$5", seq="$7")}
        THEN NULL ELSE $8::timestamptz END,
    $8, $8, $9, $9
ON CONFLICT DO NOTHING
"""
_ATTEMPTED = """
UPDATE deliveries SET attempts = $3, last_status_code = $4, last_error = $5,
    next_attempt_at = $6, updated_at = $7, last_seq = $8
WHERE tenant_id = $1 AND delivery_id = $2
"""


def _then_next(done: str, at: str) -> str:
    """`done` (an UPDATE ending a delivery), then the next pending delivery of its resource
    gets time `at` if it was waiting."""
    return f"""
WITH done AS ({done} RETURNING tenant_id, delivery_id, webhook_id, resource)
UPDATE deliveries n SET next_attempt_at = {at}
FROM done CROSS JOIN LATERAL (
    SELECT h.delivery_id, h.next_attempt_at FROM deliveries h
    WHERE h.tenant_id = done.tenant_id AND h.webhook_id = done.webhook_id
        AND h.resource = done.resource AND h.status = 'pending'
        AND h.delivery_id <> done.delivery_id
    ORDER BY h.source_seq LIMIT 1
) head
WHERE head.next_attempt_at IS NULL AND n.tenant_id = done.tenant_id
    AND n.delivery_id = head.delivery_id
"""


_DELIVERED = _then_next(
    """
UPDATE deliveries SET status = 'delivered', attempts = $3, last_status_code = $4,
    last_error = '', next_attempt_at = NULL, updated_at = $5, delivered_at = $5, last_seq = $6
WHERE tenant_id = $1 AND delivery_id = $2""",
    "$5",
)
_DEAD = _then_next(
    """
UPDATE deliveries SET status = 'dead', attempts = $3, last_status_code = $4, last_error = $5,
    next_attempt_at = NULL, updated_at = $6, last_seq = $7
WHERE tenant_id = $1 AND delivery_id = $2""",
    "$6",
)
_REPLAY = f"""
WITH demoted AS (
    UPDATE deliveries SET next_attempt_at = NULL
    FROM (SELECT webhook_id, resource, source_seq FROM deliveries
        WHERE tenant_id = $1 AND delivery_id = $2) r
    WHERE deliveries.tenant_id = $1 AND deliveries.webhook_id = r.webhook_id
        AND deliveries.resource = r.resource AND deliveries.status = 'pending'
        AND deliveries.source_seq > r.source_seq AND deliveries.next_attempt_at IS NOT NULL
)
UPDATE deliveries d SET status = 'pending', attempts = 0, updated_at = $3,
    next_attempt_at = CASE
        WHEN {_BEHIND.format(webhook="d.webhook_id", resource="d.resource", seq="d.source_seq")}
        THEN NULL ELSE $3::timestamptz END,
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
