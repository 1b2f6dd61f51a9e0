"""A lead's conversation (`GET /leads/{id}/conversation`), the tenant's settings
(`/account/settings`), and replayed lead creations that keep no personal data."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from wacast.api_gateway.idempotency import BUCKET, Remembered
from wacast.contracts import messages as m
from wacast.contracts.ids import inbound_id, phone_key

from .conftest import Caller, Stack


@pytest.fixture
async def lead(acme: Caller) -> dict[str, Any]:
    device = await acme.http.post("/api/v1/devices", json={"name": "Talks", "driver": "sim"})
    created = await acme.http.post(
        "/api/v1/leads",
        json={"phone": "+14155550177", "name": "Rita", "device_id": device.json()["id"]},
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def write_back(stack: Stack, tenant_id: str, lead: dict[str, Any], n: int, text: str) -> int:
    """What the device-gateway appends when the lead writes to its device."""
    event = m.InboundMessageReceived(
        tenant_id=tenant_id,
        occurred_at=datetime.now(UTC),
        inbound_id=inbound_id(lead["device_id"], f"wa-{n}"),
        device_id=lead["device_id"],
        lead_id=lead["id"],
        contact_key=phone_key(tenant_id, lead["phone"]),
        sender=lead["phone"],
        text=text,
        wa_message_id=f"wa-{n}",
    )
    done = await stack.gw.store.append(
        event.subject(stack.topology), [event], msg_id=uuid.uuid4().hex, expected=None
    )
    return done.seq


async def test_the_conversation_shows_what_the_lead_wrote_paged_back_in_time(
    stack: Stack, acme: Caller, lead: dict[str, Any]
) -> None:
    await write_back(stack, acme.tenant_id, lead, 1, "Hi there")
    seq = await write_back(stack, acme.tenant_id, lead, 2, "Still there?")
    url = f"/api/v1/leads/{lead['id']}/conversation"

    whole = await acme.http.get(url, params={"after_seq": seq, "after_stream": "MESSAGES"})
    latest = await acme.http.get(url, params={"limit": 1})
    older = await acme.http.get(url, params={"limit": 1, "cursor": latest.json()["next_cursor"]})

    assert whole.status_code == 200
    assert [(e["direction"], e["status"], e["text"]) for e in whole.json()["items"]] == [
        ("inbound", "received", "Hi there"),
        ("inbound", "received", "Still there?"),
    ]
    assert [e["text"] for e in latest.json()["items"]] == ["Still there?"]
    assert [e["text"] for e in older.json()["items"]] == ["Hi there"]
    assert older.json()["next_cursor"] is None


async def test_a_conversation_is_404_for_an_unknown_or_another_tenants_lead(
    acme: Caller, umbrella: Caller, lead: dict[str, Any]
) -> None:
    theirs = await umbrella.http.get(f"/api/v1/leads/{lead['id']}/conversation")
    unknown = await acme.http.get("/api/v1/leads/nobody/conversation")
    bad_cursor = await acme.http.get(
        f"/api/v1/leads/{lead['id']}/conversation", params={"cursor": "bm9wZQ"}
    )

    assert theirs.status_code == unknown.status_code == 404
    assert theirs.headers["content-type"].startswith("application/problem+json")
    assert bad_cursor.status_code == 422


async def test_settings_start_with_the_defaults_and_a_put_changes_only_what_it_gives(
    acme: Caller, umbrella: Caller
) -> None:
    before = await acme.http.get("/api/v1/account/settings")
    changed = await acme.http.put(
        "/api/v1/account/settings",
        json={
            "timezone": "Europe/Madrid",
            "opt_out_keywords": [" Basta ", "STOP", "stop"],
            "device_daily_cap": 250,
            "pacing": {"min_seconds": 5, "max_seconds": 9},
        },
    )
    after = await acme.http.get("/api/v1/account/settings")
    again = await acme.http.put("/api/v1/account/settings", json={"device_daily_cap": None})
    theirs = await umbrella.http.get("/api/v1/account/settings")

    assert before.status_code == 200
    assert before.json()["timezone"] == "UTC"
    assert "STOP" in before.json()["opt_out_keywords"]
    assert changed.status_code == 200, changed.text
    assert changed.headers["wacast-stream"] == "TENANTS"
    assert after.json()["timezone"] == "Europe/Madrid"
    assert after.json()["opt_out_keywords"] == ["Basta", "STOP"]
    assert after.json()["device_daily_cap"] == 250
    assert after.json()["pacing"] == {"min_seconds": 5.0, "max_seconds": 9.0}
    assert after.json()["name"] == acme.tenant_id
    assert again.json()["device_daily_cap"] is None
    assert again.json()["timezone"] == "Europe/Madrid"
    assert theirs.json()["timezone"] == "UTC"


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../etc/passwd"}, "timezone"),
        ({"default_region": "spain"}, "default_region"),
        ({"opt_out_keywords": []}, "opt_out_keywords"),
        ({"opt_out_keywords": [f"K{i}" for i in range(51)]}, "opt_out_keywords"),
        ({"opt_out_keywords": ["x" * 41]}, "opt_out_keywords"),
        ({"opt_out_keywords": ["   "]}, "opt_out_keywords"),
        ({"device_daily_cap": -1}, "device_daily_cap"),
        ({"pacing": {"min_seconds": 9, "max_seconds": 5}}, "pacing"),
        ({"name": ""}, "name"),
    ],
)
async def test_settings_that_break_a_limit_are_422_problems(
    acme: Caller, body: dict[str, Any], mentions: str
) -> None:
    refused = await acme.http.put("/api/v1/account/settings", json=body)
    kept = await acme.http.get("/api/v1/account/settings")

    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert mentions in refused.text
    assert kept.json()["timezone"] == "UTC"


async def test_a_replayed_lead_creation_keeps_no_personal_data_in_the_idempotency_bucket(
    stack: Stack, acme: Caller
) -> None:
    device = await acme.http.post("/api/v1/devices", json={"name": "Idem", "driver": "sim"})
    headers = {"Idempotency-Key": "new-lead-1"}
    body = {"phone": "+14155550188", "name": "Zoe Private", "device_id": device.json()["id"]}

    first = await acme.http.post("/api/v1/leads", json=body, headers=headers)
    again = await acme.http.post("/api/v1/leads", json=body, headers=headers)
    kv = await stack.nc.jetstream().key_value(stack.topology.bucket(BUCKET))
    stored = [
        base64.b64decode(msgspec.json.decode((await kv.get(k)).value or b"", type=Remembered).body)
        for k in await kv.keys()
    ]
    lead_id = first.json()["id"]
    erased = await acme.http.delete(f"/api/v1/leads/{lead_id}", params={"erase": True})
    gone = await acme.http.get(
        f"/api/v1/leads/{lead_id}", params={"after_seq": erased.json()["seq"]}
    )
    after_erasure = await acme.http.post("/api/v1/leads", json=body, headers=headers)

    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert any(lead_id.encode() in v for v in stored)
    assert not [v for v in stored if b"4155550188" in v or b"Zoe Private" in v]
    assert erased.status_code == 202
    assert gone.status_code == 404
    assert after_erasure.status_code == 201
    assert after_erasure.json() == {k: first.json()[k] for k in ("id", "seq", "stream")}
