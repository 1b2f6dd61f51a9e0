"""A small RFC 6455 WebSocket protocol for uvicorn, so the simulator needs no extra package.

uvicorn serves WebSockets only with `websockets` or `wsproto` installed, and the workspace
locks neither. uvicorn accepts a protocol class as `ws=`: its HTTP protocol hands the
upgrade request to this class, which does the handshake, frames messages and speaks ASGI
`websocket.*` to the app (Litestar). Enough of RFC 6455 for the driver protocol: text and
binary messages, fragmentation, ping/pong, close; no extensions (no compression) and no
subprotocols. If `websockets` joins the lock, `ws="auto"` can replace it unchanged.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import struct
from typing import Any, cast
from urllib.parse import unquote

from uvicorn.config import Config
from uvicorn.server import ServerState

log = logging.getLogger(__name__)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_HEAD = 16 * 1024
QUEUE_HIGH = 256
"""Received messages waiting for the app before reading from the socket pauses."""


def accept_key(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + GUID).digest())  # RFC 6455 asks for SHA-1


def mask_payload(data: bytes, mask: bytes) -> bytes:
    """XOR `data` with the repeated 4-byte `mask` (one big-int operation, not a byte loop)."""
    size = len(data)
    if not size:
        return data
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(size, "little")


def encode_frame(opcode: int, payload: bytes, mask: bytes | None = None) -> bytes:
    size = len(payload)
    first = 0x80 | opcode
    mask_bit = 0x80 if mask is not None else 0
    if size < 126:
        head = struct.pack("!BB", first, mask_bit | size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, size)
    if mask is None:
        return head + payload
    return head + mask + mask_payload(payload, mask)


class FrameError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class FrameReader:
    """Incremental frame parser: feed bytes, take (opcode, payload) of complete frames."""

    def __init__(self, *, expect_masked: bool, max_size: int) -> None:
        self.buffer = bytearray()
        self.expect_masked = expect_masked
        self.max_size = max_size

    def feed(self, data: bytes) -> None:
        self.buffer += data

    def frames(self) -> list[tuple[bool, int, bytes]]:
        out: list[tuple[bool, int, bytes]] = []
        buf = self.buffer
        pos = 0
        while len(buf) - pos >= 2:
            first, second = buf[pos], buf[pos + 1]
            if first & 0x70:
                raise FrameError(1002, "reserved bits set (no extension was negotiated)")
            masked = bool(second & 0x80)
            if masked != self.expect_masked:
                raise FrameError(1002, "frame masking is wrong for this side")
            size = second & 0x7F
            head = 2
            if size == 126:
                if len(buf) - pos < 4:
                    break
                size = struct.unpack_from("!H", buf, pos + 2)[0]
                head = 4
            elif size == 127:
                if len(buf) - pos < 10:
                    break
                size = struct.unpack_from("!Q", buf, pos + 2)[0]
                head = 10
            if size > self.max_size:
                raise FrameError(1009, "frame too large")
            if masked:
                head += 4
            if len(buf) - pos < head + size:
                break
            payload = bytes(buf[pos + head : pos + head + size])
            if masked:
                payload = mask_payload(payload, bytes(buf[pos + head - 4 : pos + head]))
            out.append((bool(first & 0x80), first & 0x0F, payload))
            pos += head + size
        if pos:
            del buf[:pos]
        return out


class MessageAssembler:
    """Joins fragments into messages; answers what each control frame asks for."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.opcode: int | None = None
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, fin: bool, opcode: int, payload: bytes) -> tuple[int, bytes] | None:
        """A complete (opcode, payload) data message, or None while fragments are pending."""
        if opcode == OP_CONT:
            if self.opcode is None:
                raise FrameError(1002, "continuation without a message")
        elif self.opcode is not None:
            raise FrameError(1002, "new message before the last one ended")
        else:
            self.opcode = opcode
        self.size += len(payload)
        if self.size > self.max_size:
            raise FrameError(1009, "message too large")
        self.parts.append(payload)
        if not fin:
            return None
        message = (self.opcode, b"".join(self.parts))
        self.opcode, self.parts, self.size = None, [], 0
        return message


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()[:120]


def parse_close(payload: bytes) -> tuple[int, str]:
    if len(payload) >= 2:
        return struct.unpack_from("!H", payload)[0], payload[2:].decode(errors="replace")
    return 1005, ""


class WebSocketProtocol(asyncio.Protocol):
    """uvicorn's `ws=` protocol: one per upgraded connection."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.app = config.loaded_app
        self.app_state = app_state
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.transport: asyncio.Transport | None = None
        self.head = bytearray()
        self.upgraded = False
        self.accepted = False
        self.close_sent = False
        self.disconnected = False
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.read_paused = False
        self.writable = asyncio.Event()
        self.writable.set()
        self.reader = FrameReader(expect_masked=True, max_size=config.ws_max_size)
        self.assembler = MessageAssembler(config.ws_max_size)
        self.ws_key = b""
        self.scope: dict[str, Any] = {}

    # ---- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.connections.add(cast(Any, self))

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(cast(Any, self))
        if not self.disconnected:
            self.disconnected = True
            self.queue.put_nowait({"type": "websocket.disconnect", "code": 1006})
        self.writable.set()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def data_received(self, data: bytes) -> None:
        if not self.upgraded:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                if len(self.head) > MAX_HEAD:
                    self._http_error(431, "request head too large")
                return
            rest = bytes(self.head[end + 4 :])
            self._handle_upgrade(bytes(self.head[:end]))
            if not rest:
                return
            data = rest
        if self.disconnected:
            return
        self.reader.feed(data)
        try:
            for fin, opcode, payload in self.reader.frames():
                self._handle_frame(fin, opcode, payload)
        except FrameError as exc:
            self._fail(exc.code, exc.reason)

    def shutdown(self) -> None:
        """uvicorn is stopping: say goodbye with 1012 (service restart)."""
        if self.accepted and not self.close_sent:
            self._write(encode_frame(OP_CLOSE, close_payload(1012)))
            self.close_sent = True
        if not self.disconnected:
            self.disconnected = True
            self.queue.put_nowait({"type": "websocket.disconnect", "code": 1012})
        if self.transport is not None:
            self.transport.close()

    # ---- handshake --------------------------------------------------------------------

    def _handle_upgrade(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        try:
            method, target, _version = lines[0].split(b" ", 2)
        except ValueError:
            self._http_error(400, "malformed request line")
            return
        headers: list[tuple[bytes, bytes]] = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if sep:
                headers.append((name.strip().lower(), value.strip()))
        values = dict(headers)
        key = values.get(b"sec-websocket-key")
        if method != b"GET" or key is None or values.get(b"sec-websocket-version") != b"13":
            self._http_error(400, "not a WebSocket 13 handshake")
            return
        self.upgraded = True
        self.ws_key = key
        raw_path, _, query = target.partition(b"?")
        root = self.config.root_path
        transport = self.transport
        server = transport.get_extra_info("sockname") if transport else None
        client = transport.get_extra_info("peername") if transport else None
        subprotocols = [
            p.strip().decode() for p in values.get(b"sec-websocket-protocol", b"").split(b",")
        ]
        self.scope = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "scheme": "ws",
            "server": tuple(server[:2]) if server else None,
            "client": tuple(client[:2]) if client else None,
            "root_path": root,
            "path": root + unquote(raw_path.decode("ascii", errors="replace")),
            "raw_path": root.encode() + raw_path,
            "query_string": query,
            "headers": headers,
            "subprotocols": [p for p in subprotocols if p],
            "state": self.app_state.copy(),
            "extensions": {"websocket.http.response": {}},
        }
        self.queue.put_nowait({"type": "websocket.connect"})
        task = asyncio.get_running_loop().create_task(self._run_asgi())
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def _http_error(self, status: int, reason: str) -> None:
        body = reason.encode()
        self._write(
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        self.disconnected = True
        if self.transport is not None:
            self.transport.close()

    # ---- frames -----------------------------------------------------------------------

    def _handle_frame(self, fin: bool, opcode: int, payload: bytes) -> None:
        if opcode in (OP_CLOSE, OP_PING, OP_PONG):
            if not fin or len(payload) > 125:
                raise FrameError(1002, "bad control frame")
            if opcode == OP_PING:
                self._write(encode_frame(OP_PONG, payload))
            elif opcode == OP_CLOSE:
                code, reason = parse_close(payload)
                if not self.close_sent:
                    self._write(encode_frame(OP_CLOSE, payload[:2]))
                    self.close_sent = True
                self._disconnect(code, reason)
            return
        if opcode not in (OP_CONT, OP_TEXT, OP_BINARY):
            raise FrameError(1002, f"unknown opcode {opcode}")
        message = self.assembler.add(fin, opcode, payload)
        if message is None or self.close_sent:
            return
        kind, data = message
        if kind == OP_TEXT:
            try:
                text = data.decode()
            except UnicodeDecodeError:
                raise FrameError(1007, "text message is not UTF-8") from None
            self.queue.put_nowait({"type": "websocket.receive", "text": text})
        else:
            self.queue.put_nowait({"type": "websocket.receive", "bytes": data})
        if self.queue.qsize() >= QUEUE_HIGH and not self.read_paused and self.transport:
            self.read_paused = True
            self.transport.pause_reading()

    def _fail(self, code: int, reason: str) -> None:
        if not self.close_sent:
            self._write(encode_frame(OP_CLOSE, close_payload(code, reason)))
            self.close_sent = True
        self._disconnect(code, reason)

    def _disconnect(self, code: int, reason: str) -> None:
        if not self.disconnected:
            self.disconnected = True
            self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        if self.transport is not None:
            self.transport.close()

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    # ---- ASGI -------------------------------------------------------------------------

    async def _run_asgi(self) -> None:
        try:
            await self.app(self.scope, self.receive, self.send)
        except Exception:
            log.exception("WebSocket application failed")
            if not self.accepted and not self.disconnected:
                self._http_error(500, "Internal Server Error")
        finally:
            if self.accepted and not self.close_sent:
                self._write(encode_frame(OP_CLOSE, close_payload(1000)))
                self.close_sent = True
            if self.transport is not None:
                self.transport.close()

    async def receive(self) -> dict[str, Any]:
        message = await self.queue.get()
        if self.read_paused and self.queue.qsize() < QUEUE_HIGH // 2 and self.transport:
            self.read_paused = False
            self.transport.resume_reading()
        return message

    async def send(self, message: dict[str, Any]) -> None:
        await self.writable.wait()
        kind = message["type"]
        if self.disconnected and kind != "websocket.close":
            raise OSError("the WebSocket is closed")
        if kind == "websocket.accept":
            headers = b"".join(
                name + b": " + value + b"\r\n" for name, value in message.get("headers", [])
            )
            subprotocol = message.get("subprotocol")
            if subprotocol:
                headers += b"sec-websocket-protocol: " + subprotocol.encode() + b"\r\n"
            self._write(
                b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n"
                b"connection: Upgrade\r\nsec-websocket-accept: "
                + accept_key(self.ws_key)
                + b"\r\n"
                + headers
                + b"\r\n"
            )
            self.accepted = True
        elif kind == "websocket.send":
            if self.close_sent:
                return
            data = message.get("bytes")
            if data is not None:
                self._write(encode_frame(OP_BINARY, data))
            else:
                self._write(encode_frame(OP_TEXT, message.get("text", "").encode()))
        elif kind == "websocket.close":
            if not self.accepted:
                self._http_error(403, "Forbidden")
                return
            if not self.close_sent:
                code = message.get("code", 1000)
                self._write(
                    encode_frame(OP_CLOSE, close_payload(code, message.get("reason") or ""))
                )
                self.close_sent = True
            self._disconnect(message.get("code", 1000), "")
        elif kind == "websocket.http.response.start":
            status = message["status"]
            head = b"".join(n + b": " + v + b"\r\n" for n, v in message.get("headers", []))
            self._write(f"HTTP/1.1 {status} Rejected\r\n".encode() + head + b"\r\n")
            self.accepted = False
            self.upgraded = True
        elif kind == "websocket.http.response.body":
            self._write(message.get("body", b""))
            if not message.get("more_body", False):
                self.disconnected = True
                if self.transport is not None:
                    self.transport.close()
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")
