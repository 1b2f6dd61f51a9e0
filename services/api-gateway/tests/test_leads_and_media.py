"""`/api/v1/leads` and `/api/v1/media` through the campaign-service (real when it starts)."""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Any

import pytest
from PIL import Image

from .conftest import Caller


@pytest.fixture
async def device_id(acme: Caller) -> str:
    response = await acme.http.post("/api/v1/devices", json={"name": "Leads", "driver": "sim"})
    return str(response.json()["id"])


def png(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


async def lead(caller: Caller, phone: str, device_id: str, **fields: object) -> dict[str, object]:
    response = await caller.http.post(
        "/api/v1/leads", json={"phone": phone, "device_id": device_id, **fields}
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_a_lead_is_created_normalised_and_shown_with_its_device(
    acme: Caller, device_id: str
) -> None:
    response = await acme.http.post(
        "/api/v1/leads",
        json={
            "phone": "+1 (415) 555-0101",
            "name": "Ana",
            "device_id": device_id,
            "tags": ["vip"],
            "attributes": {"city": "Lisbon"},
        },
    )

    body = response.json()
    assert response.status_code == 201
    assert body["phone"] == "+14155550101"
    assert body["device_name"] == "Leads"
    assert body["tags"] == ["vip"]
    assert response.headers["wacast-stream"] == "LEADS"
    detail = await acme.http.get(f"/api/v1/leads/{body['id']}")
    assert detail.json()["attributes"] == {"city": "Lisbon"}
    assert detail.json()["messages"] == []


async def test_bad_lead_input_is_refused(acme: Caller, device_id: str) -> None:
    await lead(acme, "+14155550102", device_id)

    duplicate = await acme.http.post(
        "/api/v1/leads", json={"phone": "+14155550102", "device_id": device_id}
    )
    invalid_phone = await acme.http.post(
        "/api/v1/leads", json={"phone": "not a phone", "device_id": device_id}
    )
    missing = await acme.http.post("/api/v1/leads", json={"name": "x"})
    bad_status = await acme.http.post(
        "/api/v1/leads", json={"phone": "+14155550103", "status": "vip"}
    )

    assert duplicate.status_code == 409
    assert invalid_phone.status_code == 422
    assert missing.status_code == 422
    assert bad_status.status_code == 422
    assert (await acme.http.get("/api/v1/leads/nope")).status_code == 404
    assert (await acme.http.patch("/api/v1/leads/nope", json={"name": "x"})).status_code == 404


async def test_leads_are_listed_with_filters_updated_opted_out_and_deleted(
    acme: Caller, device_id: str
) -> None:
    ana = await lead(acme, "+14155550111", device_id, name="Ana", tags=["vip"])
    bo = await lead(acme, "+14155550112", device_id, name="Bo", status="customer")

    updated = await acme.http.patch(
        f"/api/v1/leads/{ana['id']}", json={"name": "Ana Lima", "tags": ["vip", "pt"]}
    )
    opted = await acme.http.post(f"/api/v1/leads/{bo['id']}/opt-out", json={"reason": "asked"})
    read = {"after_seq": opted.json()["seq"], "after_stream": "LEADS"}
    vip = await acme.http.get("/api/v1/leads", params={"tag": "vip", **read})
    customers = await acme.http.get("/api/v1/leads", params={"status": "customer"})
    out = await acme.http.get("/api/v1/leads", params={"opted_out": "true"})
    found = await acme.http.get("/api/v1/leads", params={"search": "lima"})
    opted_in = await acme.http.post(f"/api/v1/leads/{bo['id']}/opt-in")
    deleted = await acme.http.delete(f"/api/v1/leads/{ana['id']}")
    after = await acme.http.get(
        f"/api/v1/leads/{ana['id']}", params={"after_seq": deleted.json()["seq"]}
    )

    assert updated.status_code == 200
    assert updated.json()["name"] == "Ana Lima"
    assert [x["id"] for x in vip.json()["items"]] == [ana["id"]]
    assert [x["id"] for x in customers.json()["items"]] == [bo["id"]]
    assert [x["id"] for x in out.json()["items"]] == [bo["id"]]
    assert [x["id"] for x in found.json()["items"]] == [ana["id"]]
    assert opted_in.status_code == 202
    assert deleted.status_code == 202
    assert after.status_code == 404
    assert (await acme.http.patch(f"/api/v1/leads/{bo['id']}", json={})).status_code == 422
    assert (await acme.http.get("/api/v1/leads", params={"opted_out": "maybe"})).status_code == 422


async def test_a_csv_import_runs_and_reports_its_row_errors(acme: Caller, device_id: str) -> None:
    csv = b"phone,name,tags\n+14155550121,Cy,fair\nnonsense,Dee,\n+14155550122,Eve,fair;vip\n"

    started = await acme.http.post(
        "/api/v1/leads/import",
        files={"file": ("fair.csv", csv, "text/csv")},
        data={"device_id": device_id, "tags": "imported"},
    )
    assert started.status_code == 202, started.text
    import_id = started.json()["import_id"]
    progress: dict[str, Any] = {}
    for _ in range(100):
        progress = (await acme.http.get(f"/api/v1/leads/imports/{import_id}")).json()
        if progress.get("status") in ("completed", "failed"):
            break
        await asyncio.sleep(0.1)

    assert progress["status"] == "completed", progress
    assert progress["created"] == 2
    assert progress["failed"] == 1
    assert [e["row"] for e in progress["errors"]] == [3]  # file line
    imported = await acme.http.get("/api/v1/leads", params={"tag": "imported"})
    assert len(imported.json()["items"]) == 2


async def test_bad_imports_are_refused(acme: Caller) -> None:
    no_file = await acme.http.post("/api/v1/leads/import", data={"device_id": "x"})
    empty = await acme.http.post("/api/v1/leads/import", files={"file": ("e.csv", b"", "text/csv")})
    assert no_file.status_code in (415, 422)
    assert empty.status_code == 422
    assert (await acme.http.get("/api/v1/leads/imports/nope")).status_code == 404


async def test_media_is_uploaded_as_multipart_or_base64_and_listed(acme: Caller) -> None:
    image = png()

    multipart = await acme.http.post(
        "/api/v1/media", files={"file": ("red.png", image, "image/png")}
    )
    as_json = await acme.http.post(
        "/api/v1/media", json={"base64": base64.b64encode(image).decode(), "filename": "r.png"}
    )
    listed = await acme.http.get(
        "/api/v1/media", params={"after_seq": as_json.json()["seq"], "after_stream": "MEDIA"}
    )
    one = await acme.http.get(f"/api/v1/media/{multipart.json()['id']}")
    deleted = await acme.http.delete(f"/api/v1/media/{multipart.json()['id']}")
    gone = await acme.http.get(
        f"/api/v1/media/{multipart.json()['id']}", params={"after_seq": deleted.json()["seq"]}
    )

    assert multipart.status_code == 201, multipart.text
    assert multipart.json()["kind"] == "image"
    assert multipart.json()["bytes"] <= 350_000
    assert as_json.status_code == 201, as_json.text
    assert {m["id"] for m in listed.json()["items"]} == {
        multipart.json()["id"],
        as_json.json()["id"],
    }
    assert one.json()["mime"].startswith("image/")
    assert gone.status_code == 404


async def test_bad_media_is_refused(acme: Caller) -> None:
    cases = [
        {"base64": "!!!not base64"},
        {"base64": "aGk=", "url": "https://example.com/x.png"},
        {},
        {"url": "ftp://example.com/x.png"},
    ]
    for body in cases:
        response = await acme.http.post("/api/v1/media", json=body)
        assert response.status_code == 422, (body, response.text)
    private = await acme.http.post("/api/v1/media", json={"url": "http://127.0.0.1:9/x.png"})
    text = await acme.http.post(
        "/api/v1/media", content=b"hello", headers={"content-type": "text/plain"}
    )
    assert 400 <= private.status_code < 500, private.text
    assert text.status_code == 415
    assert (await acme.http.get("/api/v1/media/nope")).status_code == 404
