"""Erasure, end to end (issue 11): after `DELETE /api/v1/leads/{id}?erase=true`, the lead's
phone number is in no JetStream stream (every stream of the server, KV and object-store
streams included, every message's subject, headers and data, and base64 inside them) and in
no Postgres table (every database, every schema, every text, JSON or array column).

The lead is given everything that spreads a phone: created with an `Idempotency-Key`, a
sequence step and a campaign (whose text renders `{phone}`) sent to it, a reply it wrote,
and what it wrote before it was a lead (an unknown contact)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from tests.e2e.helpers import connect_sim_device, ok
from tests.e2e.test_conversations import (
    PACING,
    advance_until,
    quiet,
    reply,
    step_one_sent,
    two_step_sequence,
)
from wacast.cli.stackrun import RunningStack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

PHONE = "+447911100501"
BASE64_RUN = re.compile(rb"[A-Za-z0-9+/]{16,}={0,2}")
SEARCHED_TYPES = ("text", "character varying", "character", "json", "jsonb", "ARRAY")


def readable(data: bytes) -> Iterator[bytes]:
    """`data`, and what every base64 run in it decodes to (stored replies, object chunks)."""
    yield data
    for run in BASE64_RUN.findall(data):
        try:
            yield base64.b64decode(run + b"=" * (-len(run) % 4))
        except (binascii.Error, ValueError):
            continue


async def phone_in_streams(nc: Client, needle: bytes) -> list[str]:
    """`stream:seq:subject` of every stored message that holds `needle`."""
    js = nc.jetstream()
    found: list[str] = []
    for info in await js.streams_info():
        name = info.config.name or ""
        seq = info.state.first_seq
        while seq and seq <= info.state.last_seq:
            try:
                msg = await js.get_msg(name, seq, subject=">", next=True)
            except NotFoundError:
                break
            headers = "".join(f"{k}:{v}" for k, v in (msg.headers or {}).items()).encode()
            for part in ((msg.subject or "").encode(), headers, msg.data or b""):
                if any(needle in text for text in readable(part)):
                    found.append(f"{name}:{msg.seq}:{msg.subject}")
                    break
            seq = (msg.seq or seq) + 1
    return found


async def phone_in_tables(database_url: str, needle: str) -> list[str]:
    """`database.schema.table.column` of every column of every table that holds `needle`."""
    found: list[str] = []
    admin = await asyncpg.connect(database_url)
    try:
        databases = [
            r[0]
            for r in await admin.fetch("SELECT datname FROM pg_database WHERE NOT datistemplate")
        ]
    finally:
        await admin.close()
    base = database_url.rsplit("/", 1)[0]
    for database in databases:
        conn = await asyncpg.connect(f"{base}/{database}")
        try:
            columns = await conn.fetch(
                "SELECT c.table_schema, c.table_name, c.column_name "
                "FROM information_schema.columns c JOIN information_schema.tables t "
                "ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
                "WHERE t.table_type = 'BASE TABLE' "
                "AND c.table_schema NOT IN ('pg_catalog', 'information_schema') "
                "AND c.data_type = ANY($1::text[])",
                list(SEARCHED_TYPES),
            )
            for schema, table, column in columns:
                hits = await conn.fetchval(
                    f'SELECT count(*) FROM "{schema}"."{table}" WHERE "{column}"::text LIKE $1',
                    f"%{needle}%",
                )
                if hits:
                    found.append(f"{database}.{schema}.{table}.{column}")
        finally:
            await conn.close()
    return found


async def traces(stack: RunningStack, needle: str) -> list[str]:
    async with stack.nats() as nc:
        in_streams = await phone_in_streams(nc, needle.encode())
    return in_streams + await phone_in_tables(stack.database_url, needle)


async def test_after_erasure_no_stream_and_no_table_holds_the_phone(
    stack: RunningStack, api: httpx.AsyncClient, sim: httpx.AsyncClient
) -> None:
    device = await connect_sim_device(api, sim, "Eraser", "+447911123504")
    needle = PHONE.lstrip("+")  # E.164 and WhatsApp ids (`<digits>@s.whatsapp.net`) alike
    lead_shape = {
        "phone": PHONE,
        "name": "Erin Erase",
        "device_id": device["id"],
        "tags": ["erase"],
        "attributes": {"city": "Leeds"},
    }
    ok(
        await sim.post(
            "/sim/v1/inbound", json={"from": PHONE, "to": device["phone"], "text": "hi?"}
        )
    )
    created = await api.post("/leads", json=lead_shape, headers={"Idempotency-Key": "erin"})
    lead: dict[str, Any] = ok(created)
    sequence = await two_step_sequence(api, "Erasure drip")
    ok(await api.post(f"/sequences/{sequence['id']}/enrollments", json={"lead_ids": [lead["id"]]}))
    await step_one_sent(stack, api, sim, device, lead)
    await quiet(sim, device)
    ok(
        await api.post(
            "/campaigns",
            json={
                "name": "Numbers",
                "audience": {"tags": ["erase"]},
                "message": {"text": "We have you as {phone}, {name}"},
                "pacing": PACING,
            },
        )
    )
    await reply(sim, lead, device, "Please forget me")

    async def spread() -> list[dict[str, Any]] | None:
        talk: list[dict[str, Any]] = ok(await api.get(f"/leads/{lead['id']}/conversation"))["items"]
        sent = [e for e in talk if e["direction"] == "outbound" and e["status"] != "pending"]
        replied = [e for e in talk if e["direction"] == "inbound"]
        return talk if len(sent) == 2 and replied else None

    await advance_until(stack, spread, "both messages sent and the reply recorded")
    before = await traces(stack, needle)
    for place in ("_LEADS:", ".sendreq.", ".inbound.", "reports.leads.", "reports.inbound_"):
        assert any(place in t for t in before), f"the scan misses {place}: {before}"

    erased = ok(await api.delete(f"/leads/{lead['id']}", params={"erase": "true"}))
    gone = await api.get(
        f"/leads/{lead['id']}", params={"after_seq": erased["seq"], "after_stream": "LEADS"}
    )
    assert gone.status_code == 404

    left = await traces(stack, needle)
    deadline = time.monotonic() + 60
    while left and time.monotonic() < deadline:
        await asyncio.sleep(1.0)  # each scan reads every stream and table: poll gently
        left = await traces(stack, needle)
    assert left == [], f"the erased lead's phone is still in: {left}"
    conversation = await api.get(f"/leads/{lead['id']}/conversation")
    assert conversation.status_code == 404
    again = await api.post("/leads", json=lead_shape, headers={"Idempotency-Key": "erin"})
    assert again.status_code == 201
    assert needle not in again.text
