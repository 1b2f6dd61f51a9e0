"""API keys: every API path needs one, scoped to its tenant; revoked keys stop working;
each key has a rate; health, metrics and the OpenAPI document are public."""

from __future__ import annotations

import dataclasses

import httpx
import msgspec
from litestar import Litestar

from wacast.api_gateway.app import create_app
from wacast.api_gateway.ratelimit import RateLimiter

from .conftest import Caller, Stack

PROBLEM = "application/problem+json"


def asgi(app: Litestar) -> httpx.ASGITransport:
    """httpx types an ASGI app's scope and messages as plain dicts, Litestar as TypedDicts,
    so a Litestar app is not an httpx `_ASGIApp` to mypy though it is one at runtime."""
    return httpx.ASGITransport(app=app)  # type: ignore[arg-type]


async def test_a_request_without_a_key_is_401_problem_details_with_a_challenge(
    stack: Stack,
) -> None:
    anonymous = stack.client()

    response = await anonymous.get("/api/v1/devices")

    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["status"] == 401
    assert body["type"] == "urn:wacast:problem:unauthorized"
    assert body["instance"] == "/api/v1/devices"


async def test_an_unknown_or_malformed_key_is_401(stack: Stack, acme: Caller) -> None:
    forged = acme.key[:-4] + "AAAA"
    for key in (forged, "wk_000000000000_nope", "not-a-key", ""):
        response = await stack.client(key).get("/api/v1/devices")
        assert response.status_code == 401, key


async def test_health_metrics_and_the_openapi_document_need_no_key(stack: Stack) -> None:
    anonymous = stack.client()

    assert (await anonymous.get("/healthz")).json()["status"] == "ok"
    assert (await anonymous.get("/readyz")).status_code == 200
    assert b"wacast_" in (await anonymous.get("/metrics")).content
    schema = (await anonymous.get("/schema/openapi.json")).json()
    assert "/api/v1/campaigns/{campaign_id}/report" in schema["paths"]


async def test_keys_are_listed_issued_and_revoked_and_a_revoked_key_stops_working(
    stack: Stack, acme: Caller
) -> None:
    issued = await acme.http.post("/api/v1/keys", json={"name": "ci"})
    assert issued.status_code == 201
    new = issued.json()
    second = stack.client(new["key"])

    works = await second.get("/api/v1/devices")
    listed = (await acme.http.get("/api/v1/keys")).json()["items"]
    revoked = await acme.http.delete(f"/api/v1/keys/{new['id']}")
    refused = await second.get("/api/v1/devices")

    assert works.status_code == 200
    assert sorted(k["name"] for k in listed) == ["ci", "test"]
    assert all("key" not in k for k in listed)
    assert revoked.status_code == 202
    assert refused.status_code == 401
    after = (await acme.http.get("/api/v1/keys")).json()["items"]
    assert [k["revoked_at"] is not None for k in after if k["name"] == "ci"] == [True]


async def test_bad_key_requests_are_refused(acme: Caller) -> None:
    assert (await acme.http.post("/api/v1/keys", json={})).status_code == 422
    assert (await acme.http.post("/api/v1/keys", json={"name": ""})).status_code == 422
    naive = await acme.http.post(
        "/api/v1/keys", json={"name": "x", "expires_at": "2031-01-01T00:00:00"}
    )
    assert naive.status_code == 422
    assert (await acme.http.delete("/api/v1/keys/nokey")).status_code == 404
    assert (await acme.http.delete("/api/v1/keys/bad key!")).status_code == 404


async def test_an_expired_key_stops_working(stack: Stack, acme: Caller) -> None:
    issued = await acme.http.post(
        "/api/v1/keys", json={"name": "old", "expires_at": "2001-01-01T00:00:00Z"}
    )
    assert issued.status_code == 201

    response = await stack.client(issued.json()["key"]).get("/api/v1/devices")

    assert response.status_code == 401


async def test_a_key_over_its_rate_gets_429_with_retry_after(stack: Stack, acme: Caller) -> None:
    unlimited = stack.gw.limiter
    stack.gw.limiter = RateLimiter(rate=0.5, burst=3)
    try:
        statuses = [(await acme.http.get("/api/v1/keys")).status_code for _ in range(5)]
        limited = await acme.http.get("/api/v1/keys")
    finally:
        stack.gw.limiter = unlimited

    assert statuses[:3] == [200, 200, 200]
    assert statuses[3:] == [429, 429]
    assert limited.headers["content-type"].startswith(PROBLEM)
    assert int(limited.headers["retry-after"]) >= 1


async def test_an_unknown_path_and_a_wrong_method_are_problems(acme: Caller) -> None:
    missing = await acme.http.get("/api/v1/nothing-here")
    wrong = await acme.http.put("/api/v1/devices")

    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith(PROBLEM)
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "method_not_allowed"


async def test_a_body_over_the_size_limit_is_413(acme: Caller) -> None:
    response = await acme.http.post(
        "/api/v1/devices",
        content=b'{"name": "' + b"x" * 2_000_000 + b'"}',
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 413
    assert response.json()["code"] == "too_large"


async def test_cors_answers_allowed_origins_only_when_configured(
    stack: Stack, acme: Caller
) -> None:
    settings = msgspec.structs.replace(stack.gw.settings, cors_origins="https://app.example")
    app = create_app(dataclasses.replace(stack.gw, settings=settings))
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, idempotency-key",
    }
    async with httpx.AsyncClient(transport=asgi(app), base_url="http://api.test") as http:
        allowed = await http.options("/api/v1/devices", headers=preflight)
        other = await http.options(
            "/api/v1/devices", headers={**preflight, "Origin": "https://evil.example"}
        )
    closed = await acme.http.get("/api/v1/devices", headers={"Origin": "https://app.example"})

    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in other.headers
    assert "access-control-allow-origin" not in closed.headers


async def test_an_upload_over_the_upload_limit_is_413(stack: Stack, acme: Caller) -> None:
    settings = msgspec.structs.replace(
        stack.gw.settings, max_body_bytes=1024, max_upload_bytes=4096
    )
    app = create_app(dataclasses.replace(stack.gw, settings=settings))
    async with httpx.AsyncClient(
        transport=asgi(app),
        base_url="http://api.test",
        headers={"Authorization": f"Bearer {acme.key}"},
    ) as http:
        big = await http.post("/api/v1/media", files={"file": ("a.png", b"x" * 10_000)})
        small_json = await http.post("/api/v1/devices", json={"name": "x" * 2000})

    assert big.status_code == 413
    assert big.headers["content-type"].startswith(PROBLEM)
    assert small_json.status_code == 413
