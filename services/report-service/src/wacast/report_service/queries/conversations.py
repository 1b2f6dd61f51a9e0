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

ENTRIES = """
WITH entries AS (
    SELECT m.message_id AS id, 'outbound' AS direction, coalesce(m.sent_seq, m.seq) AS pos,
        coalesce(m.sent_at, m.requested_at) AS at, m.text,
        coalesce(md.kind, '') AS media_type, m.media_id, m.status, m.reason, m.device_id,
        m.origin, coalesce(m.campaign_id, '') AS campaign_id,
        coalesce(m.sequence_id, '') AS sequence_id,
        coalesce(m.enrollment_id, '') AS enrollment_id, '' AS in_reply_to
    FROM messages m
    LEFT JOIN media md ON md.tenant_id = m.tenant_id AND md.media_id = m.media_id
    WHERE m.tenant_id = $1 AND m.lead_id = $2
    UNION ALL
    SELECT i.inbound_id, 'inbound', i.seq, i.received_at, i.text, i.media_type, '', 'received', '',
        i.device_id, i.origin, coalesce(r.campaign_id, ''), coalesce(r.sequence_id, ''),
        coalesce(r.enrollment_id, ''), i.in_reply_to
    FROM inbound_messages i
    LEFT JOIN messages r ON r.tenant_id = i.tenant_id AND r.message_id = i.in_reply_to
        AND i.in_reply_to <> ''
    WHERE i.tenant_id = $1 AND i.lead_id = $2
)
SELECT * FROM entries
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
    where = ""
    position = decode_cursor(query.cursor)
    if position:
        args.append(position)
        where = "WHERE pos < $3"
    args.append(query.limit + 1)
    rows = await conn.fetch(f"{ENTRIES} {where} ORDER BY pos DESC LIMIT ${len(args)}", *args)
    cursor = None
    if len(rows) > query.limit:
        rows = rows[: query.limit]
        cursor = encode_cursor(rows[-1]["pos"])
    return q.ConversationPage(
        lead_id=query.lead_id, items=[entry(r) for r in reversed(rows)], next_cursor=cursor
    )
