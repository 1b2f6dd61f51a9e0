"""`/api/v1/devices`: register, list, get, rename and limits, pair by QR or code, QR image,
log out, deletion impact, delete."""

from __future__ import annotations

from .conftest import Caller, Stack

PNG = b"\x89PNG\r\n\x1a\n"


async def device(caller: Caller, name: str = "Front desk") -> dict[str, object]:
    response = await caller.http.post("/api/v1/devices", json={"name": name, "driver": "sim"})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_registering_a_device_answers_it_unpaired_with_the_write_sequence(
    acme: Caller,
) -> None:
    response = await acme.http.post("/api/v1/devices", json={"name": "Sales", "driver": "sim"})

    body = response.json()
    assert response.status_code == 201
    assert body["status"] == "unpaired"
    assert body["name"] == "Sales"
    assert body["stream"] == "DEVICES"
    assert response.headers["wacast-seq"] == str(body["seq"])
    assert response.headers["location"] == f"/api/v1/devices/{body['id']}"
    found = await acme.http.get(f"/api/v1/devices/{body['id']}")
    assert found.json()["name"] == "Sales"


async def test_bad_device_input_is_422(acme: Caller) -> None:
    bodies: list[object] = [{}, {"name": ""}, {"name": "x", "driver": "fax"}, {"name": 5}, []]
    for body in bodies:
        response = await acme.http.post("/api/v1/devices", json=body)
        assert response.status_code == 422, body
        assert response.json()["code"] == "invalid_request"
    malformed = await acme.http.post(
        "/api/v1/devices", content=b"{", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 422


async def test_the_device_list_filters_by_status_and_pages(stack: Stack, acme: Caller) -> None:
    first = await device(acme, "one")
    await device(acme, "two")
    third = await device(acme, "three")
    seq = await stack.devices.connect(acme.tenant_id, str(third["id"]))

    connected = await acme.http.get(
        "/api/v1/devices", params={"status": "connected", "after_seq": seq}
    )
    page = await acme.http.get("/api/v1/devices", params={"limit": 2})
    rest = await acme.http.get(
        "/api/v1/devices", params={"limit": 2, "cursor": page.json()["next_cursor"]}
    )

    assert [d["id"] for d in connected.json()["items"]] == [third["id"]]
    assert [d["name"] for d in page.json()["items"]] == ["one", "two"]
    assert [d["name"] for d in rest.json()["items"]] == ["three"]
    assert rest.json()["next_cursor"] is None
    assert page.json()["items"][0]["id"] == first["id"]
    bad = await acme.http.get("/api/v1/devices", params={"status": "asleep"})
    assert bad.status_code == 422
    assert (await acme.http.get("/api/v1/devices", params={"limit": 0})).status_code == 422
    assert (await acme.http.get("/api/v1/devices", params={"cursor": "zz"})).status_code == 422


async def test_an_unknown_device_is_404(acme: Caller) -> None:
    for path in ("/api/v1/devices/nope", "/api/v1/devices/nope/deletion-impact"):
        response = await acme.http.get(path)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert (await acme.http.patch("/api/v1/devices/nope", json={"name": "x"})).status_code == 404
    assert (await acme.http.delete("/api/v1/devices/nope")).status_code == 404


async def test_a_device_is_renamed_and_its_limits_set(acme: Caller) -> None:
    created = await device(acme)

    renamed = await acme.http.patch(f"/api/v1/devices/{created['id']}", json={"name": "Desk 2"})
    capped = await acme.http.patch(
        f"/api/v1/devices/{created['id']}", json={"daily_cap": 200, "warmup": True}
    )
    uncapped = await acme.http.patch(f"/api/v1/devices/{created['id']}", json={"daily_cap": None})

    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Desk 2"
    assert (capped.json()["daily_cap"], capped.json()["warmup"]) == (200, True)
    assert (uncapped.json()["daily_cap"], uncapped.json()["warmup"]) == (None, True)
    assert (await acme.http.patch(f"/api/v1/devices/{created['id']}", json={})).status_code == 422
    negative = await acme.http.patch(f"/api/v1/devices/{created['id']}", json={"daily_cap": -1})
    assert negative.status_code == 422


async def test_pairing_by_code_answers_the_code_and_by_qr_serves_a_png(acme: Caller) -> None:
    by_code = await device(acme, "code")
    by_qr = await device(acme, "qr")

    code = await acme.http.post(
        f"/api/v1/devices/{by_code['id']}/pair", json={"method": "code", "phone": "+14155550123"}
    )
    qr = await acme.http.post(f"/api/v1/devices/{by_qr['id']}/pair", json={"method": "qr"})
    image = await acme.http.get(f"/api/v1/devices/{by_qr['id']}/qr")
    status = await acme.http.get(
        f"/api/v1/devices/{by_qr['id']}", params={"after_seq": qr.json()["seq"]}
    )

    assert code.status_code == 202
    assert code.json()["code"] == "ABCD1234"
    assert qr.status_code == 202
    assert qr.json()["code"] is None
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(PNG)
    assert status.json()["status"] == "pairing"
    prompt = await acme.http.get(f"/api/v1/devices/{by_code['id']}/pairing")
    assert (prompt.json()["method"], prompt.json()["code"]) == ("code", "ABCD1234")
    not_qr = await acme.http.get(f"/api/v1/devices/{by_code['id']}/qr")
    assert not_qr.status_code == 404


async def test_bad_pairing_requests_are_refused(acme: Caller) -> None:
    created = await device(acme)

    no_phone = await acme.http.post(
        f"/api/v1/devices/{created['id']}/pair", json={"method": "code"}
    )
    bad_method = await acme.http.post(
        f"/api/v1/devices/{created['id']}/pair", json={"method": "fax"}
    )
    no_qr = await acme.http.get(f"/api/v1/devices/{created['id']}/qr")
    unknown = await acme.http.post("/api/v1/devices/nope/pair", json={"method": "qr"})

    assert no_phone.status_code == 422
    assert bad_method.status_code == 422
    assert no_qr.status_code == 404
    assert no_qr.json()["code"] == "no_prompt"
    assert (await acme.http.get(f"/api/v1/devices/{created['id']}/pairing")).status_code == 404
    assert unknown.status_code == 404


async def test_pairing_is_cancelled_and_a_device_logged_out(stack: Stack, acme: Caller) -> None:
    created = await device(acme)
    await acme.http.post(f"/api/v1/devices/{created['id']}/pair", json={"method": "qr"})

    cancelled = await acme.http.post(f"/api/v1/devices/{created['id']}/pair/cancel")
    after_cancel = await acme.http.get(
        f"/api/v1/devices/{created['id']}", params={"after_seq": cancelled.json()["seq"]}
    )
    await stack.devices.connect(acme.tenant_id, str(created["id"]))
    logout = await acme.http.post(f"/api/v1/devices/{created['id']}/logout")
    after_logout = await acme.http.get(
        f"/api/v1/devices/{created['id']}",
        params={"after_seq": logout.json()["seq"], "after_stream": "DEVICES"},
    )

    assert cancelled.status_code == 202
    assert after_cancel.json()["status"] == "unpaired"
    assert logout.status_code == 202
    assert after_logout.json()["status"] == "logged_out"
    assert (await acme.http.post("/api/v1/devices/nope/logout")).status_code == 404


async def test_deleting_a_device_tells_its_impact_first_then_removes_it(acme: Caller) -> None:
    created = await device(acme)
    lead = await acme.http.post(
        "/api/v1/leads", json={"phone": "+14155550177", "device_id": created["id"]}
    )
    assert lead.status_code == 201, lead.text

    impact = await acme.http.get(f"/api/v1/devices/{created['id']}/deletion-impact")
    deleted = await acme.http.delete(f"/api/v1/devices/{created['id']}", params={"reason": "sold"})
    gone = await acme.http.get(
        f"/api/v1/devices/{created['id']}", params={"after_seq": deleted.json()["seq"]}
    )

    assert impact.json() == {"device_id": created["id"], "leads": 1, "messages": 0}
    assert deleted.status_code == 202
    assert gone.status_code == 404
