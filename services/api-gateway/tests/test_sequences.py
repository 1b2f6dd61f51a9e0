"""`/api/v1/sequences` through the sequence-service (real when it starts): create with
steps, enroll by ids or filter, remove a contact, activate, pause, archive, progress."""

from __future__ import annotations

import asyncio
from typing import Any

from .conftest import Caller, Stack


async def setup_leads(stack: Stack, caller: Caller, phones: list[str], tag: str) -> list[str]:
    device = await caller.http.post("/api/v1/devices", json={"name": "Drip", "driver": "sim"})
    device_id = device.json()["id"]
    await stack.devices.connect(caller.tenant_id, device_id)
    ids = []
    for phone in phones:
        lead = await caller.http.post(
            "/api/v1/leads", json={"phone": phone, "device_id": device_id, "tags": [tag]}
        )
        assert lead.status_code == 201, lead.text
        ids.append(lead.json()["id"])
    return ids


async def sequence(caller: Caller, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "Welcome",
        "steps": [
            {"delay_seconds": 0, "message": {"text": "Hi {name}"}},
            {"id": "offer", "delay_seconds": 86400, "message": {"text": "An offer"}},
        ],
        **fields,
    }
    response = await caller.http.post("/api/v1/sequences", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_a_sequence_is_created_active_with_step_ids_made_up_where_missing(
    acme: Caller,
) -> None:
    created = await sequence(acme)
    draft = await sequence(acme, name="Later", status="draft")

    assert created["status"] == "active"
    assert [s["id"] for s in created["steps"]] == ["step-1", "offer"]
    assert created["progress"]["enrolled"] == 0
    assert draft["status"] == "draft"
    listed = await acme.http.get(
        "/api/v1/sequences", params={"after_seq": draft["seq"], "after_stream": "SEQUENCES"}
    )
    assert [s["id"] for s in listed.json()["items"]] == [draft["id"], created["id"]]
    drafts = await acme.http.get("/api/v1/sequences", params={"status": "draft"})
    assert [s["id"] for s in drafts.json()["items"]] == [draft["id"]]


async def test_bad_sequences_are_refused(acme: Caller) -> None:
    step = {"delay_seconds": 0, "message": {"text": "x"}}
    bad = [
        {"name": "x", "steps": []},
        {"name": "x", "steps": [{**step, "delay_seconds": -1}]},
        {"name": "x", "steps": [{**step, "id": "a"}, {**step, "id": "a"}]},
        {"name": "x", "steps": [{"delay_seconds": 0, "message": {"text": ""}}]},
        {"name": "", "steps": [step]},
        {"name": "x", "steps": [step], "pacing": {"min_seconds": 5, "max_seconds": 1}},
        {"name": "x", "steps": [step], "status": "archived"},
        {"name": "x", "steps": [{**step, "id": "bad id!"}]},
    ]
    for body in bad:
        response = await acme.http.post("/api/v1/sequences", json=body)
        assert response.status_code == 422, (body, response.text)
    assert (await acme.http.get("/api/v1/sequences/nope")).status_code == 404
    assert (await acme.http.get("/api/v1/sequences/nope/enrollments")).status_code == 404
    for action in ("activate", "pause", "archive"):
        assert (await acme.http.post(f"/api/v1/sequences/nope/{action}")).status_code == 404


async def test_leads_are_enrolled_by_id_and_by_filter_removed_and_progress_counts_them(
    stack: Stack, acme: Caller
) -> None:
    vip = await setup_leads(stack, acme, ["+14155550301", "+14155550302"], "vip")
    other = await setup_leads(stack, acme, ["+14155550303"], "cold")
    created = await sequence(acme)
    path = f"/api/v1/sequences/{created['id']}"

    by_id = await acme.http.post(f"{path}/enrollments", json={"lead_ids": other})
    by_filter = await acme.http.post(f"{path}/enrollments", json={"filter": {"tags": ["vip"]}})
    again = await acme.http.post(f"{path}/enrollments", json={"lead_ids": vip})
    removed = await acme.http.delete(f"{path}/enrollments/{vip[0]}")
    progress: dict[str, Any] = {}
    for _ in range(100):
        progress = (await acme.http.get(path, params={"after_seq": removed.json()["seq"]})).json()[
            "progress"
        ]
        if progress["removed"] == 1:
            break
        await asyncio.sleep(0.05)
    enrollments = await acme.http.get(f"{path}/enrollments")
    only_removed = await acme.http.get(f"{path}/enrollments", params={"status": "removed"})

    assert by_id.status_code == 202, by_id.text
    assert by_id.json()["enrolled"] == 1
    assert by_filter.status_code == 202, by_filter.text
    assert by_filter.json()["enrolled"] == 2
    assert again.json()["enrolled"] == 0
    assert again.json()["already"] == 2
    assert removed.status_code == 202
    assert progress["enrolled"] == 3
    assert progress["removed"] == 1
    assert len(enrollments.json()["items"]) == 3
    assert [e["lead_id"] for e in only_removed.json()["items"]] == [vip[0]]


async def test_bad_enrollments_are_refused(stack: Stack, acme: Caller) -> None:
    created = await sequence(acme)
    path = f"/api/v1/sequences/{created['id']}/enrollments"

    neither = await acme.http.post(path, json={})
    both = await acme.http.post(path, json={"lead_ids": ["a"], "filter": {}})
    unknown = await acme.http.post(path, json={"lead_ids": ["nobody"]})
    not_enrolled = await acme.http.delete(f"{path}/nobody")

    assert neither.status_code == 422
    assert both.status_code == 422
    assert unknown.status_code == 422
    assert not_enrolled.status_code == 404


async def test_a_sequence_is_paused_activated_and_archived(acme: Caller) -> None:
    created = await sequence(acme)
    path = f"/api/v1/sequences/{created['id']}"

    paused = await acme.http.post(f"{path}/pause")
    state = await acme.http.get(path, params={"after_seq": paused.json()["seq"]})
    active = await acme.http.post(f"{path}/activate")
    archived = await acme.http.post(f"{path}/archive")
    final = await acme.http.get(path, params={"after_seq": archived.json()["seq"]})

    assert paused.status_code == 202
    assert state.json()["status"] == "paused"
    assert active.status_code == 202
    assert archived.status_code == 202
    assert final.json()["status"] == "archived"
