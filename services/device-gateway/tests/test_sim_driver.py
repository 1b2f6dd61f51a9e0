"""SimDriver against a real wa-simulator (uvicorn on 127.0.0.1, in this process).

Every wait is an awaited event with a deadline; nothing sleeps and hopes.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest

from wacast.device_gateway.drivers.base import DriverError, Inbound, Outbound, SendError
from wacast.device_gateway.drivers.sim import SimDriver
from wacast.runtime.embedded import free_port
from wacast.runtime.health import http_server
from wacast.wa_simulator.app import create_app
from wacast.wa_simulator.settings import Settings

TIMEOUT = 5.0
_ids = itertools.count(1)


def new_device() -> str:
    return f"dev-{next(_ids)}"


class SimServer:
    """The simulator on a free port; `restart()` keeps the port (and the session key)."""

    def __init__(self, **settings: Any) -> None:
        self.port = free_port()
        self.settings = Settings(sim_port=self.port, **settings)
        self.url = f"http://127.0.0.1:{self.port}"
        self._task: asyncio.Task[None] | None = None
        self._server: Any = None

    async def start(self) -> None:
        self._server = server = http_server(create_app(self.settings), "127.0.0.1", self.port)
        self._task = asyncio.create_task(server.serve())
        deadline = time.monotonic() + TIMEOUT
        while not server.started:
            assert time.monotonic() < deadline, "the simulator did not start"
            assert not self._task.done(), "the simulator failed to start"
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait_for(self._task, TIMEOUT)
            self._server = self._task = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.url) as client:
            response = await client.post(path, json=body or {})
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.url) as client:
            response = await client.get(path, params=params)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


class Recorder:
    """A DriverListener that records every call and lets tests await one."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self._changed = asyncio.Event()
        self.fail_on: set[str] = set()

    def _record(self, *event: Any) -> None:
        self.events.append(event)
        self._changed.set()
        if event[0] in self.fail_on:
            raise RuntimeError(f"listener fails on {event[0]}")

    async def wait(
        self, kind: str, device_id: str, where: Callable[[tuple[Any, ...]], bool] | None = None
    ) -> tuple[Any, ...]:
        """The first recorded `kind` event of the device (matching `where`), awaited."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            for event in self.events:
                if event[0] == kind and event[1] == device_id and (where is None or where(event)):
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no {kind} for {device_id}; got {self.of(device_id)}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue

    async def wait_count(self, kind: str, device_id: str, count: int) -> None:
        deadline = time.monotonic() + TIMEOUT
        while sum(1 for e in self.events if e[0] == kind and e[1] == device_id) < count:
            assert time.monotonic() < deadline, f"fewer than {count} {kind}: {self.of(device_id)}"
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                continue

    def of(self, device_id: str) -> list[str]:
        return [e[0] for e in self.events if e[1] == device_id]

    async def on_qr(self, device_id: str, code: str) -> None:
        self._record("qr", device_id, code)

    async def on_paired(self, device_id: str, phone: str, jid: str) -> None:
        self._record("paired", device_id, phone, jid)

    async def on_session(self, device_id: str, session: bytes) -> None:
        self._record("session", device_id, session)

    async def on_connected(self, device_id: str) -> None:
        self._record("connected", device_id)

    async def on_disconnected(self, device_id: str, reason: str) -> None:
        self._record("disconnected", device_id, reason)

    async def on_logged_out(self, device_id: str, reason: str) -> None:
        self._record("logged_out", device_id, reason)

    async def on_banned(self, device_id: str, until: datetime | None, reason: str) -> None:
        self._record("banned", device_id, until, reason)

    async def on_receipt(self, device_id: str, wa_message_id: str, kind: str, at: datetime) -> None:
        self._record("receipt", device_id, wa_message_id, kind, at)

    async def on_inbound(self, device_id: str, message: Inbound) -> None:
        self._record("inbound", device_id, message)


@pytest.fixture(scope="module")
async def sim() -> AsyncIterator[SimServer]:
    server = SimServer(sim_profile="bench", sim_pair_delay=0.0, sim_seed=11)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def driver(sim: SimServer) -> AsyncIterator[tuple[SimDriver, Recorder]]:
    recorder = Recorder()
    drv = SimDriver(sim.url, request_timeout=TIMEOUT, backoff_min=0.05, backoff_max=0.5, seed=5)
    await drv.start(recorder)
    yield drv, recorder
    await drv.close()


async def link(sim: SimServer, drv: SimDriver, rec: Recorder, phone: str | None = None) -> str:
    device_id = new_device()
    await drv.pair_qr(device_id)
    await rec.wait("qr", device_id)
    await sim.post(f"/sim/v1/devices/{device_id}/scan", {"phone": phone} if phone else {})
    await rec.wait("connected", device_id)
    return device_id


async def test_pairing_by_qr_reports_qr_then_paired_session_and_connected(
    sim: SimServer, driver: tuple[SimDriver, Recorder]
) -> None:
    drv, rec = driver
    device_id = new_device()
    await drv.pair_qr(device_id)
    qr = await rec.wait("qr", device_id)
    assert qr[2].startswith("2@")
    await sim.post(f"/sim/v1/devices/{device_id}/scan", {"phone": "+4917700000101"})
    await rec.wait("connected", device_id)
    assert rec.of(device_id) == ["qr", "paired", "session", "connected"]
    paired = await rec.wait("paired", device_id)
    assert paired[2:] == ("+4917700000101", "4917700000101@s.whatsapp.net")
    session = (await rec.wait("session", device_id))[2]
    assert isinstance(session, bytes)
    assert session
    with pytest.raises(DriverError) as again:
        await drv.pair_qr(device_id)
    assert again.value.code == "already_linked"


async def test_pairing_by_code(sim: SimServer, driver: tuple[SimDriver, Recorder]) -> None:
    drv, rec = driver
    device_id = new_device()
    with pytest.raises(DriverError) as bad:
        await drv.pair_code(device_id, "0176 1234")
    assert bad.value.code == "bad_phone"
    code = await drv.pair_code(device_id, "+4917700000102")
    assert len(code.replace("-", "")) == 8
    await sim.post(f"/sim/v1/devices/{device_id}/enter-code", {"code": code})
    paired = await rec.wait("paired", device_id)
    assert paired[2] == "+4917700000102"
    await rec.wait("connected", device_id)


async def test_a_send_returns_a_whatsapp_id_and_receipts_follow(
    sim: SimServer, driver: tuple[SimDriver, Recorder]
) -> None:
    drv, rec = driver
    device_id = await link(sim, drv, rec)
    sent = await drv.send(
        device_id,
        Outbound(to="+4915100000201", text="hello", origin_message_id="o-1", campaign_id="c-1"),
    )
    assert sent.wa_message_id.startswith("3EB0")
    delivered = await rec.wait("receipt", device_id, lambda e: e[3] == "delivered")
    read = await rec.wait("receipt", device_id, lambda e: e[3] == "read")
    assert delivered[2] == read[2] == sent.wa_message_id
    image = b"\x89PNG fake image bytes"
    await drv.send(
        device_id,
        Outbound(
            to="+4915100000201", text="look", media=image, media_kind="image",
            mime="image/png", filename="a.png", origin_message_id="o-2",
        ),
    )  # fmt: skip
    entries = (await sim.get("/sim/v1/ledger", device_id=device_id))["entries"]
    assert [(e["kind"], e["origin_message_id"]) for e in entries] == [
        ("text", "o-1"),
        ("image", "o-2"),
    ]
    assert entries[1]["media_len"] == len(image)
    assert entries[1]["media_sha256"] == hashlib.sha256(image).hexdigest()


async def test_a_number_not_on_whatsapp_fails_for_good(
    sim: SimServer, driver: tuple[SimDriver, Recorder]
) -> None:
    drv, rec = driver
    device_id = await link(sim, drv, rec)
    with pytest.raises(SendError) as exc:
        await drv.send(device_id, Outbound(to="+4915100000000", text="hello"))
    assert (exc.value.reason, exc.value.retryable, exc.value.accepted) == (
        "not_on_whatsapp",
        False,
        False,
    )


async def test_a_dropped_session_reconnects_by_itself(
    sim: SimServer, driver: tuple[SimDriver, Recorder]
) -> None:
    drv, rec = driver
    device_id = await link(sim, drv, rec)
    await sim.post(f"/sim/v1/devices/{device_id}/drop")
    await rec.wait("disconnected", device_id, lambda e: e[2] == "connection_lost")
    await rec.wait_count("connected", device_id, 2)
    # an outage: connect is refused as unavailable until it ends, the driver keeps trying
    started = time.monotonic()
    await sim.post(f"/sim/v1/devices/{device_id}/drop", {"seconds": 0.3})
    await rec.wait_count("connected", device_id, 3)
    assert time.monotonic() - started >= 0.3
    assert device_id in drv.connected_devices
    await drv.send(device_id, Outbound(to="+4915100000202", text="still here"))


async def test_a_remote_logout_is_reported_and_voids_the_session(
    sim: SimServer, driver: tuple[SimDriver, Recorder]
) -> None:
    drv, rec = driver
    device_id = await link(sim, drv, rec)
    session = (await rec.wait("session", device_id))[2]
    await sim.post(f"/sim/v1/devices/{device_id}/logout")
    logged_out = await rec.wait("logged_out", device_id)
    assert logged_out[2] == "remote_logout"
    with pytest.raises(DriverError) as exc:
        await drv.connect(device_id, session)
    assert exc.value.code == "logged_out"
    with pytest.raises(DriverError) as none:
        await drv.connect(device_id, None)
    assert none.value.code == "no_session"


async def test_a_ban_is_reported_and_refuses_sends(
    sim: SimServer, driver: tuple[SimDriver, Recorder]
) -> None:
    drv, rec = driver
    device_id = await link(sim, drv, rec)
    await sim.post(f"/sim/v1/devices/{device_id}/ban", {"seconds": 60})
    banned = await rec.wait("banned", device_id)
    assert isinstance(banned[2], datetime)
    with pytest.raises(SendError) as exc:
        await drv.send(device_id, Outbound(to="+4915100000203", text="x"))
    assert (exc.value.reason, exc.value.retryable, exc.value.accepted) == ("banned", True, False)


async def test_stored_sessions_connect_a_new_driver_and_inbound_messages_arrive(
    sim: SimServer, driver: tuple[SimDriver, Recorder]
) -> None:
    drv, rec = driver
    device_id = await link(sim, drv, rec, phone="+4917700000103")
    session = (await rec.wait("session", device_id))[2]
    await drv.disconnect(device_id)
    await rec.wait("disconnected", device_id, lambda e: e[2] == "requested")
    second, rec2 = SimDriver(sim.url, request_timeout=TIMEOUT), Recorder()
    await second.start(rec2)
    try:
        await second.connect(device_id, session)
        await rec2.wait("connected", device_id)
        await second.typing(device_id, "+4915100000204", 0.01)
        await sim.post(
            "/sim/v1/inbound", {"from": "+4915100000204", "to": "+4917700000103", "text": "hi"}
        )
        message = (await rec2.wait("inbound", device_id))[2]
        assert (message.sender, message.text) == ("+4915100000204", "hi")
    finally:
        await second.close()


async def test_a_failing_listener_does_not_stop_the_driver(
    sim: SimServer, driver: tuple[SimDriver, Recorder]
) -> None:
    drv, rec = driver
    rec.fail_on = {"qr", "paired"}
    device_id = await link(sim, drv, rec)
    assert rec.of(device_id) == ["qr", "paired", "session", "connected"]


async def test_the_socket_comes_back_after_the_simulator_restarts() -> None:
    sim = SimServer(sim_profile="bench", sim_pair_delay=0.0)
    await sim.start()
    rec = Recorder()
    drv = SimDriver(sim.url, request_timeout=TIMEOUT, backoff_min=0.05, backoff_max=0.2)
    await drv.start(rec)
    try:
        devices = [await link(sim, drv, rec) for _ in range(3)]
        await sim.restart()  # a new process in all but name: it remembers nothing
        for device_id in devices:
            await rec.wait("disconnected", device_id, lambda e: e[2] == "driver_connection_lost")
        for device_id in devices:
            await rec.wait_count("connected", device_id, 2)
        assert drv.socket_connects == 2
        stats = await sim.get("/sim/v1/stats")
        assert stats["devices_connected"] == 3
        sent = await drv.send(devices[0], Outbound(to="+4915100000205", text="after restart"))
        assert sent.wa_message_id
    finally:
        await drv.close()
        await sim.stop()


async def test_a_send_without_an_answer_is_an_unknown_outcome() -> None:
    sim = SimServer(
        sim_profile="realistic",
        sim_pair_delay=0.0,
        sim_send_latency=30.0,
        sim_transient_error_rate=0.0,
        sim_ban_min_gap=0.0,
    )
    await sim.start()
    rec = Recorder()
    drv = SimDriver(sim.url, request_timeout=TIMEOUT, send_timeout=0.2)
    await drv.start(rec)
    try:
        device_id = await link(sim, drv, rec)
        with pytest.raises(SendError) as exc:
            await drv.send(device_id, Outbound(to="+4915100000206", text="lost?"))
        assert (exc.value.reason, exc.value.retryable, exc.value.accepted) == (
            "timeout",
            False,
            None,
        )
        stats = await sim.get("/sim/v1/stats")
        assert stats["received"] == 1  # WhatsApp did take it: never resend
    finally:
        await drv.close()
        await sim.stop()


async def test_commands_while_the_simulator_is_unreachable() -> None:
    port = free_port()
    rec = Recorder()
    drv = SimDriver(f"ws://127.0.0.1:{port}", start_timeout=0.2, backoff_min=0.05)
    await drv.start(rec)  # returns after start_timeout; keeps trying in the background
    try:
        with pytest.raises(SendError) as exc:
            await drv.send("dev-x", Outbound(to="+4915100000207", text="x"))
        assert (exc.value.retryable, exc.value.accepted) == (True, False)
        with pytest.raises(DriverError) as pair:
            await drv.pair_qr("dev-x")
        assert pair.value.code == "unavailable"
        await drv.connect("dev-x", b"token")  # remembered; connected when the socket is up
    finally:
        await drv.close()
