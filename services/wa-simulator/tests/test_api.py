"""The control API over HTTP (Litestar's AsyncTestClient): linking, problems, stats."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from wacast.contracts.sim_protocol import (
    PairCode,
    PairCodeIssued,
    Paired,
    PairQr,
    Send,
    SimFrame,
    sim_batch_decoder,
)
from wacast.wa_simulator.app import create_app
from wacast.wa_simulator.connection import DriverConnection
from wacast.wa_simulator.network import Network
from wacast.wa_simulator.settings import Settings

PROBLEM = "application/problem+json"


@pytest.fixture
async def client() -> AsyncIterator[AsyncTestClient[Litestar]]:
    settings = Settings(sim_profile="bench", sim_pair_delay=0.0, sim_seed=3)
    async with AsyncTestClient(create_app(settings, rng=random.Random(3))) as client:
        yield client


def network(client: AsyncTestClient[Litestar]) -> Network:
    net = client.app.state.network
    assert isinstance(net, Network)
    return net


def drain(conn: DriverConnection) -> list[SimFrame]:
    frames: list[SimFrame] = []
    while (batch := conn.take_batch()) is not None:
        frames.extend(sim_batch_decoder.decode(batch))
    return frames


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code)
    assert body["title"]
    assert body["detail"]
    assert body["type"].endswith(code)
    return body


async def test_health_readiness_and_metrics(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.get("/healthz")).json()["service"] == "wa-simulator"
    assert (await client.get("/readyz")).status_code == 200
    metrics = (await client.get("/metrics")).text
    assert "wasim_messages_received_total" in metrics
    assert "wasim_devices_linked" in metrics


async def test_link_by_qr_scan(client: AsyncTestClient[Litestar]) -> None:
    net = network(client)
    conn = net.open_connection()
    net.handle(conn, PairQr(req_id="1", device_id="dev-qr"))
    drain(conn)
    described = (await client.get("/sim/v1/devices/dev-qr")).json()
    assert (described["status"], described["pairing"]) == ("pairing", "qr")
    response = await client.post("/sim/v1/devices/dev-qr/scan", json={"phone": "+4917711111111"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "linked"
    paired = [f for f in drain(conn) if isinstance(f, Paired)]
    assert [p.phone for p in paired] == ["+4917711111111"]
    again = await client.post("/sim/v1/devices/dev-qr/scan")
    assert_problem(again, 409, "already_linked")


async def test_link_by_pairing_code(client: AsyncTestClient[Litestar]) -> None:
    net = network(client)
    conn = net.open_connection()
    net.handle(conn, PairCode(req_id="1", device_id="dev-code", phone="+4917722222222"))
    (issued,) = [f for f in drain(conn) if isinstance(f, PairCodeIssued)]
    wrong = await client.post("/sim/v1/devices/dev-code/enter-code", json={"code": "XXXX-XXXX"})
    assert_problem(wrong, 400, "wrong_code")
    right = await client.post("/sim/v1/devices/dev-code/enter-code", json={"code": issued.code})
    assert right.status_code == 200, right.text
    assert right.json()["phone"] == "+4917722222222"


async def test_bad_input_gets_problem_details(client: AsyncTestClient[Litestar]) -> None:
    net = network(client)
    conn = net.open_connection()
    net.handle(conn, PairQr(device_id="dev-1"))
    assert_problem(await client.post("/sim/v1/devices/ghost/scan"), 404, "not_found")
    assert_problem(await client.post("/sim/v1/devices/ghost/drop"), 404, "not_found")
    assert_problem(await client.get("/sim/v1/devices/ghost"), 404, "not_found")
    bad_phone = await client.post("/sim/v1/devices/dev-1/scan", json={"phone": "0176-12"})
    assert_problem(bad_phone, 400, "bad_phone")
    not_json = await client.post("/sim/v1/devices/dev-1/scan", content=b"{nope")
    assert_problem(not_json, 400, "bad_body")
    unknown_field = await client.post("/sim/v1/devices/dev-1/scan", json={"phoen": "+49"})
    assert_problem(unknown_field, 400, "bad_body")
    await client.post("/sim/v1/devices/dev-1/scan")
    negative = await client.post("/sim/v1/devices/dev-1/ban", json={"seconds": -1})
    assert_problem(negative, 400, "bad_body")
    assert_problem(await client.post("/sim/v1/numbers/12345/absent"), 400, "bad_phone")
    inbound = await client.post(
        "/sim/v1/inbound", json={"from": "+4915100000009", "to": "0049", "text": "x"}
    )
    assert_problem(inbound, 400, "bad_phone")
    nobody = await client.post(
        "/sim/v1/inbound", json={"from": "+4915100000009", "to": "+4915100000008", "text": "x"}
    )
    assert_problem(nobody, 404, "not_found")
    no_text = await client.post(
        "/sim/v1/inbound", json={"from": "+4915100000009", "to": "+4915100000008"}
    )
    assert_problem(no_text, 400, "bad_body")
    too_long = await client.post(
        "/sim/v1/inbound",
        json={"from": "+4915100000009", "to": "+4915100000008", "text": "x" * 65_537},
    )
    assert_problem(too_long, 400, "bad_body")
    assert_problem(await client.get("/sim/v1/ledger?limit=0"), 400, "bad_query")
    assert_problem(await client.get("/sim/v1/ledger?limit=ten"), 400, "bad_request")
    assert_problem(await client.get("/sim/v1/nothing-here"), 404, "not_found")
    assert_problem(await client.delete("/sim/v1/stats"), 405, "method_not_allowed")
    logout_unlinked = await client.post("/sim/v1/devices/dev-1/logout")
    assert logout_unlinked.status_code == 200
    assert_problem(await client.post("/sim/v1/devices/dev-1/logout"), 409, "not_linked")


async def test_stats_ledger_and_reset(client: AsyncTestClient[Litestar]) -> None:
    net = network(client)
    conn = net.open_connection()
    net.handle(conn, PairQr(device_id="dev-s"))
    await client.post("/sim/v1/devices/dev-s/scan")
    for n, origin in enumerate(("m1", "m2", "m1")):
        net.handle(
            conn,
            Send(
                req_id=str(n), device_id="dev-s", to="+4915100000001", text="hi",
                origin_message_id=origin, campaign_id="c1",
            ),
        )  # fmt: skip
    stats = (await client.get("/sim/v1/stats")).json()
    assert (stats["received"], stats["unique"], stats["duplicates"]) == (3, 1, 2)
    assert stats["gaps"]["dev-s"]["count"] == 2
    assert stats["in_flight_max"]["dev-s"] == 3
    assert (stats["devices_linked"], stats["devices_connected"], stats["bans"]) == (1, 1, 0)
    ledger = (await client.get("/sim/v1/ledger", params={"device_id": "dev-s"})).json()
    assert [e["origin_message_id"] for e in ledger["entries"]] == ["m1", "m2", "m1"]
    assert [e["duplicate"] for e in ledger["entries"]] == [False, True, True]
    page = (await client.get("/sim/v1/ledger", params={"after": 1, "limit": 1})).json()
    assert [e["seq"] for e in page["entries"]] == [2]
    assert page["next_after"] == 2
    assert (await client.post("/sim/v1/reset")).status_code == 200
    stats = (await client.get("/sim/v1/stats")).json()
    assert (stats["received"], stats["gaps"], stats["devices_linked"]) == (0, {}, 1)


async def test_control_actions_reach_the_driver(client: AsyncTestClient[Litestar]) -> None:
    net = network(client)
    conn = net.open_connection()
    net.handle(conn, PairQr(device_id="dev-c"))
    phone = (await client.post("/sim/v1/devices/dev-c/scan")).json()["phone"]
    drain(conn)
    absent = await client.post("/sim/v1/numbers/+4915133333333/absent")
    assert absent.json() == {"phone": "+4915133333333", "on_whatsapp": False}
    present = await client.delete("/sim/v1/numbers/+4915133333333/absent")
    assert present.json()["on_whatsapp"] is True
    reply = await client.post(
        "/sim/v1/inbound", json={"from": "+4915100000009", "to": phone, "text": "hello"}
    )
    assert reply.json()["delivered"] is True
    banned = await client.post("/sim/v1/devices/dev-c/ban", json={"seconds": 30})
    assert banned.json()["banned"] is True
    dropped = await client.post("/sim/v1/devices/dev-c/drop", json={"seconds": 1})
    assert dropped.json()["connected"] is False
    assert_problem(await client.post("/sim/v1/devices/dev-c/drop"), 409, "not_connected")
    logged_out = await client.post("/sim/v1/devices/dev-c/logout")
    assert logged_out.json()["status"] == "unlinked"
    assert [type(f).__name__ for f in drain(conn)] == ["Inbound", "Banned", "Disconnected"]
