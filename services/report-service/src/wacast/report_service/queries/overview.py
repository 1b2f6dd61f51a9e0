"""The tenant at a glance."""

from __future__ import annotations

from datetime import datetime, timedelta

from wacast.contracts import queries as q
from wacast.report_service.queries.common import local_midnight, tenant_zone
from wacast.runtime.projection import DbConnection


async def overview(
    conn: DbConnection, query: q.Query, now: datetime, window: timedelta
) -> q.Overview:
    tenant = query.tenant_id
    row = await conn.fetchrow("SELECT name, timezone FROM tenants WHERE tenant_id = $1", tenant)
    today = local_midnight(now, await tenant_zone(conn, tenant))

    async def by(sql: str) -> dict[str, int]:
        return {r[0]: r[1] for r in await conn.fetch(sql, tenant)}

    leads = await conn.fetchrow(
        "SELECT count(*) AS n, count(*) FILTER (WHERE opted_out) AS opted_out FROM leads "
        "WHERE tenant_id = $1 AND deleted_at IS NULL AND NOT gone",
        tenant,
    )
    return q.Overview(
        tenant_id=tenant,
        name=row["name"] if row else "",
        timezone=row["timezone"] if row else "UTC",
        devices=await by("SELECT status, count(*) FROM devices WHERE tenant_id = $1 GROUP BY 1"),
        leads=leads["n"] if leads else 0,
        opted_out=leads["opted_out"] if leads else 0,
        campaigns={
            r[0]: r[1]
            for r in await conn.fetch(
                "SELECT CASE WHEN state = 'completed' AND outcomes_at + $2 <= $3 THEN 'finished' "
                "ELSE state END, count(*) FROM campaigns WHERE tenant_id = $1 GROUP BY 1",
                tenant,
                window,
                now,
            )
        },
        sequences=await by(
            "SELECT status, count(*) FROM sequences WHERE tenant_id = $1 GROUP BY 1"
        ),
        active_enrollments=await conn.fetchval(
            "SELECT count(*) FROM enrollments WHERE tenant_id = $1 AND status = 'active'", tenant
        ),
        sends_today=await conn.fetchval(
            "SELECT coalesce(sum(sent), 0) FROM device_sends WHERE tenant_id = $1 AND bucket >= $2",
            tenant,
            today,
        ),
        messages=await by(
            "SELECT status, sum(n)::bigint FROM campaign_counts WHERE tenant_id = $1 GROUP BY 1"
        ),
    )
