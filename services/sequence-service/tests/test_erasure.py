"""Erasing a lead leaves its phone nowhere the sequence-service wrote or keeps it."""

from __future__ import annotations

import uuid
from datetime import timedelta

import asyncpg
from nats.js.errors import NotFoundError

from wacast.contracts import ids
from wacast.contracts.commands import CreateSequence, EnrollLeads
from wacast.contracts.leads import LeadCreated, LeadDeleted, LeadErased
from wacast.contracts.messages import MessageReplied
from wacast.contracts.sequences import EnrollmentRemoved
from wacast.contracts.streams import LEADS, MESSAGES
from wacast.contracts.values import MessageContent, Step

from .conftest import TENANT, Harness


async def stored_with(harness: Harness, text: str) -> list[str]:
    """Where `text` appears in any stream of the test's namespace (KV and object store
    buckets included): `<stream> <subject>` of each message holding it."""
    js = harness.nc.jetstream()
    prefix = harness.topology.prefix.upper()
    found = []
    for info in await js.streams_info():
        name = info.config.name or ""
        if prefix not in name.upper() or not info.state.messages:
            continue
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            try:
                msg = await js.get_msg(name, seq)
            except NotFoundError:
                continue
            if text.encode() in (msg.data or b""):
                found.append(f"{name} {msg.subject}")
    return found


async def tables_with(database_url: str, schema: str, text: str) -> list[str]:
    """Tables of `schema` with a row holding `text` in any column (bytes read as UTF-8)."""
    conn = await asyncpg.connect(database_url)
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema
        )
        found = []
        for (table,) in tables:
            for row in await conn.fetch(f'SELECT * FROM "{schema}"."{table}"'):
                for value in row.values():
                    shown = value.decode(errors="replace") if isinstance(value, bytes) else value
                    if text in str(shown):
                        found.append(table)
        return found
    finally:
        await conn.close()


async def test_erasure_purges_the_leads_steps_and_keeps_no_phone(service: Harness) -> None:
    await service.lead("gone", name="Erin")
    await service.lead("stays")
    [created] = [
        e
        for e in await service.events(LEADS, "lead")
        if isinstance(e, LeadCreated) and e.lead_id == "gone"
    ]
    phone = created.phone.removeprefix("+")
    steps = [
        Step(id="a", delay_seconds=0, message=MessageContent(text="Hi {name}, {phone}")),
        Step(id="b", delay_seconds=60, message=MessageContent(text="Again {name}")),
        Step(id="c", delay_seconds=3600, message=MessageContent(text="Last")),
    ]
    await service.send(
        CreateSequence(
            tenant_id=TENANT,
            sequence_id="s1",
            name="s1",
            steps=steps,
            stop_on_reply="ignore",
            activate=True,
        )
    )
    await service.send(EnrollLeads(tenant_id=TENANT, sequence_id="s1", lead_ids=["gone", "stays"]))
    for request in await service.count(service.requests, 2, "the first steps"):
        await service.sent(request)
    await service.advance(timedelta(minutes=2))
    second = await service.count(service.requests, 4, "the second steps")
    [mine] = [r for r in second if r.lead_id == "gone" and r.step_id == "b"]
    await service.sent(mine)
    await service.append(
        MessageReplied(
            tenant_id=TENANT,
            occurred_at=service.now,
            message_id=mine.message_id,
            device_id="d1",
            lead_id="gone",
            origin="sequence",
            origin_id=mine.origin_id,
            text=f"call me at {phone}",
            wa_message_id=uuid.uuid4().hex,
        )
    )
    assert await stored_with(service, phone)

    # what the campaign-service does: delete, leave a tombstone, purge the lead's subject
    base = service.stamp()
    await service.append(LeadDeleted(**base, lead_id="gone"), LeadErased(**base, lead_id="gone"))
    js = service.nc.jetstream()
    await js.purge_stream(
        LEADS.name(service.topology), subject=service.topology.lead(TENANT, "gone"), keep=1
    )

    await service.count(lambda: service.enrollment_events(EnrollmentRemoved), 1, "the removal")

    async def purged() -> bool:
        return not await stored_with(service, phone)

    await service.until(purged, "no stream to hold the phone")
    await service.settled(LEADS)
    assert await tables_with(service.database_url, "sequences_private", phone) == []
    assert await tables_with(service.database_url, "sequences_private", "Erin") == []
    message = service.topology.message(TENANT, ids.step_message_id(mine.origin_id, "b"))
    assert await service.store.load(MESSAGES, message) == []
    others = [r for r in await service.requests() if r.lead_id == "stays"]
    assert len(others) == 2, "the other lead's requests stay"
