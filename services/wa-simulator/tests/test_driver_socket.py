"""The driver WebSocket on a real uvicorn server: batching and bad frames."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from wacast.runtime.embedded import free_port
from wacast.runtime.health import http_server
from wacast.wa_simulator.app import create_app
from wacast.wa_simulator.settings import Settings


@pytest.fixture
async def socket() -> AsyncIterator[ClientConnection]:
    port = free_port()
    settings = Settings(sim_port=port, sim_profile="bench", sim_pair_delay=0.0)
    server = http_server(create_app(settings), "127.0.0.1", port)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 5
    while not server.started:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    async with connect(f"ws://127.0.0.1:{port}/sim/v1/driver", proxy=None) as ws:
        yield ws
    server.should_exit = True
    await asyncio.wait_for(task, 5)


async def frames(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    while len(received) < count:
        received.extend(json.loads(await asyncio.wait_for(ws.recv(), 5)))
    return received


async def test_one_bad_frame_spoils_only_itself(socket: ClientConnection) -> None:
    await socket.send(
        json.dumps(
            [
                {"type": "pair_qr", "req_id": "1", "device_id": "d1"},
                {"type": "teleport", "req_id": "2"},
                {"type": "pair_code", "req_id": "3", "device_id": "d2"},
                {"type": "pair_code", "req_id": "4", "device_id": "d2", "phone": "+4917700000001"},
            ]
        )
    )
    got = await frames(socket, 5)
    assert [(f["type"], f.get("req_id")) for f in got] == [
        ("qr", None),
        ("ok", "1"),
        ("error", None),
        ("error", None),
        ("pair_code", "4"),
    ]
    assert {f["code"] for f in got if f["type"] == "error"} == {"bad_frame"}


async def test_a_message_that_is_not_a_batch_gets_an_error_and_the_socket_stays(
    socket: ClientConnection,
) -> None:
    await socket.send(b'{"type": "pair_qr"}')
    (error,) = await frames(socket, 1)
    assert (error["type"], error["code"]) == ("error", "bad_frame")
    await socket.send(json.dumps([{"type": "typing", "req_id": "t", "device_id": "x", "to": "+1"}]))
    (reply,) = await frames(socket, 1)
    assert (reply["type"], reply["code"], reply["req_id"]) == ("error", "not_connected", "t")
