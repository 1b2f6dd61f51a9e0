"""Campaign summaries, per-device reports and the message list behind every count."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import asyncpg

from wacast.contracts import queries as q
from wacast.contracts.values import Audience, MessageContent, Pacing, SendWindow
from wacast.report_service.queries import messages
from wacast.report_service.queries.common import (
    NotFound,
    Where,
    decode_cursor,
    decode_json,
    page_end,
)
from wacast.runtime.projection import DbConnection

Counts = dict[tuple[str, str], int]
"""(status, reason) -> messages"""

SELECT = """
SELECT c.*, a.first_outcome_at, a.last_outcome_at
FROM campaigns c
LEFT JOIN campaign_activity a ON a.tenant_id = c.tenant_id AND a.campaign_id = c.campaign_id
"""


def counts_of(raw: Counts, row: asyncpg.Record) -> q.CampaignCounts:
    by_status: dict[str, int] = defaultdict(int)
    failed_by_reason: dict[str, int] = defaultdict(int)
    for (status, reason), n in raw.items():
        by_status[status] += n
        if status == "failed":
            failed_by_reason[reason or "unknown"] += n
    known = sum(by_status.values())
    unrequested = 0 if row["fanout_done_at"] else max(0, row["audience_size"] - known)
    success = by_status["sent"] + by_status["delivered"] + by_status["read"]
    return q.CampaignCounts(
        total=known + unrequested,
        pending=by_status["pending"] + unrequested,
        queued=by_status["queued"],
        sent=by_status["sent"],
        delivered=by_status["delivered"],
        read=by_status["read"],
        success=success,
        failed=by_status["failed"],
        failed_by_reason=dict(sorted(failed_by_reason.items())),
    )


def campaign(row: asyncpg.Record, raw: Counts, now: datetime, window: timedelta) -> q.Campaign:
    counts = counts_of(raw, row)
    done = counts.success + counts.failed
    percent = round(100.0 * done / counts.total, 1) if counts.total else 0.0
    status = row["state"]
    outcomes_at = row["outcomes_at"]
    finished_at = None
    if status == "completed" and outcomes_at is not None and outcomes_at + window <= now:
        status, finished_at = "finished", outcomes_at + window
    return q.Campaign(
        id=row["campaign_id"],
        name=row["name"],
        status=status,
        failure_reason=row["failure_reason"],
        audience=decode_json(row["audience"], Audience),
        message=decode_json(row["message"], MessageContent),
        pacing=decode_json(row["pacing"], Pacing),
        send_window=decode_json(row["send_window"], SendWindow | None),  # type: ignore[arg-type]
        schedule_at=row["schedule_at"],
        counts=counts,
        percent=percent,
        eta=eta(row, counts, done),
        created_at=row["created_at"],
        triggered_at=row["triggered_at"],
        started_at=row["first_outcome_at"],
        completed_at=outcomes_at if status in ("completed", "finished") else None,
        finished_at=finished_at,
        cancelled_at=row["cancelled_at"],
        failed_at=row["failed_at"],
        updated_at=row["updated_at"],
    )


def eta(row: asyncpg.Record, counts: q.CampaignCounts, done: int) -> datetime | None:
    """When the last message should have its outcome, at the pace of the outcomes so far."""
    remaining = counts.pending + counts.queued
    first, last = row["first_outcome_at"], row["last_outcome_at"]
    if row["state"] != "triggered" or not remaining or first is None or done < 2:
        return None
    elapsed = (last - first).total_seconds()
    if elapsed <= 0:
        return None
    finish: datetime = last + timedelta(seconds=remaining * elapsed / (done - 1))
    return finish


async def _counts(conn: DbConnection, tenant_id: str, ids: list[str]) -> dict[str, Counts]:
    rows = await conn.fetch(
        "SELECT campaign_id, status, reason, sum(n)::bigint AS n FROM campaign_counts "
        "WHERE tenant_id = $1 AND campaign_id = ANY($2::text[]) "
        "GROUP BY campaign_id, status, reason",
        tenant_id,
        ids,
    )
    found: dict[str, Counts] = defaultdict(dict)
    for r in rows:
        found[r["campaign_id"]][(r["status"], r["reason"])] = r["n"]
    return found


STATE_OF = {"finished": "completed"}


async def list_campaigns(
    conn: DbConnection, query: q.ListCampaigns, now: datetime, window: timedelta
) -> q.CampaignPage:
    """Newest first. `completed` and `finished` are told apart after the fetch (by time)."""
    state = STATE_OF.get(query.status or "", query.status)
    rows = await conn.fetch(
        SELECT + "WHERE c.tenant_id = $1 AND ($2 = 0 OR c.seq < $2) "
        "AND ($3::text IS NULL OR c.state = $3) ORDER BY c.seq DESC LIMIT $4",
        query.tenant_id,
        decode_cursor(query.cursor),
        state,
        query.limit + 1,
    )
    page, cursor = page_end(list(rows), query.limit)
    counts = await _counts(conn, query.tenant_id, [r["campaign_id"] for r in page])
    items = [campaign(r, counts.get(r["campaign_id"], {}), now, window) for r in page]
    if query.status in ("completed", "finished"):
        items = [c for c in items if c.status == query.status]
    return q.CampaignPage(items=items, next_cursor=cursor)


async def get_campaign(
    conn: DbConnection, query: q.GetOne, now: datetime, window: timedelta
) -> q.Campaign:
    row = await conn.fetchrow(
        SELECT + "WHERE c.tenant_id = $1 AND c.campaign_id = $2", query.tenant_id, query.id
    )
    if row is None:
        raise NotFound("campaign")
    counts = await _counts(conn, query.tenant_id, [query.id])
    return campaign(row, counts.get(query.id, {}), now, window)


async def _exists(conn: DbConnection, tenant_id: str, campaign_id: str) -> None:
    found = await conn.fetchval(
        "SELECT 1 FROM campaigns WHERE tenant_id = $1 AND campaign_id = $2", tenant_id, campaign_id
    )
    if not found:
        raise NotFound("campaign")


async def report(conn: DbConnection, query: q.GetOne) -> q.CampaignReport:
    """One row per device: total, pending (pending or queued), success, failed."""
    await _exists(conn, query.tenant_id, query.id)
    rows = await conn.fetch(
        "SELECT c.device_id, coalesce(d.name, '') AS device_name, "
        "sum(c.n)::bigint AS total, "
        "coalesce(sum(c.n) FILTER (WHERE c.status IN ('pending', 'queued')), 0)::bigint "
        "AS pending, "
        "coalesce(sum(c.n) FILTER (WHERE c.status IN ('sent', 'delivered', 'read')), 0)::bigint "
        "AS success, "
        "coalesce(sum(c.n) FILTER (WHERE c.status = 'failed'), 0)::bigint AS failed "
        "FROM campaign_counts c "
        "LEFT JOIN devices d ON d.tenant_id = c.tenant_id AND d.device_id = c.device_id "
        "WHERE c.tenant_id = $1 AND c.campaign_id = $2 "
        "GROUP BY c.device_id, d.name ORDER BY coalesce(d.name, ''), c.device_id",
        query.tenant_id,
        query.id,
    )
    devices = [
        q.DeviceReport(
            device_id=r["device_id"],
            device_name=r["device_name"],
            total=r["total"],
            pending=r["pending"],
            success=r["success"],
            failed=r["failed"],
        )
        for r in rows
        if r["total"]
    ]
    totals = q.ReportTotals(
        total=sum(d.total for d in devices),
        pending=sum(d.pending for d in devices),
        success=sum(d.success for d in devices),
        failed=sum(d.failed for d in devices),
    )
    return q.CampaignReport(campaign_id=query.id, devices=devices, totals=totals)


async def list_messages(conn: DbConnection, query: q.ListCampaignMessages) -> q.MessagePage:
    """In the order they were requested; `status` is a group or a precise status."""
    await _exists(conn, query.tenant_id, query.campaign_id)
    where = Where("m.tenant_id = $1 AND m.campaign_id = $2", query.tenant_id, query.campaign_id)
    if query.status in messages.GROUPS:
        where.add("m.status_group = $?", query.status)
    elif query.status:
        where.add("m.status = $?", query.status)
    if query.device_id:
        where.add("m.device_id = $?", query.device_id)
    position = decode_cursor(query.cursor)
    if position:
        where.add("m.seq > $?", position)
    limit = where.param(query.limit + 1)
    rows = await conn.fetch(
        f"{messages.SELECT} {where.sql()} ORDER BY m.seq LIMIT {limit}", *where.args
    )
    page, cursor = page_end(list(rows), query.limit)
    return q.MessagePage(items=[messages.message(r) for r in page], next_cursor=cursor)
