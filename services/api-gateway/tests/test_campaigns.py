"""`/api/v1/campaigns` through the real campaign-service: create and trigger, the report per
device and the message list behind every count; outcomes appended as the gateway would."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from wacast.contracts import messages as m
from wacast.contracts.ids import campaign_message_id
from wacast.runtime.eventstore import EventStore

from .conftest import Caller, Stack


async def connected_device(stack: Stack, caller: Caller, name: str) -> str:
    created = await caller.http.post("/api/v1/devices", json={"name": name, "driver": "sim"})
    device_id = str(created.json()["id"])
    seq = await stack.devices.connect(caller.tenant_id, device_id)
    assert (
        await caller.http.get(f"/api/v1/devices/{device_id}", params={"after_seq": seq})
    ).json()["status"] == "connected"
    return device_id


async def leads(caller: Caller, device_id: str, phones: list[str]) -> list[str]:
    ids = []
    for i, phone in enumerate(phones):
        response = await caller.http.post(
            "/api/v1/leads", json={"phone": phone, "name": f"Lead {i}", "device_id": device_id}
        )
        assert response.status_code == 201, response.text
        ids.append(str(response.json()["id"]))
    return ids


async def until(caller: Caller, path: str, done: Any, seconds: float = 10) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for _ in range(int(seconds * 20)):
        body = (await caller.http.get(path)).json()
        if done(body):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} never got there: {body}")


async def outcome(
    stack: Stack,
    caller: Caller,
    kind: type[m.MessageOutcomeBase],
    campaign: str,
    lead: str,
    device: str,
    **fields: Any,
) -> None:
    message_id = campaign_message_id(campaign, lead)
    event = kind(
        tenant_id=caller.tenant_id,
        occurred_at=datetime.now(UTC),
        message_id=message_id,
        device_id=device,
        lead_id=lead,
        origin="campaign",
        origin_id=campaign,
        **fields,
    )
    store = EventStore(stack.nc, stack.topology)
    await store.append(
        event.subject(stack.topology), [event], msg_id=uuid.uuid4().hex, expected=None
    )


async def test_a_campaign_runs_and_its_report_and_message_list_agree(
    stack: Stack, acme: Caller
) -> None:
    device = await connected_device(stack, acme, "Sales 1")
    lead_ids = await leads(acme, device, ["+14155550201", "+14155550202", "+14155550203"])

    created = await acme.http.post(
        "/api/v1/campaigns",
        json={
            "name": "Spring",
            "message": {"text": "Hi {name}"},
            "pacing": {"min_seconds": 0, "max_seconds": 0},
        },
    )
    assert created.status_code == 201, created.text
    campaign = created.json()["id"]
    assert created.json()["status"] == "pending"
    report_path = f"/api/v1/campaigns/{campaign}/report"
    await until(acme, report_path, lambda r: r["totals"]["total"] == 3)
    await outcome(stack, acme, m.MessageSent, campaign, lead_ids[0], device, wa_message_id="w1")
    await outcome(stack, acme, m.MessageRead, campaign, lead_ids[0], device)
    await outcome(
        stack, acme, m.MessageFailed, campaign, lead_ids[1], device, reason="not_on_whatsapp"
    )
    report = await until(acme, report_path, lambda r: r["totals"]["failed"] == 1)

    async def listed(**params: str) -> list[str]:
        page = await acme.http.get(f"/api/v1/campaigns/{campaign}/messages", params=params)
        assert page.status_code == 200, page.text
        return [row["lead_id"] for row in page.json()["items"]]

    summary = (await acme.http.get(f"/api/v1/campaigns/{campaign}")).json()
    failed_rows = (
        await acme.http.get(f"/api/v1/campaigns/{campaign}/messages", params={"status": "failed"})
    ).json()["items"]

    assert report["devices"] == [
        {
            "device_id": device,
            "device_name": "Sales 1",
            "total": 3,
            "pending": 1,
            "success": 1,
            "failed": 1,
        }
    ]
    assert report["totals"] == {"total": 3, "pending": 1, "success": 1, "failed": 1}
    assert await listed(status="success") == [lead_ids[0]]
    assert await listed(status="read") == [lead_ids[0]]
    assert await listed(status="pending") == [lead_ids[2]]
    assert sorted(await listed(device_id=device)) == sorted(lead_ids)
    assert failed_rows[0]["reason"] == "not_on_whatsapp"
    assert failed_rows[0]["lead_name"] == "Lead 1"
    assert failed_rows[0]["lead_phone"] == "+14155550202"
    assert failed_rows[0]["device_name"] == "Sales 1"
    assert summary["counts"]["failed_by_reason"] == {"not_on_whatsapp": 1}
    assert summary["counts"]["total"] == 3
    assert summary["status"] in ("triggered", "completed")
    lead_detail = (await acme.http.get(f"/api/v1/leads/{lead_ids[0]}")).json()
    assert [x["status"] for x in lead_detail["messages"]] == ["read"]


async def test_a_campaign_with_no_connected_device_fails_at_once(acme: Caller) -> None:
    created = await acme.http.post(
        "/api/v1/campaigns", json={"name": "Nobody home", "message": {"text": "Hi"}}
    )
    assert created.status_code == 201, created.text

    campaign = await until(
        acme, f"/api/v1/campaigns/{created.json()['id']}", lambda c: c["status"] != "pending"
    )

    assert campaign["status"] == "failed"
    assert campaign["failure_reason"] == "no_connected_device"
    assert created.json()["status"] == "failed"


async def test_a_scheduled_campaign_waits_triggers_once_and_is_paused_and_cancelled(
    stack: Stack, acme: Caller
) -> None:
    device = await connected_device(stack, acme, "Sched")
    await leads(acme, device, ["+14155550211"])
    later = (datetime.now(UTC) + timedelta(days=3)).isoformat()

    created = await acme.http.post(
        "/api/v1/campaigns",
        json={"name": "Later", "message": {"text": "Hi"}, "schedule_at": later},
    )
    campaign = created.json()["id"]
    moved = await acme.http.post(
        f"/api/v1/campaigns/{campaign}/schedule",
        json={"schedule_at": (datetime.now(UTC) + timedelta(days=4)).isoformat()},
    )
    listed = await acme.http.get(
        "/api/v1/campaigns", params={"status": "pending", "after_seq": moved.json()["seq"]}
    )
    triggered = await acme.http.post(f"/api/v1/campaigns/{campaign}/trigger")
    again = await acme.http.post(f"/api/v1/campaigns/{campaign}/trigger")
    paused = await acme.http.post(f"/api/v1/campaigns/{campaign}/pause", json={"reason": "check"})
    state = await acme.http.get(
        f"/api/v1/campaigns/{campaign}", params={"after_seq": paused.json()["seq"]}
    )
    resumed = await acme.http.post(f"/api/v1/campaigns/{campaign}/resume")
    cancelled = await acme.http.post(f"/api/v1/campaigns/{campaign}/cancel")
    final = await acme.http.get(
        f"/api/v1/campaigns/{campaign}", params={"after_seq": cancelled.json()["seq"]}
    )

    assert created.status_code == 201
    assert created.json()["status"] == "pending"
    assert created.json()["schedule_at"] is not None
    assert moved.status_code == 202
    assert campaign in [c["id"] for c in listed.json()["items"]]
    assert triggered.status_code == 202
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert paused.status_code == 202
    assert state.json()["status"] == "paused"
    assert resumed.status_code == 202
    assert cancelled.status_code == 202
    assert final.json()["status"] == "cancelled"


async def test_bad_campaign_input_is_refused(acme: Caller) -> None:
    bad = [
        {},
        {"name": "x"},
        {"name": "x", "message": {"text": " "}},
        {"name": "x", "message": {"text": "hi"}, "pacing": {"min_seconds": 9, "max_seconds": 1}},
        {"name": "x", "message": {"text": "hi"}, "pacing": {"min_seconds": -1, "max_seconds": 1}},
        {"name": "x", "message": {"text": "hi"}, "schedule_at": "2031-01-01T10:00:00"},
        {"name": "x", "message": {"text": "hi"}, "audience": {"status": "nobody"}},
    ]
    for body in bad:
        response = await acme.http.post("/api/v1/campaigns", json=body)
        assert response.status_code == 422, (body, response.text)
    for path in ("", "/report", "/messages"):
        assert (await acme.http.get(f"/api/v1/campaigns/nope{path}")).status_code == 404
    for action in ("trigger", "pause", "resume", "cancel"):
        assert (await acme.http.post(f"/api/v1/campaigns/nope/{action}")).status_code == 404
    naive = await acme.http.post(
        "/api/v1/campaigns/nope/schedule", json={"schedule_at": "2031-01-01T10:00:00"}
    )
    assert naive.status_code == 422
    assert (
        await acme.http.get("/api/v1/campaigns", params={"status": "sleeping"})
    ).status_code == 422
