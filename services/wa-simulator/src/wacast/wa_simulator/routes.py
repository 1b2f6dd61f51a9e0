"""HTTP control API (`/sim/v1/...`) and the driver WebSocket (`/sim/v1/driver`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Request, WebSocket, delete, get, post, websocket
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath, FromQuery

from wacast.contracts.sim_protocol import Error, batch_decoder, driver_frame_decoder
from wacast.runtime.tasks import cancel_and_wait
from wacast.wa_simulator import metrics
from wacast.wa_simulator.connection import DriverConnection
from wacast.wa_simulator.errors import SimProblem, bad_request
from wacast.wa_simulator.network import Network

log = logging.getLogger(__name__)

B = TypeVar("B", bound=msgspec.Struct)
Seconds = Annotated[float, msgspec.Meta(ge=0, le=86_400 * 30)]


class ScanBody(msgspec.Struct, forbid_unknown_fields=True):
    phone: str | None = None


class EnterCodeBody(msgspec.Struct, forbid_unknown_fields=True):
    code: str
    phone: str | None = None


class DropBody(msgspec.Struct, forbid_unknown_fields=True):
    seconds: Seconds = 0.0
    """How long the device cannot reconnect (connect is refused as `unavailable`)."""


class BanBody(msgspec.Struct, forbid_unknown_fields=True):
    seconds: Annotated[float, msgspec.Meta(gt=0, le=86_400 * 30)] = 600.0
    reason: str = "manual"


MAX_INBOUND_TEXT = 65_536
"""Characters in one WhatsApp text message at most."""


class InboundBody(msgspec.Struct, forbid_unknown_fields=True):
    """A contact (`from`, E.164) writes `text` to the linked device with phone `to`."""

    sender: str = msgspec.field(name="from")
    to: str
    text: Annotated[str, msgspec.Meta(max_length=MAX_INBOUND_TEXT)]


class NoBody(msgspec.Struct, forbid_unknown_fields=True):
    pass


async def read_body(request: Request[Any, Any, Any], kind: type[B]) -> B:
    raw = await request.body()
    try:
        return msgspec.json.decode(raw or b"{}", type=kind)
    except msgspec.DecodeError as exc:
        raise bad_request("bad_body", f"the request body is not valid: {exc}") from None


def _limit(value: int, low: int, high: int, name: str) -> int:
    if not low <= value <= high:
        raise bad_request("bad_query", f"{name} must be between {low} and {high}")
    return value


def control_handlers(network: Network) -> list[BaseRouteHandler]:
    @get("/sim/v1/stats", sync_to_thread=False)
    def stats() -> dict[str, Any]:
        return network.stats()

    @get("/sim/v1/ledger", sync_to_thread=False)
    def ledger(
        device_id: FromQuery[str] = "", after: FromQuery[int] = 0, limit: FromQuery[int] = 1000
    ) -> dict[str, Any]:
        _limit(limit, 1, 100_000, "limit")
        _limit(after, 0, 1 << 62, "after")
        entries = network.ledger.select(device_id, after, limit)
        return {
            "entries": msgspec.to_builtins(entries),
            "next_after": entries[-1].seq if entries else after,
            "received": network.ledger.received,
        }

    @post("/sim/v1/reset", status_code=200)
    async def reset(request: Request[Any, Any, Any]) -> dict[str, Any]:
        await read_body(request, NoBody)
        network.reset()
        return {"status": "reset"}

    @get("/sim/v1/devices/{device_id:str}", sync_to_thread=False)
    def device(device_id: FromPath[str]) -> dict[str, Any]:
        return network.device(device_id).describe(network.clock())

    @post("/sim/v1/devices/{device_id:str}/scan", status_code=200)
    async def scan(device_id: FromPath[str], request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await read_body(request, ScanBody)
        return network.scan(device_id, body.phone).describe(network.clock())

    @post("/sim/v1/devices/{device_id:str}/enter-code", status_code=200)
    async def enter_code(
        device_id: FromPath[str], request: Request[Any, Any, Any]
    ) -> dict[str, Any]:
        body = await read_body(request, EnterCodeBody)
        device = network.enter_code(device_id, body.code, body.phone)
        return device.describe(network.clock())

    @post("/sim/v1/devices/{device_id:str}/drop", status_code=200)
    async def drop(device_id: FromPath[str], request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await read_body(request, DropBody)
        return network.drop(device_id, body.seconds).describe(network.clock())

    @post("/sim/v1/devices/{device_id:str}/logout", status_code=200)
    async def logout(device_id: FromPath[str], request: Request[Any, Any, Any]) -> dict[str, Any]:
        await read_body(request, NoBody)
        return network.remote_logout(device_id).describe(network.clock())

    @post("/sim/v1/devices/{device_id:str}/ban", status_code=200)
    async def ban(device_id: FromPath[str], request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await read_body(request, BanBody)
        return network.ban(device_id, body.seconds, body.reason).describe(network.clock())

    @post("/sim/v1/numbers/{phone:str}/absent", status_code=200, sync_to_thread=False)
    def absent(phone: FromPath[str]) -> dict[str, Any]:
        network.set_absent(phone, True)
        return {"phone": phone, "on_whatsapp": False}

    @delete("/sim/v1/numbers/{phone:str}/absent", status_code=200, sync_to_thread=False)
    def present(phone: FromPath[str]) -> dict[str, Any]:
        network.set_absent(phone, False)
        return {"phone": phone, "on_whatsapp": phone not in network.absent}

    @post("/sim/v1/inbound", status_code=200)
    async def inbound(request: Request[Any, Any, Any]) -> dict[str, Any]:
        body = await read_body(request, InboundBody)
        return network.inbound(body.sender, body.to, body.text)

    @websocket("/sim/v1/driver")
    async def driver(socket: WebSocket[Any, Any, Any]) -> None:
        await serve_driver(network, socket)

    return [
        stats,
        ledger,
        reset,
        device,
        scan,
        enter_code,
        drop,
        logout,
        ban,
        absent,
        present,
        inbound,
        driver,
    ]


async def serve_driver(network: Network, socket: WebSocket[Any, Any, Any]) -> None:
    """One driver connection: decode batches of frames, feed the network, write its outbox."""
    await socket.accept()
    conn = network.open_connection()
    metrics.DRIVER_CONNECTIONS.inc()
    writer = asyncio.create_task(_write_outbox(socket, conn))
    try:
        while not conn.closed:
            message = await socket.receive()
            if message["type"] != "websocket.receive":
                break
            data = message.get("bytes") or (message.get("text") or "").encode()
            try:
                raw_frames = batch_decoder.decode(data)
            except msgspec.DecodeError as exc:
                conn.push(Error(code="bad_frame", detail=f"not a JSON array of frames: {exc}"))
                continue
            for raw in raw_frames:
                try:
                    frame = driver_frame_decoder.decode(raw)
                except msgspec.DecodeError as exc:
                    conn.push(Error(code="bad_frame", detail=str(exc)))
                    continue
                try:
                    network.handle(conn, frame)
                except Exception:
                    log.exception("handling %s failed", type(frame).__name__)
                    conn.push(Error(req_id=frame.req_id, code="internal", detail="see logs"))
    except Exception:
        log.exception("driver connection %s failed", conn.conn_id)
    finally:
        network.close_connection(conn)
        metrics.DRIVER_CONNECTIONS.dec()
        conn.ready.set()
        await cancel_and_wait([writer])
        with contextlib.suppress(Exception):
            await socket.close(1008 if conn.overflowed else 1000)


async def _write_outbox(socket: WebSocket[Any, Any, Any], conn: DriverConnection) -> None:
    while True:
        await conn.ready.wait()
        conn.ready.clear()
        while (batch := conn.take_batch()) is not None:
            await socket.send_data(batch.decode(), mode="text")
        if conn.overflowed:
            log.warning("driver connection %s stopped reading; closing it", conn.conn_id)
            await socket.close(1008, "slow consumer")
            return
        if conn.closed:
            return


def problem_body(status: int, code: str, title: str, detail: str, instance: str) -> dict[str, Any]:
    return {
        "type": f"https://wacast.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": instance,
    }


TITLES = {400: "Bad request", 404: "Not found", 405: "Method not allowed", 409: "Conflict"}


def problem_for(exc: Exception) -> tuple[int, str, str]:
    """(status, code, detail) of any exception a request may raise."""
    from litestar.exceptions import HTTPException, ValidationException

    if isinstance(exc, SimProblem):
        return exc.status, exc.code, exc.detail
    if isinstance(exc, ValidationException):
        return 400, "bad_request", f"{exc.detail}: {exc.extra}" if exc.extra else exc.detail
    if isinstance(exc, HTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return exc.status_code, code, exc.detail
    return 500, "internal", "the simulator failed to handle this request"
