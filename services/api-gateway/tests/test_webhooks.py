"""`/api/v1/webhooks` with the real webhook-service behind it and a receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from wacast.contracts import webhooks as wh
from wacast.webhook_service import signing

from .conftest import OWNER_SETTINGS, Caller, Stack

LIMIT = 3


class Receiver:
    """Answers 200 to every POST and keeps what came."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/in"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                assert line.startswith(b"POST ")
                headers: dict[str, str] = {}
                while (header := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers["content-length"]))
                self.got.append((headers, body))
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@pytest.fixture
def webhooks(stack: Stack) -> None:
    """The stack runs the real webhook-service, allowed to reach 127.0.0.1 by configuration
    and `LIMIT` endpoints per tenant (see `OWNER_SETTINGS`)."""
    assert "webhooks" in stack.real_owners
    assert OWNER_SETTINGS["webhooks"]["webhook_max_per_tenant"] == LIMIT


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    found.server = await asyncio.start_server(found.serve, "127.0.0.1", 0)
    yield found
    found.server.close()


async def create(caller: Caller, url: str, events: list[str] | None = None) -> httpx.Response:
    return await caller.http.post("/api/v1/webhooks", json={"url": url, "events": events or ["*"]})


async def until(check: Any, what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := await check()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
    return found


async def test_a_webhook_is_created_with_its_secret_shown_once_then_listed_without_it(
    webhooks: None, acme: Caller, receiver: Receiver
) -> None:
    created = await create(acme, receiver.url, ["device.connected", "message.sent"])
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert body["events"] == ["device.connected", "message.sent"]
    assert created.headers["location"] == f"/api/v1/webhooks/{body['id']}"

    listed = await acme.http.get("/api/v1/webhooks", params={"after_seq": body["seq"]})
    assert listed.status_code == 200
    [item] = listed.json()["items"]
    assert item["id"] == body["id"]
    assert "secret" not in item
    one = await acme.http.get(f"/api/v1/webhooks/{body['id']}")
    assert one.status_code == 200
    assert one.json()["url"] == receiver.url
    assert "secret" not in one.json()


async def test_an_event_reaches_the_receiver_signed_and_shows_in_the_delivery_log(
    webhooks: None, stack: Stack, acme: Caller, receiver: Receiver
) -> None:
    created = (await create(acme, receiver.url, ["device.connected"])).json()
    device = await acme.http.post("/api/v1/devices", json={"name": "Sales", "driver": "sim"})
    assert device.status_code == 201, device.text
    device_id = device.json()["id"]
    await stack.devices.connect(acme.tenant_id, device_id)

    async def got() -> bool:
        return bool(receiver.got)

    await until(got, "the receiver to get device.connected")
    [(headers, raw)] = receiver.got
    assert signing.verify(created["secret"], headers, raw, int(time.time()))
    assert not signing.verify(created["secret"], headers, raw + b" ", int(time.time()))

    async def delivered() -> list[dict[str, Any]]:
        page = await acme.http.get(
            f"/api/v1/webhooks/{created['id']}/deliveries", params={"status": "delivered"}
        )
        assert page.status_code == 200, page.text
        items: list[dict[str, Any]] = page.json()["items"]
        return items

    [delivery] = await until(delivered, "the log to show the delivery")
    assert delivery["event_type"] == "device.connected"
    assert delivery["event_id"] == headers["webhook-id"]
    assert delivery["attempts"] == 1

    replayed = await acme.http.post(
        f"/api/v1/webhooks/{created['id']}/deliveries/{delivery['id']}/replay"
    )
    assert replayed.status_code == 202, replayed.text

    async def twice() -> bool:
        return len(receiver.got) == 2

    await until(twice, "the replay to arrive")
    assert receiver.got[1][0]["webhook-id"] == headers["webhook-id"]


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"url": "http://127.0.0.1:9/x", "events": ["message.teleported"]}, "invalid_request"),
        ({"url": "http://127.0.0.1:9/x", "events": ["*", "message.sent"]}, "invalid_request"),
        ({"url": "ftp://example.com/x", "events": ["*"]}, "invalid_request"),
        ({"url": "http://user:pw@127.0.0.1:9/x", "events": ["*"]}, "invalid_request"),
        ({"url": "http://169.254.169.254/latest/meta-data", "events": ["*"]}, "url_refused"),
        ({"url": "http://10.0.0.1/hook", "events": ["*"]}, "url_refused"),
        ({"url": "http://[::1]:8080/hook", "events": ["*"]}, "url_refused"),
        ({"url": "http://127.0.0.1:9/x", "events": []}, "invalid_request"),
    ],
)
async def test_bad_urls_ssrf_targets_and_unknown_event_types_are_422(
    webhooks: None, acme: Caller, payload: dict[str, Any], code: str
) -> None:
    refused = await acme.http.post("/api/v1/webhooks", json=payload)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == code


async def test_a_tenant_has_at_most_the_limit_of_webhooks(
    webhooks: None, acme: Caller, receiver: Receiver
) -> None:
    ids = []
    for _ in range(LIMIT):
        created = await create(acme, receiver.url)
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    refused = await create(acme, receiver.url)
    assert refused.status_code == 422
    assert refused.json()["code"] == "too_many_webhooks"
    assert str(LIMIT) in refused.json()["detail"]

    deleted = await acme.http.delete(f"/api/v1/webhooks/{ids[0]}")
    assert deleted.status_code == 202
    assert (await acme.http.get(f"/api/v1/webhooks/{ids[0]}")).status_code == 404
    assert (await create(acme, receiver.url)).status_code == 201


async def test_another_tenants_webhooks_are_not_found(
    webhooks: None, acme: Caller, umbrella: Caller, receiver: Receiver
) -> None:
    created = (await create(acme, receiver.url)).json()
    for path in (
        f"/api/v1/webhooks/{created['id']}",
        f"/api/v1/webhooks/{created['id']}/deliveries",
    ):
        assert (await umbrella.http.get(path)).status_code == 404
    assert (await umbrella.http.delete(f"/api/v1/webhooks/{created['id']}")).status_code == 404
    assert (await umbrella.http.get("/api/v1/webhooks")).json()["items"] == []
    missing = await acme.http.post(f"/api/v1/webhooks/{created['id']}/deliveries/dlv_x/replay")
    assert missing.status_code == 404


async def test_the_event_type_catalog_is_listed(webhooks: None, acme: Caller) -> None:
    found = await acme.http.get("/api/v1/webhooks/event-types")
    assert found.status_code == 200
    assert set(found.json()["items"]) == set(wh.CATALOG)
    assert {"message.sent", "message.inbound", "device.banned", "campaign.finished"} <= set(
        wh.CATALOG
    )


async def test_a_malformed_cursor_is_422(webhooks: None, acme: Caller) -> None:
    for path in ("/api/v1/webhooks", "/api/v1/webhooks/wh_x/deliveries"):
        refused = await acme.http.get(path, params={"cursor": "Äî¥\x00"})
        assert refused.status_code == 422, refused.text
