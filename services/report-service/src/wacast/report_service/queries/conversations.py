"""A lead's conversation: its messages and what it wrote back, merged in time order.

Pages go back in time: the first page holds the latest entries, each page is in time order
(oldest first), and its cursor names the oldest entry shown (time and id), so a page never
repeats or skips an entry that was there when the previous one was read. An outbound
message stands at the time it was sent, or requested while it was not.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta

import asyncpg

from wacast.contracts import queries as q
from wacast.report_service.queries.common import BadRequest, NotFound
from wacast.report_service.queries.leads import VISIBLE
from wacast.runtime.projection import DbConnection

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

ENTRIES = """
WITH entries AS (
    SELECT m.message_id AS id, 'outbound' AS direction,
        coalesce(m.sent_at, m.requested_at) AS at, m.text,
        coalesce(md.kind, '') AS media_type, m.media_id, m.status, m.reason, m.device_id,
        m.origin, coalesce(m.campaign_id, '') AS campaign_id,
        coalesce(m.sequence_id, '') AS sequence_id,
        coalesce(m.enrollment_id, '') AS enrollment_id, '' AS in_reply_to
    FROM messages m
    LEFT JOIN media md ON md.tenant_id = m.tenant_id AND md.media_id = m.media_id
    WHERE m.tenant_id = $1 AND m.lead_id = $2
    UNION ALL
    SELECT i.inbound_id, 'inbound', i.received_at, i.text, i.media_type, '', 'received', '',
        i.device_id, i.origin, coalesce(r.campaign_id, ''), coalesce(r.sequence_id, ''),
        coalesce(r.enrollment_id, ''), i.in_reply_to
    FROM inbound_messages i
    LEFT JOIN messages r ON r.tenant_id = i.tenant_id AND r.message_id = i.in_reply_to
        AND i.in_reply_to <> ''
    WHERE i.tenant_id = $1 AND i.lead_id = $2
)
SELECT * FROM entries
"""


def encode_position(at: datetime, id_: str) -> str:
    micros = (at - EPOCH) // timedelta(microseconds=1)
    return base64.urlsafe_b64encode(f"v1:{micros}:{id_}".encode()).decode().rstrip("=")


def decode_position(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, micros, id_ = raw.split(":", 2)
        if tag != "v1" or not id_:
            raise ValueError(raw)
        return EPOCH + timedelta(microseconds=int(micros)), id_
    except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError):
        raise BadRequest("cursor is not one this API returned") from None


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
    if query.cursor:
        at, id_ = decode_position(query.cursor)
        args += [at, id_]
        where = "WHERE (at, id) < ($3, $4)"
    args.append(query.limit + 1)
    rows = await conn.fetch(
        f"{ENTRIES} {where} ORDER BY at DESC, id DESC LIMIT ${len(args)}", *args
    )
    cursor = None
    if len(rows) > query.limit:
        rows = rows[: query.limit]
        cursor = encode_position(rows[-1]["at"], rows[-1]["id"])
    return q.ConversationPage(
        lead_id=query.lead_id, items=[entry(r) for r in reversed(rows)], next_cursor=cursor
    )
