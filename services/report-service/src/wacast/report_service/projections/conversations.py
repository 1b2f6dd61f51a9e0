"""What people wrote to the tenant's devices: `InboundMessageReceived` (MESSAGES stream).

A lead's messages are kept by lead id without the sender's phone (the lead row has it); an
unknown contact's by contact key, with the phone. A lead's conversation is these rows and
its `messages`, merged at query time. A message of an erased lead, or to a deleted device,
is never stored (tombstones), so a replay in any order gives the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from wacast.contracts import messages as m
from wacast.contracts.ids import phone_key
from wacast.report_service.projections.tables import Key, Row, Table, lock_shared, tombstoned
from wacast.runtime.projection import DbConnection, Envelope

INBOUND = Table(
    "inbound_messages",
    "inbound_id",
    (
        ("tenant_id", "text"),
        ("inbound_id", "text"),
        ("seq", "bigint"),
        ("lead_id", "text"),
        ("contact_key", "text"),
        ("sender", "text"),
        ("device_id", "text"),
        ("text", "text"),
        ("media_type", "text"),
        ("in_reply_to", "text"),
        ("origin", "text"),
        ("origin_id", "text"),
        ("received_at", "timestamptz"),
    ),
)


def received(env: Envelope, event: m.InboundMessageReceived) -> Row:
    return {
        "tenant_id": event.tenant_id,
        "inbound_id": event.inbound_id,
        "seq": env.seq,
        "lead_id": event.lead_id,
        "contact_key": event.contact_key,
        "sender": "" if event.lead_id else event.sender,
        "device_id": event.device_id,
        "text": event.text,
        "media_type": event.media_type,
        "in_reply_to": event.in_reply_to,
        "origin": event.origin,
        "origin_id": event.origin_id,
        "received_at": event.occurred_at,
    }


async def apply(conn: DbConnection, batch: Sequence[Envelope]) -> set[Key]:
    """Store the batch's inbound messages (the first of an id wins); returns the
    (tenant, lead) pairs that got one."""
    found = [(env, env.event) for env in batch if isinstance(env.event, m.InboundMessageReceived)]
    if not found:
        return set()
    await lock_shared(conn)
    devices = {(e.tenant_id, e.device_id) for _, e in found}
    leads = {(e.tenant_id, e.lead_id) for _, e in found if e.lead_id}
    deleted = await tombstoned(conn, "deleted_devices", "device_id", devices)
    erased = await tombstoned(conn, "erased_leads", "lead_id", leads)
    stored = await INBOUND.load(conn, {(e.tenant_id, e.inbound_id) for _, e in found})
    rows: dict[Key, Row] = {}
    for env, event in found:
        key = (event.tenant_id, event.inbound_id)
        if key in stored or key in rows:
            continue
        if (event.tenant_id, event.device_id) in deleted:
            continue
        if event.lead_id and (event.tenant_id, event.lead_id) in erased:
            continue
        rows[key] = received(env, event)
    await INBOUND.upsert(conn, rows.values())
    return {(r["tenant_id"], r["lead_id"]) for r in rows.values() if r["lead_id"]}


async def forget_leads(
    conn: DbConnection, tenants: list[str], lead_ids: list[str], phones: list[tuple[str, str]]
) -> None:
    """Delete what these leads wrote, and what their phones wrote as unknown contacts."""
    await conn.execute(
        "DELETE FROM inbound_messages t "
        "USING unnest($1::text[], $2::text[]) AS k(tenant_id, lead_id) "
        "WHERE t.tenant_id = k.tenant_id AND t.lead_id = k.lead_id",
        tenants,
        lead_ids,
    )
    if phones:
        await conn.execute(
            "DELETE FROM inbound_messages t "
            "USING unnest($1::text[], $2::text[]) AS k(tenant_id, contact_key) "
            "WHERE t.tenant_id = k.tenant_id AND t.lead_id = '' "
            "AND t.contact_key = k.contact_key",
            [t for t, _ in phones],
            [phone_key(t, phone) for t, phone in phones],
        )
