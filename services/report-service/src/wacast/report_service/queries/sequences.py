"""Sequences with their progress, and their enrollments."""

from __future__ import annotations

from collections import defaultdict

import asyncpg

from wacast.contracts import queries as q
from wacast.contracts.values import Pacing, Step, Trigger
from wacast.report_service.queries.common import (
    NotFound,
    Where,
    decode_cursor,
    decode_json,
    page_end,
)
from wacast.report_service.queries.leads import enrollment
from wacast.runtime.projection import DbConnection

ENDED = ("completed", "failed", "removed")


def progress_of(by_status: dict[str, int], sent: int) -> q.SequenceProgress:
    enrolled = sum(by_status.values())
    ended = sum(by_status.get(s, 0) for s in ENDED)
    return q.SequenceProgress(
        enrolled=enrolled,
        active=by_status.get("active", 0),
        paused=by_status.get("paused", 0),
        completed=by_status.get("completed", 0),
        failed=by_status.get("failed", 0),
        removed=by_status.get("removed", 0),
        sent=sent,
        percent=round(100.0 * ended / enrolled, 1) if enrolled else 0.0,
    )


async def progress(
    conn: DbConnection, tenant_id: str, ids: list[str]
) -> dict[str, q.SequenceProgress]:
    by_status: dict[str, dict[str, int]] = defaultdict(dict)
    for r in await conn.fetch(
        "SELECT sequence_id, status, count(*) AS n FROM enrollments "
        "WHERE tenant_id = $1 AND sequence_id = ANY($2::text[]) GROUP BY sequence_id, status",
        tenant_id,
        ids,
    ):
        by_status[r["sequence_id"]][r["status"]] = r["n"]
    sent = {
        r["sequence_id"]: r["n"]
        for r in await conn.fetch(
            "SELECT sequence_id, count(*) AS n FROM messages WHERE tenant_id = $1 "
            "AND sequence_id = ANY($2::text[]) AND status_group = 'success' GROUP BY sequence_id",
            tenant_id,
            ids,
        )
    }
    return {i: progress_of(by_status.get(i, {}), sent.get(i, 0)) for i in ids}


def sequence(r: asyncpg.Record, done: q.SequenceProgress) -> q.Sequence:
    return q.Sequence(
        id=r["sequence_id"],
        name=r["name"],
        status=r["status"],
        steps=decode_json(r["steps"], list[Step]),
        pacing=decode_json(r["pacing"], Pacing),
        triggers=decode_json(r["triggers"], list[Trigger]),
        on_failure=r["on_failure"],
        stop_on_reply=r["stop_on_reply"],
        progress=done,
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )


async def list_sequences(conn: DbConnection, query: q.ListSequences) -> q.SequencePage:
    """Newest first."""
    where = Where("tenant_id = $1", query.tenant_id)
    position = decode_cursor(query.cursor)
    if position:
        where.add("seq < $?", position)
    if query.status:
        where.add("status = $?", query.status)
    limit = where.param(query.limit + 1)
    rows = await conn.fetch(
        f"SELECT * FROM sequences {where.sql()} ORDER BY seq DESC LIMIT {limit}", *where.args
    )
    page, cursor = page_end(list(rows), query.limit)
    done = await progress(conn, query.tenant_id, [r["sequence_id"] for r in page])
    return q.SequencePage(
        items=[sequence(r, done[r["sequence_id"]]) for r in page], next_cursor=cursor
    )


async def get_sequence(conn: DbConnection, query: q.GetOne) -> q.Sequence:
    row = await conn.fetchrow(
        "SELECT * FROM sequences WHERE tenant_id = $1 AND sequence_id = $2",
        query.tenant_id,
        query.id,
    )
    if row is None:
        raise NotFound("sequence")
    done = await progress(conn, query.tenant_id, [query.id])
    return sequence(row, done[query.id])


async def list_enrollments(conn: DbConnection, query: q.ListEnrollments) -> q.EnrollmentPage:
    """In the order the leads were enrolled."""
    name = await conn.fetchval(
        "SELECT name FROM sequences WHERE tenant_id = $1 AND sequence_id = $2",
        query.tenant_id,
        query.sequence_id,
    )
    if name is None:
        raise NotFound("sequence")
    where = Where("e.tenant_id = $1 AND e.sequence_id = $2", query.tenant_id, query.sequence_id)
    position = decode_cursor(query.cursor)
    if position:
        where.add("e.seq > $?", position)
    if query.status:
        where.add("e.status = $?", query.status)
    limit = where.param(query.limit + 1)
    rows = await conn.fetch(
        "SELECT e.*, coalesce(l.name, '') AS lead_name, s.name AS sequence_name "
        "FROM enrollments e "
        "LEFT JOIN leads l ON l.tenant_id = e.tenant_id AND l.lead_id = e.lead_id "
        "JOIN sequences s ON s.tenant_id = e.tenant_id AND s.sequence_id = e.sequence_id "
        f"{where.sql()} ORDER BY e.seq LIMIT {limit}",
        *where.args,
    )
    page, cursor = page_end(list(rows), query.limit)
    return q.EnrollmentPage(items=[enrollment(r) for r in page], next_cursor=cursor)
