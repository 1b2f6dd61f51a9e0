"""A lead's conversation: its messages and what it wrote back, merged in stream order.

Entries are ordered by where they were recorded in the MESSAGES stream: an outbound message
where it was first known sent (where it was requested, while it was not), an inbound one
where it arrived. Event times come from several clocks (the network stamps what people
write); stream order is the order things happened in, so a reply always follows what it
answers. Pages go back in time: the first holds the latest entries, each page is oldest
first, and its cursor names the oldest position shown.
"""

from __future__ import annotations

import asyncpg

from wacast.contracts import queries as q
from wacast.report_service.queries.common import NotFound, decode_cursor, encode_cursor
from wacast.report_service.queries.leads import VISIBLE
from wacast.runtime.projection import DbConnection

ORDER = "coalesce(m.sent_seq, m.seq)"
"""An outbound message's position (indexed as `messages_of_lead_in_order`)."""


def page_sql(cursor: bool) -> str:
    """Each side's latest rows (by index) first, then the joins for the page's rows only."""
    before_out = f"AND {ORDER} < $3" if cursor else ""
    before_in = "AND i.seq < $3" if cursor else ""
    limit = "$4" if cursor else "$3"
    return f"""
WITH outbound AS (
    SELECT m.*, {ORDER} AS pos FROM messages m
    WHERE m.tenant_id = $1 AND m.lead_id = $2 {before_out}
    ORDER BY {ORDER} DESC LIMIT {limit}
), inbound AS (
    SELECT i.* FROM inbound_messages i
    WHERE i.tenant_id = $1 AND i.lead_id = $2 AND i.lead_id <> '' {before_in}
    ORDER BY i.seq DESC LIMIT {limit}
), entries AS (
    SELECT o.message_id AS id, 'outbound' AS direction, o.pos,
        coalesce(o.sent_at, o.requested_at) AS at, o.text,
        coalesce(md.kind, '') AS media_type, o.media_id, o.status, o.reason, o.device_id,
        o.origin, coalesce(o.campaign_id, '') AS campaign_id,
        coalesce(o.sequence_id, '') AS sequence_id,
        coalesce(o.enrollment_id, '') AS enrollment_id, '' AS in_reply_to
    FROM outbound o
    LEFT JOIN media md ON md.tenant_id = o.tenant_id AND md.media_id = o.media_id
    UNION ALL
    SELECT i.inbound_id, 'inbound', i.seq, i.received_at, i.text, i.media_type, '', 'received',
        '', i.device_id, i.origin, coalesce(r.campaign_id, ''), coalesce(r.sequence_id, ''),
        coalesce(r.enrollment_id, ''), i.in_reply_to
    FROM inbound i
    LEFT JOIN messages r ON r.tenant_id = i.tenant_id AND r.message_id = i.in_reply_to
        AND i.in_reply_to <> ''
)
SELECT * FROM entries ORDER BY pos DESC LIMIT {limit}
"""


def entry(r: asyncpg.Record) -> q.ConversationEntry:
    return q.ConversationEntry(
        id=r["id"],
        direction=r["direction"],
        at=r["at"],
        text=r["text"],
        media_type=r["media_type"],
        media_id=r["media_id"],
        status=r["status"],
        reason=r["reason"],
        device_id=r["device_id"],
        origin=r["origin"],
        campaign_id=r["campaign_id"],
        sequence_id=r["sequence_id"],
        enrollment_id=r["enrollment_id"],
        in_reply_to=r["in_reply_to"],
    )


async def get_conversation(conn: DbConnection, query: q.GetLeadConversation) -> q.ConversationPage:
    exists = await conn.fetchval(
        f"SELECT true FROM leads l WHERE l.tenant_id = $1 AND l.lead_id = $2 AND {VISIBLE}",
        query.tenant_id,
        query.lead_id,
    )
    if not exists:
        raise NotFound("lead")
    args: list[object] = [query.tenant_id, query.lead_id]
    position = decode_cursor(query.cursor)
    if position:
        args.append(position)
    args.append(query.limit + 1)
    rows = await conn.fetch(page_sql(bool(position)), *args)
    cursor = None
    if len(rows) > query.limit:
        rows = rows[: query.limit]
        cursor = encode_cursor(rows[-1]["pos"])
    return q.ConversationPage(
        lead_id=query.lead_id, items=[entry(r) for r in reversed(rows)], next_cursor=cursor
    )
