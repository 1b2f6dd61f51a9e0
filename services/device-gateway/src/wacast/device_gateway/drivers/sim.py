"""The `sim` driver: every device of this gateway over ONE WebSocket to the wa-simulator.

Frames are msgspec JSON (services/wa-simulator/PROTOCOL.md); each WebSocket message is a
JSON array of frames, so thousands of devices share a connection cheaply. Commands carry a
`req_id`; their replies resolve futures. Network events become `DriverListener` calls,
made in order by one dispatcher task, each guarded so one failing callback is only logged.

The socket reconnects by itself with exponential backoff and jitter. While it is down,
every connected device is reported disconnected; when it is back, every device the gateway
wants online is connected again from its session. A device the simulator drops
(`connection_lost`) is reconnected the same way, device by device. A send whose reply
never comes is an unknown outcome (`accepted=None`): the caller must never resend it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from wacast.contracts import sim_protocol as wire
from wacast.device_gateway.drivers.base import (
    DriverError,
    DriverListener,
    Inbound,
    Outbound,
    SendError,
    Sent,
)
from wacast.runtime.tasks import cancel_and_wait

log = logging.getLogger(__name__)

DRIVER_PATH = "/sim/v1/driver"
MAX_BATCH = 2_000
MAX_BATCH_BYTES = 1 << 20
MAX_MESSAGE = 64 << 20

Reply = wire.Ok | wire.Error | wire.PairCodeIssued | wire.SendResult

# ---- the socket ---------------------------------------------------------------------------


def driver_url(url: str) -> str:
    """`ws://host:port` or `http://host:port` (the simulator's base URL) -> the driver URL."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise ValueError(f"unsupported URL scheme in {url!r} (use ws:// or http://)")
    path = parts.path if parts.path not in ("", "/") else DRIVER_PATH
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


async def open_socket(url: str, timeout: float) -> ClientConnection:
    return await ws_connect(
        url,
        compression=None,  # loopback or a LAN: compressing costs more than it saves
        proxy=None,
        open_timeout=timeout,
        max_size=MAX_MESSAGE,
        max_queue=64,
        ping_interval=20,
        ping_timeout=20,
        close_timeout=2,
    )


# ---- the driver ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[Reply]
    device_id: str
    is_send: bool
    written: bool = False


@dataclass(slots=True)
class _Retry:
    attempt: int = 0
    handle: asyncio.TimerHandle | None = field(default=None)


class SimDriver:
    """`Driver` over the wa-simulator's multiplexed WebSocket protocol."""

    name = "sim"

    def __init__(
        self,
        url: str,
        *,
        request_timeout: float = 10.0,
        send_timeout: float = 30.0,
        start_timeout: float = 5.0,
        backoff_min: float = 0.1,
        backoff_max: float = 10.0,
        seed: int | None = None,
    ) -> None:
        self.url = driver_url(url)
        self.request_timeout = request_timeout
        self.send_timeout = send_timeout
        self.start_timeout = start_timeout
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self._rng = random.Random(seed)
        self._listener: DriverListener | None = None
        self._ws: ClientConnection | None = None
        self._up = asyncio.Event()
        self._closing = False
        self._req_ids = itertools.count(1)
        self._pending: dict[str, _Pending] = {}
        self._outbox: list[tuple[str, bytes]] = []
        self._outbox_ready = asyncio.Event()
        self._events: asyncio.Queue[tuple[str, tuple[Any, ...]]] = asyncio.Queue()
        self._online: dict[str, str] = {}
        """Devices the gateway wants connected -> their session token."""
        self._connected: set[str] = set()
        self._pairing: set[str] = set()
        self._retries: dict[str, _Retry] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.socket_connects = 0
        """How many times the WebSocket was (re)opened: tests and benchmarks read it."""

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self, listener: DriverListener) -> None:
        """Open the WebSocket (waits up to `start_timeout` for the first connection; if
        the simulator is not there yet, keeps trying in the background)."""
        self._listener = listener
        self._closing = False
        self._tasks = [
            asyncio.create_task(self._dispatch(), name="sim-driver-dispatch"),
            asyncio.create_task(self._run(), name="sim-driver-socket"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._up.wait(), self.start_timeout)

    async def close(self) -> None:
        self._closing = True
        for retry in self._retries.values():
            if retry.handle is not None:
                retry.handle.cancel()
        self._retries.clear()
        ws = self._ws
        if ws is not None:
            await ws.close()
        await cancel_and_wait(self._tasks)
        self._tasks = []
        self._fail_pending()

    @property
    def connected_devices(self) -> frozenset[str]:
        return frozenset(self._connected)

    # ---- Driver commands ------------------------------------------------------------------

    async def connect(self, device_id: str, session: bytes | None) -> None:
        """Bring a device online. Transient trouble (simulator unreachable, device cannot
        reach WhatsApp for now) is retried in the background and reported through the
        listener; only a void session raises (`DriverError` `logged_out`/`bad_session`)."""
        if not session:
            raise DriverError("no_session", f"{device_id} has no stored session; pair it first")
        token = session.decode()
        if device_id in self._connected and self._online.get(device_id) == token:
            return
        self._online[device_id] = token
        self._cancel_retry(device_id)
        if not self._up.is_set():
            return
        try:
            await self._request(wire.Connect(device_id=device_id, session=token), device_id)
        except DriverError as exc:
            if exc.code in ("logged_out", "bad_session"):
                self._forget(device_id)
                raise
            self._schedule_reconnect(device_id)

    async def pair_qr(self, device_id: str) -> None:
        await self._request(wire.PairQr(device_id=device_id), device_id)
        self._pairing.add(device_id)

    async def pair_code(self, device_id: str, phone: str) -> str:
        reply = await self._request(wire.PairCode(device_id=device_id, phone=phone), device_id)
        self._pairing.add(device_id)
        if not isinstance(reply, wire.PairCodeIssued):
            raise DriverError("protocol", f"unexpected reply {type(reply).__name__}")
        return reply.code

    async def typing(self, device_id: str, to: str, seconds: float) -> None:
        await self._request(wire.Typing(device_id=device_id, to=to, seconds=seconds), device_id)
        if seconds > 0:
            await asyncio.sleep(seconds)

    async def send(self, device_id: str, message: Outbound) -> Sent:
        media = message.media
        frame = wire.Send(
            device_id=device_id,
            to=message.to,
            text=message.text,
            media_kind=message.media_kind if media is not None else None,
            media_len=len(media) if media is not None else 0,
            media_sha256=hashlib.sha256(media).hexdigest() if media is not None else "",
            mime=message.mime,
            filename=message.filename,
            origin_message_id=message.origin_message_id,
            campaign_id=message.campaign_id,
        )
        if not self._up.is_set():
            raise SendError("not_connected", retryable=True, accepted=False, detail="no socket")
        req_id, pending = self._submit(frame, device_id, is_send=True)
        try:
            reply = await asyncio.wait_for(pending.future, self.send_timeout)
        except TimeoutError:
            self._pending.pop(req_id, None)
            if not pending.written:
                self._unqueue(req_id)
                raise SendError(
                    "not_connected", retryable=True, accepted=False, detail="never written"
                ) from None
            raise SendError(
                "timeout", retryable=False, accepted=None, detail="no result from WhatsApp"
            ) from None
        if not isinstance(reply, wire.SendResult):
            detail = reply.detail if isinstance(reply, wire.Error) else type(reply).__name__
            raise SendError("protocol", retryable=False, accepted=None, detail=detail)
        if not reply.ok:
            raise SendError(reply.reason, retryable=reply.retryable, accepted=reply.accepted)
        return Sent(wa_message_id=reply.wa_message_id, at=reply.at or datetime.now(UTC))

    async def disconnect(self, device_id: str) -> None:
        self._forget(device_id)
        if self._up.is_set():
            await self._request(wire.Disconnect(device_id=device_id), device_id)

    async def logout(self, device_id: str) -> None:
        self._forget(device_id)
        await self._request(wire.Logout(device_id=device_id), device_id)

    # ---- requests -----------------------------------------------------------------------

    def _submit(
        self, frame: wire.Command, device_id: str, *, is_send: bool
    ) -> tuple[str, _Pending]:
        req_id = str(next(self._req_ids))
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        pending = _Pending(future, device_id, is_send)
        self._pending[req_id] = pending
        self._outbox.append(
            (req_id, wire.encoder.encode(msgspec.structs.replace(frame, req_id=req_id)))
        )
        self._outbox_ready.set()
        return req_id, pending

    def _unqueue(self, req_id: str) -> None:
        self._outbox = [(r, data) for r, data in self._outbox if r != req_id]

    async def _request(self, frame: wire.Command, device_id: str) -> Reply:
        if not self._up.is_set():
            raise DriverError("unavailable", "the simulator is not reachable")
        req_id, pending = self._submit(frame, device_id, is_send=False)
        try:
            reply = await asyncio.wait_for(pending.future, self.request_timeout)
        except TimeoutError:
            self._pending.pop(req_id, None)
            self._unqueue(req_id)
            raise DriverError("timeout", "the simulator did not answer in time") from None
        if isinstance(reply, wire.Error):
            raise DriverError(reply.code, reply.detail)
        return reply

    # ---- the socket ---------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        base = min(self.backoff_max, self.backoff_min * 2.0 ** max(0, attempt - 1))
        return base * self._rng.uniform(0.5, 1.0)

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            try:
                ws = await open_socket(self.url, self.request_timeout)
            except InvalidURI:
                raise
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                attempt += 1
                delay = self._backoff(attempt)
                log.info("simulator unreachable (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            attempt = 0
            self.socket_connects += 1
            self._ws = ws
            self._outbox = [(r, d) for r, d in self._outbox if r in self._pending]
            self._up.set()
            writer = asyncio.create_task(self._write(ws), name="sim-driver-writer")
            for device_id in list(self._online):
                if device_id not in self._connected:
                    self._reconnect_device(device_id)
            try:
                await self._read(ws)
            finally:
                self._up.clear()
                self._ws = None
                await cancel_and_wait([writer])
                await ws.close()
                self._socket_lost()
            if not self._closing:
                attempt += 1
                await asyncio.sleep(self._backoff(attempt))

    async def _write(self, ws: ClientConnection) -> None:
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            while self._outbox:
                batch = self._take_batch()
                await ws.send(b"[" + b",".join(data for _, data in batch) + b"]", text=True)
                for req_id, _ in batch:
                    pending = self._pending.get(req_id)
                    if pending is not None:
                        pending.written = True

    def _take_batch(self) -> list[tuple[str, bytes]]:
        size = count = 0
        for _, data in self._outbox:
            if count and (count >= MAX_BATCH or size + len(data) > MAX_BATCH_BYTES):
                break
            size += len(data) + 1
            count += 1
        batch, self._outbox = self._outbox[:count], self._outbox[count:]
        return batch

    async def _read(self, ws: ClientConnection) -> None:
        while True:
            try:
                data = await ws.recv(decode=False)
            except ConnectionClosed as exc:
                if not self._closing:
                    log.warning("simulator connection lost: %s", exc)
                return
            try:
                raw_frames = wire.batch_decoder.decode(data)
            except msgspec.DecodeError as exc:
                log.error("undecodable message from the simulator: %s", exc)
                continue
            for raw in raw_frames:
                try:
                    frame = wire.sim_frame_decoder.decode(raw)
                except msgspec.DecodeError as exc:
                    log.warning("skipped a frame from the simulator: %s", exc)
                    continue
                try:
                    self._on_frame(frame)
                except Exception:
                    log.exception("handling %s failed", type(frame).__name__)

    def _socket_lost(self) -> None:
        self._fail_pending()
        for retry in self._retries.values():
            if retry.handle is not None:
                retry.handle.cancel()
        self._retries.clear()
        lost = sorted(self._connected | self._pairing)
        self._connected.clear()
        self._pairing.clear()
        if not self._closing:
            for device_id in lost:
                self._emit("on_disconnected", device_id, "driver_connection_lost")

    def _fail_pending(self) -> None:
        pending, self._pending = self._pending, {}
        self._outbox = []
        for entry in pending.values():
            if entry.future.done():
                continue
            if entry.is_send:
                if entry.written:
                    error = SendError(
                        "connection_lost", retryable=False, accepted=None, detail="outcome unknown"
                    )
                else:
                    error = SendError("not_connected", retryable=True, accepted=False)
                entry.future.set_exception(error)
            else:
                entry.future.set_exception(DriverError("unavailable", "simulator connection lost"))
            entry.future.exception()  # retrieved: nobody may be awaiting it any more

    # ---- per-device reconnects ------------------------------------------------------------

    def _reconnect_device(self, device_id: str) -> None:
        retry = self._retries.get(device_id)
        if retry is not None:
            retry.handle = None
        token = self._online.get(device_id)
        if token is None or not self._up.is_set() or device_id in self._connected:
            return
        _, pending = self._submit(
            wire.Connect(device_id=device_id, session=token), device_id, is_send=False
        )
        pending.future.add_done_callback(lambda f: self._reconnect_done(device_id, f))

    def _reconnect_done(self, device_id: str, future: asyncio.Future[Reply]) -> None:
        if future.cancelled() or future.exception() is not None:
            return  # the socket went away; its reconnect connects the device again
        reply = future.result()
        if not isinstance(reply, wire.Error):
            self._retries.pop(device_id, None)
            return
        if reply.code == "logged_out":
            self._forget(device_id)  # the simulator sent logged_out itself
        elif reply.code == "bad_session":
            self._forget(device_id)
            self._emit("on_logged_out", device_id, "bad_session")
        else:
            self._schedule_reconnect(device_id)

    def _schedule_reconnect(self, device_id: str) -> None:
        if device_id not in self._online or self._closing:
            return
        retry = self._retries.setdefault(device_id, _Retry())
        if retry.handle is not None:
            return
        retry.attempt += 1
        delay = self._backoff(retry.attempt)
        retry.handle = asyncio.get_running_loop().call_later(
            delay, self._reconnect_device, device_id
        )

    def _cancel_retry(self, device_id: str) -> None:
        retry = self._retries.pop(device_id, None)
        if retry is not None and retry.handle is not None:
            retry.handle.cancel()

    def _forget(self, device_id: str) -> None:
        self._online.pop(device_id, None)
        self._pairing.discard(device_id)
        self._cancel_retry(device_id)

    # ---- events -------------------------------------------------------------------------

    def _on_frame(self, frame: wire.SimFrame) -> None:
        if (
            isinstance(frame, wire.Ok | wire.Error | wire.PairCodeIssued | wire.SendResult)
            and frame.req_id
        ):
            pending = self._pending.pop(frame.req_id, None)
            if pending is not None and not pending.future.done():
                pending.future.set_result(frame)
            return
        match frame:
            case wire.Error():
                log.warning("simulator error %s: %s", frame.code, frame.detail)
            case wire.Qr():
                self._emit("on_qr", frame.device_id, frame.code)
            case wire.Paired():
                self._pairing.discard(frame.device_id)
                self._online[frame.device_id] = frame.session
                self._emit("on_paired", frame.device_id, frame.phone, frame.jid)
                self._emit("on_session", frame.device_id, frame.session.encode())
            case wire.Connected():
                self._connected.add(frame.device_id)
                self._retries.pop(frame.device_id, None)
                self._emit("on_connected", frame.device_id)
            case wire.Disconnected():
                self._device_offline(frame.device_id)
                self._emit("on_disconnected", frame.device_id, frame.reason)
                if frame.reason == "connection_lost":
                    self._schedule_reconnect(frame.device_id)
                elif frame.reason == "replaced":
                    self._forget(frame.device_id)
            case wire.LoggedOut():
                self._device_offline(frame.device_id)
                self._forget(frame.device_id)
                self._emit("on_logged_out", frame.device_id, frame.reason)
            case wire.Banned():
                self._emit("on_banned", frame.device_id, frame.until, frame.reason)
            case wire.Receipt():
                self._emit("on_receipt", frame.device_id, frame.wa_message_id, frame.kind, frame.at)
            case wire.Inbound():
                message = Inbound(
                    wa_message_id=frame.wa_message_id, sender=frame.sender, text=frame.text,
                    at=frame.at,
                )  # fmt: skip
                self._emit("on_inbound", frame.device_id, message)
            case _:
                log.debug("ignored frame %s", type(frame).__name__)

    def _device_offline(self, device_id: str) -> None:
        """The device's session ended: its sends in flight have an unknown outcome now."""
        self._connected.discard(device_id)
        self._pairing.discard(device_id)
        for req_id, pending in list(self._pending.items()):
            if pending.is_send and pending.device_id == device_id and not pending.future.done():
                del self._pending[req_id]
                pending.future.set_exception(
                    SendError(
                        "connection_lost", retryable=False, accepted=None, detail="session dropped"
                    )
                )
                pending.future.exception()

    def _emit(self, callback: str, *args: Any) -> None:
        self._events.put_nowait((callback, args))

    async def _dispatch(self) -> None:
        while True:
            name, args = await self._events.get()
            listener = self._listener
            if listener is None:
                continue
            method: Callable[..., Awaitable[None]] = getattr(listener, name)
            try:
                await method(*args)
            except Exception:
                log.exception("listener %s(%s) failed", name, args[0] if args else "")
