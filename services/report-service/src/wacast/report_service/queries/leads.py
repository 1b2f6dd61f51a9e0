"""Leads (filtered lists and detail with every message and enrollment) and imports."""

from __future__ import annotations

import asyncpg

from wacast.contracts import queries as q
from wacast.contracts.values import RowError
from wacast.report_service.queries import messages
from wacast.report_service.queries.common import (
    NotFound,
    Where,
    decode_cursor,
    decode_json,
    page_end,
)
from wacast.runtime.projection import DbConnection

SELECT = """
SELECT l.*, coalesce(d.name, '') AS device_name
FROM leads l
LEFT JOIN devices d ON d.tenant_id = l.tenant_id AND d.device_id = l.device_id
"""
VISIBLE = "l.deleted_at IS NULL AND NOT l.gone"
LEAD_MESSAGES = 500
"""A lead's detail shows its latest messages, at most this many."""


def lead_fields(r: asyncpg.Record) -> dict[str, object]:
    return {
        "id": r["lead_id"],
        "phone": r["phone"],
        "name": r["name"],
        "device_id": r["device_id"],
        "device_name": r["device_name"],
        "status": r["status"],
        "tags": decode_json(r["tags"], list[str]),
        "attributes": decode_json(r["attributes"], dict[str, str]),
        "opted_out": r["opted_out"],
        "opted_out_at": r["opted_out_at"],
        "import_id": r["import_id"],
        "created_at": r["created_at"],
        "updated_at": r["updated_at"],
    }


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_leads(conn: DbConnection, query: q.ListLeads) -> q.LeadPage:
    """Newest first."""
    where = Where(f"l.tenant_id = $1 AND {VISIBLE}", query.tenant_id)
    position = decode_cursor(query.cursor)
    if position:
        where.add("l.seq < $?", position)
    if query.status:
        where.add("l.status = $?", query.status)
    if query.tag:
        where.add("l.tags @> jsonb_build_array($?::text)", query.tag)
    if query.device_id:
        where.add("l.device_id = $?", query.device_id)
    if query.opted_out is not None:
        where.add("l.opted_out = $?", query.opted_out)
    search = query.search.strip()
    if search:
        where.add("(l.name ILIKE '%' || $? || '%' OR l.phone LIKE '%' || $? || '%')", _like(search))
    limit = where.param(query.limit + 1)
    rows = await conn.fetch(
        f"{SELECT} {where.sql()} ORDER BY l.seq DESC LIMIT {limit}", *where.args
    )
    page, cursor = page_end(list(rows), query.limit)
    return q.LeadPage(items=[q.Lead(**lead_fields(r)) for r in page], next_cursor=cursor)  # type: ignore[arg-type]


async def get_lead(conn: DbConnection, query: q.GetOne) -> q.LeadDetail:
    row = await conn.fetchrow(
        SELECT + f"WHERE l.tenant_id = $1 AND l.lead_id = $2 AND {VISIBLE}",
        query.tenant_id,
        query.id,
    )
    if row is None:
        raise NotFound("lead")
    sent = await conn.fetch(
        messages.SELECT + "WHERE m.tenant_id = $1 AND m.lead_id = $2 ORDER BY m.seq DESC LIMIT $3",
        query.tenant_id,
        query.id,
        LEAD_MESSAGES,
    )
    enrolled = await conn.fetch(
        "SELECT e.*, coalesce(s.name, '') AS sequence_name FROM enrollments e "
        "LEFT JOIN sequences s ON s.tenant_id = e.tenant_id AND s.sequence_id = e.sequence_id "
        "WHERE e.tenant_id = $1 AND e.lead_id = $2 ORDER BY e.seq",
        query.tenant_id,
        query.id,
    )
    return q.LeadDetail(
        **lead_fields(row),  # type: ignore[arg-type]
        messages=[messages.message(r) for r in sent],
        enrollments=[enrollment(r, lead_name=row["name"]) for r in enrolled],
    )


def enrollment(r: asyncpg.Record, lead_name: str | None = None) -> q.Enrollment:
    return q.Enrollment(
        id=r["enrollment_id"],
        sequence_id=r["sequence_id"],
        sequence_name=r["sequence_name"],
        lead_id=r["lead_id"],
        lead_name=lead_name if lead_name is not None else r["lead_name"],
        device_id=r["device_id"],
        status=r["status"],
        reason=r["reason"],
        source=r["source"],
        steps_sent=r["steps_sent"],
        last_step_id=r["last_step_id"],
        next_step_id=r["next_step_id"],
        next_due_at=r["next_due_at"],
        started_at=r["started_at"],
        updated_at=r["updated_at"],
    )


async def get_import(conn: DbConnection, query: q.GetLeadImport) -> q.LeadImport:
    row = await conn.fetchrow(
        "SELECT * FROM lead_imports WHERE tenant_id = $1 AND import_id = $2",
        query.tenant_id,
        query.id,
    )
    if row is None:
        raise NotFound("import")
    errors = await conn.fetch(
        "SELECT row_number, reason FROM lead_import_errors WHERE tenant_id = $1 "
        "AND import_id = $2 AND row_number > $3 ORDER BY row_number LIMIT $4",
        query.tenant_id,
        query.id,
        decode_cursor(query.errors_cursor),
        query.errors_limit + 1,
    )
    page, cursor = page_end(list(errors), query.errors_limit, key="row_number")
    return q.LeadImport(
        id=row["import_id"],
        filename=row["filename"],
        status=row["status"],
        total_rows=row["total_rows"],
        rows_done=row["rows_done"],
        created=row["created"],
        updated=row["updated"],
        failed=row["failed"],
        reason=row["reason"],
        detail=row["detail"],
        errors=[RowError(row=e["row_number"], reason=e["reason"]) for e in page],
        errors_next_cursor=cursor,
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )
