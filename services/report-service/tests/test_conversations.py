"""A lead's conversation: outbound messages and what the lead wrote, paged back in time;
unknown contacts kept apart; erasure and device deletion take it all; rebuild equals live."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import asyncpg
import msgspec
from nats.aio.client import Client

from wacast.contracts import devices as d
from wacast.contracts import leads as ld
from wacast.contracts import messages as m
from wacast.contracts import queries as q
from wacast.contracts.ids import campaign_message_id, inbound_id, phone_key
from wacast.contracts.subjects import Topology
from wacast.report_service.projections import SCHEMA, Reports
from wacast.runtime.deadletter import DeadLetters
from wacast.runtime.projection import rebuild

from .conftest import History, LiveReports, dump

STRANGER = "+447700900123"


def inbound(
    history: History,
    n: int,
    *,
    lead_id: str = "",
    phone: str,
    device_id: str = "a1",
    text: str = "",
    tenant: str | None = None,
    **kw: Any,
) -> m.InboundMessageReceived:
    t = tenant or history.tenant
    return m.InboundMessageReceived(
        **history.base(t),
        inbound_id=inbound_id(device_id, f"wa{n}"),
        device_id=device_id,
        lead_id=lead_id,
        contact_key=phone_key(t, phone),
        sender=phone,
        text=text,
        wa_message_id=f"wa{n}",
        **kw,
    )


async def lead_phone(reports: LiveReports, tenant: str, lead_id: str) -> str:
    lead: q.LeadDetail = await reports.ask(
        q.LEAD, q.GetOne(tenant_id=tenant, id=lead_id), q.LeadDetail
    )
    return lead.phone


async def conversation(history: History, reports: LiveReports) -> str:
    """Lead a0 gets campaign c1 (read), answers it, sends a picture, then gets c2 (still
    pending); a stranger writes to the same device. Returns a0's phone."""
    h = history
    await h.tenant_created()
    await h.device("a1")
    await h.leads("a1", 2, prefix="a")
    await h.campaign("c1")
    await h.campaign("c2")
    await reports.caught_up(h)
    phone = await lead_phone(reports, h.tenant, "a0")
    c1 = campaign_message_id("c1", "a0")
    await h.add(
        h.request("c1", "a0", "a1"),
        h.request("c1", "a1", "a1"),
        h.dispatching("c1", "a0", "a1"),
        h.outcome(m.MessageSent, "c1", "a0", "a1", wa_message_id="w0"),
        h.outcome(m.MessageRead, "c1", "a0", "a1"),
    )
    await h.add(
        inbound(h, 1, lead_id="a0", phone=phone, text="Hello!", in_reply_to=c1, origin="campaign"),
        inbound(h, 2, lead_id="a0", phone=phone, media_type="image", in_reply_to=c1),
        inbound(h, 3, phone=STRANGER, text="who is this?"),
        h.request("c2", "a0", "a1"),
    )
    await reports.caught_up(h)
    return phone


async def test_the_conversation_merges_messages_and_replies_in_time_order_and_pages_back(
    history: History, reports: LiveReports
) -> None:
    await conversation(history, reports)
    t = history.tenant

    whole = await reports.ask(
        q.LEAD_CONVERSATION, q.GetLeadConversation(tenant_id=t, lead_id="a0"), q.ConversationPage
    )
    latest = await reports.ask(
        q.LEAD_CONVERSATION,
        q.GetLeadConversation(tenant_id=t, lead_id="a0", limit=3),
        q.ConversationPage,
    )
    assert latest.next_cursor is not None
    older = await reports.ask(
        q.LEAD_CONVERSATION,
        q.GetLeadConversation(tenant_id=t, lead_id="a0", limit=3, cursor=latest.next_cursor),
        q.ConversationPage,
    )

    assert [(e.direction, e.status, e.text, e.media_type) for e in whole.items] == [
        ("outbound", "read", "Hi a0", ""),
        ("inbound", "received", "Hello!", ""),
        ("inbound", "received", "", "image"),
        ("outbound", "pending", "Hi a0", ""),
    ]
    assert whole.next_cursor is None
    reply = whole.items[1]
    assert reply.in_reply_to == campaign_message_id("c1", "a0")
    assert (reply.origin, reply.campaign_id) == ("campaign", "c1")
    assert [e.id for e in older.items + latest.items] == [e.id for e in whole.items]
    assert older.next_cursor is None
    assert "who is this?" not in [e.text for e in whole.items]


async def test_a_conversation_is_404_for_an_unknown_or_foreign_lead_and_422_for_a_bad_cursor(
    history: History, reports: LiveReports
) -> None:
    await conversation(history, reports)

    other = await reports.problem(
        q.LEAD_CONVERSATION,
        q.GetLeadConversation(tenant_id="umbrella", lead_id="a0"),
        q.ConversationPage,
    )
    unknown = await reports.problem(
        q.LEAD_CONVERSATION,
        q.GetLeadConversation(tenant_id=history.tenant, lead_id="nobody"),
        q.ConversationPage,
    )
    bad = await reports.problem(
        q.LEAD_CONVERSATION,
        q.GetLeadConversation(tenant_id=history.tenant, lead_id="a0", cursor="bm9wZQ"),
        q.ConversationPage,
    )

    assert other.problem is not None
    assert other.problem.status == 404
    assert unknown.problem is not None
    assert unknown.problem.status == 404
    assert bad.problem is not None
    assert bad.problem.status == 422


async def phone_anywhere(pool: asyncpg.Pool, schema: str, phone: str) -> list[str]:
    """Every text or JSON column of every table of `schema` that holds `phone`."""
    found: list[str] = []
    async with pool.acquire() as conn:
        columns = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = $1 AND data_type IN ('text', 'jsonb', 'json')",
            schema,
        )
        for c in columns:
            hits = await conn.fetchval(
                f'SELECT count(*) FROM "{schema}"."{c[0]}" WHERE "{c[1]}"::text LIKE $1',
                f"%{phone}%",
            )
            if hits:
                found.append(f"{c[0]}.{c[1]}")
    return found


async def test_erasing_a_lead_takes_its_conversation_and_what_its_phone_wrote_as_a_stranger(
    history: History, reports: LiveReports, pool: asyncpg.Pool
) -> None:
    phone = await conversation(history, reports)
    h = history
    await h.add(inbound(h, 4, phone=phone, text="from before I was a lead"))
    await reports.caught_up(h)
    assert await phone_anywhere(pool, SCHEMA, phone) != []

    await h.add(ld.LeadErased(**h.base(), lead_id="a0"))
    await h.add(inbound(h, 5, lead_id="a0", phone=phone, text="late"))  # replayed order
    await reports.caught_up(h)

    async with pool.acquire() as conn:
        left = await conn.fetchval(
            f"SELECT count(*) FROM {SCHEMA}.inbound_messages WHERE lead_id = 'a0' "
            "OR text LIKE '%before I was%'"
        )
        stranger = await conn.fetchval(
            f"SELECT count(*) FROM {SCHEMA}.inbound_messages WHERE sender = $1", STRANGER
        )
    assert left == 0
    assert stranger == 1
    assert await phone_anywhere(pool, SCHEMA, phone) == []


async def test_deleting_a_device_removes_what_was_written_to_it(
    history: History, reports: LiveReports, pool: asyncpg.Pool
) -> None:
    await conversation(history, reports)
    h = history

    await h.add(d.DeviceDeleteRequested(**h.base(), device_id="a1"))
    await h.add(inbound(h, 6, phone=STRANGER, text="anyone?"))
    await reports.caught_up(h)

    async with pool.acquire() as conn:
        rows = await conn.fetchval(
            f"SELECT count(*) FROM {SCHEMA}.inbound_messages WHERE tenant_id = $1", h.tenant
        )
    assert rows == 0


async def test_rebuild_with_conversations_and_an_erasure_equals_the_live_tables(
    history: History, reports: LiveReports, pool: asyncpg.Pool, nc: Client, streams: Topology
) -> None:
    await conversation(history, reports)
    h = history
    await h.add(ld.LeadErased(**h.base(), lead_id="a1"))
    await h.add(inbound(h, 7, lead_id="a1", phone="+15550000001", text="after erasure"))
    await reports.caught_up(h)
    live = await dump(pool, SCHEMA)

    await rebuild(
        Reports(),
        pool=pool,
        nc=nc,
        topology=streams,
        schema=SCHEMA,
        dead_letters=DeadLetters(nc, streams),
    )

    assert await dump(pool, SCHEMA) == live
    assert len(live["inbound_messages"]) == 3


async def test_a_lead_that_wrote_or_changed_gets_a_live_hint(
    history: History, reports: LiveReports, nc: Client, streams: Topology
) -> None:
    from wacast.report_service.live import publish_progress

    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def got(msg: object) -> None:
        await received.put(msg.data)  # type: ignore[attr-defined]

    await nc.subscribe(streams.live(history.tenant), cb=got)
    await conversation(history, reports)
    await history.add(ld.LeadOptedOut(**history.base(), lead_id="a1"))
    await reports.caught_up(history)
    projection = reports.runner.projection
    assert isinstance(projection, Reports)

    await publish_progress(nc, streams, reports.pool, projection, reports.clock, timedelta(hours=1))

    hints: set[str] = set()
    async with asyncio.timeout(5):
        while hints != {"a0", "a1"}:
            update = msgspec.json.decode(await received.get(), type=q.LiveUpdate)
            if isinstance(update, q.LiveLead):
                hints.add(update.lead_id)


async def test_a_reply_stamped_by_a_clock_behind_still_follows_what_it_answers(
    history: History, reports: LiveReports
) -> None:
    phone = await conversation(history, reports)
    h = history
    c2 = campaign_message_id("c2", "a0")
    await h.add(
        h.dispatching("c2", "a0", "a1"),
        h.outcome(m.MessageSent, "c2", "a0", "a1", wa_message_id="w9"),
    )
    late = inbound(h, 8, lead_id="a0", phone=phone, text="ok!", in_reply_to=c2)
    behind = msgspec.structs.replace(late, occurred_at=late.occurred_at - timedelta(hours=3))
    await h.add(behind)
    await reports.caught_up(h)

    page = await reports.ask(
        q.LEAD_CONVERSATION,
        q.GetLeadConversation(tenant_id=h.tenant, lead_id="a0"),
        q.ConversationPage,
    )

    assert [(e.direction, e.id) for e in page.items[-2:]] == [
        ("outbound", c2),
        ("inbound", behind.inbound_id),
    ]
    assert page.items[-1].at < page.items[-2].at
