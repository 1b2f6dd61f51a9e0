"""Reads of the webhook-service's tables: endpoints, the delivery log, due deliveries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from wacast.contracts import webhooks as wh
from wacast.webhook_service.directory import Endpoint


@dataclass(frozen=True, slots=True)
class Due:
    """A delivery whose (next) try is due, first of its resource for its endpoint."""

    tenant_id: str
    delivery_id: str
    webhook_id: str
    event_type: str
    source_stream: str
    source_seq: int
    attempts: int
    last_seq: int


@dataclass(frozen=True, slots=True)
class Work:
    tenant_id: str
    webhook_id: str
    due_at: datetime


_DELIVERY_COLUMNS = (
    "delivery_id, webhook_id, event_type, source_stream, source_seq, status, attempts, "
    "last_status_code, last_error, next_attempt_at, queued_at, updated_at, delivered_at, "
    "replays, queued_seq, last_seq"
)


class Lookups:
    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self.pool = pool
        self.webhooks = f'"{schema}".webhooks'
        self.deliveries = f'"{schema}".deliveries'

    async def live_endpoints(self) -> list[Endpoint]:
        rows = await self.pool.fetch(
            "SELECT tenant_id, webhook_id, url, event_types, secret, created_at "
            f"FROM {self.webhooks} WHERE deleted_at IS NULL"
        )
        return [
            Endpoint(
                tenant_id=r["tenant_id"],
                webhook_id=r["webhook_id"],
                url=r["url"],
                event_types=tuple(r["event_types"]),
                secret=r["secret"],
                created_at=r["created_at"],
            )
            for r in rows
        ]

    async def webhook(self, tenant_id: str, webhook_id: str) -> wh.Webhook | None:
        row = await self.pool.fetchrow(
            f"SELECT * FROM {self.webhooks} "
            "WHERE tenant_id = $1 AND webhook_id = $2 AND deleted_at IS NULL",
            tenant_id,
            webhook_id,
        )
        return None if row is None else _webhook(row)

    async def list_webhooks(self, tenant_id: str, cursor: str, limit: int) -> wh.WebhookPage:
        rows = await self.pool.fetch(
            f"SELECT * FROM {self.webhooks} WHERE tenant_id = $1 AND deleted_at IS NULL "
            "AND webhook_id > $2 ORDER BY webhook_id LIMIT $3",
            tenant_id,
            cursor,
            limit + 1,
        )
        items = [_webhook(r) for r in rows[:limit]]
        more = len(rows) > limit
        return wh.WebhookPage(items=items, next_cursor=items[-1].id if more else None)

    async def delivery(self, tenant_id: str, delivery_id: str) -> tuple[wh.Delivery, int] | None:
        """The delivery and its subject's last sequence (what a change of it expects)."""
        row = await self.pool.fetchrow(
            f"SELECT {_DELIVERY_COLUMNS} FROM {self.deliveries} "
            "WHERE tenant_id = $1 AND delivery_id = $2",
            tenant_id,
            delivery_id,
        )
        return None if row is None else (_delivery(row), int(row["last_seq"]))

    async def list_deliveries(
        self,
        tenant_id: str,
        webhook_id: str,
        status: str | None,
        cursor: str,
        limit: int,
    ) -> wh.DeliveryPage:
        before = int(cursor) if cursor.isdigit() else 2**63 - 1
        rows = await self.pool.fetch(
            f"SELECT {_DELIVERY_COLUMNS} FROM {self.deliveries} "
            "WHERE tenant_id = $1 AND webhook_id = $2 AND queued_seq < $3 "
            "AND ($4::text IS NULL OR status = $4) ORDER BY queued_seq DESC LIMIT $5",
            tenant_id,
            webhook_id,
            before,
            status,
            limit + 1,
        )
        items = [_delivery(r) for r in rows[:limit]]
        more = len(rows) > limit
        return wh.DeliveryPage(
            items=items, next_cursor=str(rows[limit - 1]["queued_seq"]) if more else None
        )

    async def work(self) -> list[Work]:
        """Live endpoints with a pending delivery that has a time, and the earliest time:
        one probe of `deliveries_ready` per endpoint."""
        rows = await self.pool.fetch(
            "SELECT w.tenant_id, w.webhook_id, d.due_at "
            f"FROM {self.webhooks} w CROSS JOIN LATERAL ("
            f"  SELECT next_attempt_at AS due_at FROM {self.deliveries} d"
            "   WHERE d.tenant_id = w.tenant_id AND d.webhook_id = w.webhook_id"
            "   AND d.status = 'pending' AND d.next_attempt_at IS NOT NULL"
            "   ORDER BY d.next_attempt_at LIMIT 1"
            ") d WHERE w.deleted_at IS NULL"
        )
        return [Work(r["tenant_id"], r["webhook_id"], r["due_at"]) for r in rows]

    async def due(self, tenant_id: str, webhook_id: str, now: datetime, limit: int) -> list[Due]:
        """Up to `limit` due deliveries of one endpoint, each the first pending one of its
        resource (only those have a time), earliest first: a range of `deliveries_ready`."""
        rows = await self.pool.fetch(
            "SELECT delivery_id, event_type, source_stream, source_seq, attempts, last_seq"
            f" FROM {self.deliveries}"
            " WHERE tenant_id = $1 AND webhook_id = $2 AND status = 'pending'"
            " AND next_attempt_at IS NOT NULL AND next_attempt_at <= $3"
            " ORDER BY next_attempt_at, source_seq LIMIT $4",
            tenant_id,
            webhook_id,
            now,
            limit,
        )
        return [
            Due(
                tenant_id=tenant_id,
                delivery_id=r["delivery_id"],
                webhook_id=webhook_id,
                event_type=r["event_type"],
                source_stream=r["source_stream"],
                source_seq=int(r["source_seq"]),
                attempts=int(r["attempts"]),
                last_seq=int(r["last_seq"]),
            )
            for r in rows
        ]


def _webhook(row: asyncpg.Record) -> wh.Webhook:
    return wh.Webhook(
        id=row["webhook_id"],
        url=row["url"],
        event_types=list(row["event_types"]),
        description=row["description"],
        created_at=row["created_at"],
    )


def _delivery(row: asyncpg.Record) -> wh.Delivery:
    return wh.Delivery(
        id=row["delivery_id"],
        webhook_id=row["webhook_id"],
        event_id=wh.event_id(row["source_stream"], int(row["source_seq"])),
        event_type=row["event_type"],
        source_stream=row["source_stream"],
        source_seq=int(row["source_seq"]),
        status=row["status"],
        attempts=int(row["attempts"]),
        last_status_code=row["last_status_code"],
        last_error=row["last_error"],
        next_attempt_at=row["next_attempt_at"],
        queued_at=row["queued_at"],
        updated_at=row["updated_at"],
        delivered_at=row["delivered_at"],
        replays=int(row["replays"]),
    )
