"""The device board: status, phone, last seen, ban, leads count, sends today."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from wacast.contracts import queries as q
from wacast.report_service.queries.common import (
    NotFound,
    decode_cursor,
    local_midnight,
    page_end,
    tenant_zone,
)
from wacast.runtime.projection import DbConnection

SELECT = """
SELECT d.*,
    (SELECT count(*) FROM leads l WHERE l.tenant_id = d.tenant_id AND l.device_id = d.device_id
        AND l.deleted_at IS NULL AND NOT l.gone) AS leads,
    (SELECT coalesce(sum(s.sent), 0) FROM device_sends s WHERE s.tenant_id = d.tenant_id
        AND s.device_id = d.device_id AND s.bucket >= $2) AS sends_today
FROM devices d
"""


def device(r: asyncpg.Record) -> q.Device:
    return q.Device(
        id=r["device_id"],
        name=r["name"],
        driver=r["driver"],
        status=r["status"],
        phone=r["phone"],
        push_name=r["push_name"],
        last_seen_at=r["last_seen_at"],
        banned_until=r["banned_until"],
        ban_reason=r["ban_reason"],
        pairing_method=r["pairing_method"],
        daily_cap=r["daily_cap"],
        warmup=r["warmup"],
        leads=r["leads"],
        sends_today=r["sends_today"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )


async def _today(conn: DbConnection, tenant_id: str, now: datetime) -> datetime:
    return local_midnight(now, await tenant_zone(conn, tenant_id))


async def list_devices(conn: DbConnection, query: q.ListDevices, now: datetime) -> q.DevicePage:
    rows = await conn.fetch(
        SELECT + "WHERE d.tenant_id = $1 AND d.seq > $3 AND ($4::text IS NULL OR d.status = $4) "
        "ORDER BY d.seq LIMIT $5",
        query.tenant_id,
        await _today(conn, query.tenant_id, now),
        decode_cursor(query.cursor),
        query.status,
        query.limit + 1,
    )
    page, cursor = page_end(list(rows), query.limit)
    return q.DevicePage(items=[device(r) for r in page], next_cursor=cursor)


async def get_device(conn: DbConnection, query: q.GetOne, now: datetime) -> q.Device:
    row = await conn.fetchrow(
        SELECT + "WHERE d.tenant_id = $1 AND d.device_id = $3",
        query.tenant_id,
        await _today(conn, query.tenant_id, now),
        query.id,
    )
    if row is None:
        raise NotFound("device")
    return device(row)


async def deletion_impact(conn: DbConnection, query: q.GetOne) -> q.DeletionImpact:
    exists = await conn.fetchval(
        "SELECT 1 FROM devices WHERE tenant_id = $1 AND device_id = $2", query.tenant_id, query.id
    )
    if not exists:
        raise NotFound("device")
    leads = await conn.fetchval(
        "SELECT count(*) FROM leads WHERE tenant_id = $1 AND device_id = $2 "
        "AND deleted_at IS NULL AND NOT gone",
        query.tenant_id,
        query.id,
    )
    messages = await conn.fetchval(
        "SELECT count(*) FROM messages WHERE tenant_id = $1 AND device_id = $2",
        query.tenant_id,
        query.id,
    )
    return q.DeletionImpact(device_id=query.id, leads=leads, messages=messages)
