"""A tenant cannot read, change or even detect another tenant's objects: every endpoint
answers an id of another tenant exactly as an id that does not exist (404)."""

from __future__ import annotations

import base64
import io

from PIL import Image

from .conftest import Caller, Stack


async def objects_of(stack: Stack, owner: Caller) -> dict[str, str]:
    device = (
        await owner.http.post("/api/v1/devices", json={"name": "Mine", "driver": "sim"})
    ).json()["id"]
    await owner.http.post(f"/api/v1/devices/{device}/pair", json={"method": "qr"})
    lead = (
        await owner.http.post("/api/v1/leads", json={"phone": "+14155550401", "device_id": device})
    ).json()["id"]
    imported = await owner.http.post(
        "/api/v1/leads/import", files={"file": ("a.csv", b"phone\n+14155550402\n", "text/csv")}
    )
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    media = (
        await owner.http.post(
            "/api/v1/media", json={"base64": base64.b64encode(buffer.getvalue()).decode()}
        )
    ).json()["id"]
    campaign = (
        await owner.http.post(
            "/api/v1/campaigns",
            json={
                "name": "Mine",
                "message": {"text": "x"},
                "schedule_at": "2039-01-01T00:00:00Z",
            },
        )
    ).json()["id"]
    sequence = (
        await owner.http.post(
            "/api/v1/sequences",
            json={"name": "Mine", "steps": [{"delay_seconds": 0, "message": {"text": "x"}}]},
        )
    ).json()["id"]
    key = (await owner.http.post("/api/v1/keys", json={"name": "mine"})).json()["id"]
    return {
        "device": device,
        "lead": lead,
        "import": imported.json()["import_id"],
        "media": media,
        "campaign": campaign,
        "sequence": sequence,
        "key": key,
    }


def requests(ids: dict[str, str]) -> list[tuple[str, str, dict[str, object] | None]]:
    d, ld, c, s = ids["device"], ids["lead"], ids["campaign"], ids["sequence"]
    return [
        ("GET", f"/api/v1/devices/{d}", None),
        ("PATCH", f"/api/v1/devices/{d}", {"name": "stolen"}),
        ("PATCH", f"/api/v1/devices/{d}", {"daily_cap": 1}),
        ("POST", f"/api/v1/devices/{d}/pair", {"method": "qr"}),
        ("POST", f"/api/v1/devices/{d}/pair/cancel", None),
        ("POST", f"/api/v1/devices/{d}/logout", None),
        ("GET", f"/api/v1/devices/{d}/qr", None),
        ("GET", f"/api/v1/devices/{d}/pairing", None),
        ("GET", f"/api/v1/devices/{d}/deletion-impact", None),
        ("DELETE", f"/api/v1/devices/{d}", None),
        ("GET", f"/api/v1/leads/{ld}", None),
        ("PATCH", f"/api/v1/leads/{ld}", {"name": "stolen"}),
        ("POST", f"/api/v1/leads/{ld}/opt-out", None),
        ("POST", f"/api/v1/leads/{ld}/opt-in", None),
        ("DELETE", f"/api/v1/leads/{ld}", None),
        ("GET", f"/api/v1/leads/imports/{ids['import']}", None),
        ("GET", f"/api/v1/media/{ids['media']}", None),
        ("DELETE", f"/api/v1/media/{ids['media']}", None),
        ("GET", f"/api/v1/campaigns/{c}", None),
        ("GET", f"/api/v1/campaigns/{c}/report", None),
        ("GET", f"/api/v1/campaigns/{c}/messages", None),
        ("POST", f"/api/v1/campaigns/{c}/trigger", None),
        ("POST", f"/api/v1/campaigns/{c}/schedule", {"schedule_at": "2040-01-01T00:00:00Z"}),
        ("POST", f"/api/v1/campaigns/{c}/pause", None),
        ("POST", f"/api/v1/campaigns/{c}/resume", None),
        ("POST", f"/api/v1/campaigns/{c}/cancel", None),
        ("GET", f"/api/v1/sequences/{s}", None),
        ("GET", f"/api/v1/sequences/{s}/enrollments", None),
        ("POST", f"/api/v1/sequences/{s}/enrollments", {"lead_ids": [ld]}),
        ("DELETE", f"/api/v1/sequences/{s}/enrollments/{ld}", None),
        ("POST", f"/api/v1/sequences/{s}/activate", None),
        ("POST", f"/api/v1/sequences/{s}/pause", None),
        ("POST", f"/api/v1/sequences/{s}/archive", None),
        ("DELETE", f"/api/v1/keys/{ids['key']}", None),
    ]


async def test_every_endpoint_answers_another_tenants_id_like_an_unknown_one(
    stack: Stack, acme: Caller, umbrella: Caller
) -> None:
    ids = await objects_of(stack, acme)
    missing = {k: f"{v[:-4]}zzzz" for k, v in ids.items()}

    for (method, path, body), (_, unknown_path, _) in zip(
        requests(ids), requests(missing), strict=True
    ):
        theirs = await umbrella.http.request(method, path, json=body)
        nothing = await umbrella.http.request(method, unknown_path, json=body)
        assert (theirs.status_code, nothing.status_code) in ((404, 404), (422, 422)), (
            method,
            path,
            theirs.text,
        )
        assert theirs.json()["code"] == nothing.json()["code"], (method, path)


async def test_lists_show_only_the_tenants_own_objects_and_nothing_was_changed(
    stack: Stack, acme: Caller, umbrella: Caller
) -> None:
    ids = await objects_of(stack, acme)
    for method, path, body in requests(ids):
        await umbrella.http.request(method, path, json=body)

    for path in (
        "/api/v1/devices",
        "/api/v1/leads",
        "/api/v1/media",
        "/api/v1/campaigns",
        "/api/v1/sequences",
        "/api/v1/keys",
    ):
        listed = await umbrella.http.get(path)
        mine = [x["name"] for x in listed.json()["items"] if x.get("name") != "test"]
        assert mine == [], path
    overview = (await umbrella.http.get("/api/v1/overview")).json()
    assert overview["leads"] == 0
    assert overview["devices"] == {}
    device = await acme.http.get(f"/api/v1/devices/{ids['device']}")
    assert device.json()["name"] == "Mine"
    assert (await acme.http.get(f"/api/v1/leads/{ids['lead']}")).status_code == 200
    assert (await acme.http.get(f"/api/v1/campaigns/{ids['campaign']}")).json()[
        "status"
    ] == "pending"
    keys = (await acme.http.get("/api/v1/keys")).json()["items"]
    assert [k["revoked_at"] for k in keys if k["name"] == "mine"] == [None]


async def test_another_tenants_device_cannot_be_given_to_a_lead(
    acme: Caller, umbrella: Caller
) -> None:
    device = (
        await acme.http.post("/api/v1/devices", json={"name": "Mine", "driver": "sim"})
    ).json()["id"]

    response = await umbrella.http.post(
        "/api/v1/leads", json={"phone": "+14155550499", "device_id": device}
    )

    assert response.status_code in (404, 422), response.text
