"""Media items (what is stored; the bytes stay in the object store)."""

from __future__ import annotations

import asyncpg

from wacast.contracts import queries as q
from wacast.report_service.queries.common import NotFound, decode_cursor, page_end
from wacast.runtime.projection import DbConnection


def media(r: asyncpg.Record) -> q.Media:
    return q.Media(
        id=r["media_id"],
        kind=r["kind"],
        mime=r["mime"],
        bytes=r["bytes"],
        filename=r["filename"],
        sha256=r["sha256"],
        width=r["width"],
        height=r["height"],
        source=r["source"],
        source_url=r["source_url"],
        original_bytes=r["original_bytes"],
        created_at=r["created_at"],
    )


async def list_media(conn: DbConnection, query: q.ListMedia) -> q.MediaPage:
    """Newest first."""
    rows = await conn.fetch(
        "SELECT * FROM media WHERE tenant_id = $1 AND deleted_at IS NULL "
        "AND ($2 = 0 OR seq < $2) AND ($3::text IS NULL OR kind = $3) "
        "ORDER BY seq DESC LIMIT $4",
        query.tenant_id,
        decode_cursor(query.cursor),
        query.kind,
        query.limit + 1,
    )
    page, cursor = page_end(list(rows), query.limit)
    return q.MediaPage(items=[media(r) for r in page], next_cursor=cursor)


async def get_media(conn: DbConnection, query: q.GetOne) -> q.Media:
    row = await conn.fetchrow(
        "SELECT * FROM media WHERE tenant_id = $1 AND media_id = $2 AND deleted_at IS NULL",
        query.tenant_id,
        query.id,
    )
    if row is None:
        raise NotFound("media")
    return media(row)
