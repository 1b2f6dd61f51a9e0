"""`Idempotency-Key` on POST: a retried request gets the first reply and acts once."""

from __future__ import annotations

from .conftest import Caller


async def test_a_retried_post_gets_the_first_reply_and_creates_once(acme: Caller) -> None:
    headers = {"Idempotency-Key": "create-front-desk"}
    body = {"name": "Front desk", "driver": "sim"}

    first = await acme.http.post("/api/v1/devices", json=body, headers=headers)
    again = await acme.http.post("/api/v1/devices", json=body, headers=headers)
    listed = await acme.http.get("/api/v1/devices", params={"after_seq": first.json()["seq"]})

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["wacast-seq"] == first.headers["wacast-seq"]
    assert [d["id"] for d in listed.json()["items"]] == [first.json()["id"]]


async def test_the_same_key_with_another_body_is_refused(acme: Caller) -> None:
    headers = {"Idempotency-Key": "k-1"}
    await acme.http.post("/api/v1/devices", json={"name": "A"}, headers=headers)

    other = await acme.http.post("/api/v1/devices", json={"name": "B"}, headers=headers)

    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"


async def test_keys_are_scoped_to_tenant_and_path(acme: Caller, umbrella: Caller) -> None:
    headers = {"Idempotency-Key": "shared"}

    mine = await acme.http.post("/api/v1/devices", json={"name": "A"}, headers=headers)
    theirs = await umbrella.http.post("/api/v1/devices", json={"name": "A"}, headers=headers)
    elsewhere = await acme.http.post(
        "/api/v1/sequences",
        json={"name": "S", "steps": [{"delay_seconds": 0, "message": {"text": "x"}}]},
        headers=headers,
    )

    assert mine.status_code == theirs.status_code == elsewhere.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert "idempotent-replayed" not in theirs.headers


async def test_a_refusal_is_remembered_too_but_a_bad_key_is_not_accepted(acme: Caller) -> None:
    headers = {"Idempotency-Key": "refused"}
    first = await acme.http.post("/api/v1/devices/nope/logout", headers=headers)
    again = await acme.http.post("/api/v1/devices/nope/logout", headers=headers)
    too_long = await acme.http.post(
        "/api/v1/devices", json={"name": "x"}, headers={"Idempotency-Key": "k" * 300}
    )

    assert first.status_code == again.status_code == 404
    assert again.headers["idempotent-replayed"] == "true"
    assert too_long.status_code == 422
