"""`Idempotency-Key` on POST: a retried request gets the first reply instead of acting twice.

Replies are remembered per tenant, key and path in a NATS KV bucket (`<prefix>_idempotency`,
shared by every replica) for `idempotency_ttl_seconds`, 24 h by default. The same key with
a different body is refused (422). Replies of 5xx and 429 are not remembered, so a retry
after an outage is carried out. Owners get the key too (on the command), so two requests
racing with one key still act once.

A remembered reply never holds a lead's personal data, so erasing a lead has nothing to
purge here: for paths whose success reply would (`POST /api/v1/leads`), only `id`, `seq`
and `stream` are kept, and a replay fills in the rest from the read model (`Rehydrate`);
a lead erased or deleted meanwhile is replayed with those three fields only.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPRequestEvent,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)
from nats.aio.client import Client
from nats.js.api import KeyValueConfig
from nats.js.errors import BucketNotFoundError, KeyNotFoundError
from nats.js.kv import KeyValue

from wacast.api_gateway.auth import Principal
from wacast.api_gateway.problems import ApiProblem
from wacast.contracts.subjects import Topology

if TYPE_CHECKING:
    from wacast.api_gateway.gateway import Gateway

HEADER = "idempotency-key"
NOT_REMEMBERED = ("/api/v1/keys",)
"""A new API key's reply holds its secret: never stored, so never replayed."""
BUCKET = "idempotency"
KEPT_HEADERS = (
    b"content-type",
    b"content-length",
    b"location",
    b"wacast-seq",
    b"wacast-stream",
)


KEPT_FIELDS = ("id", "seq", "stream")
"""What a redacted reply keeps of its body."""

Rehydrate = Callable[["Gateway", Principal, dict[str, Any]], Awaitable[bytes | None]]
"""Rebuilds a redacted reply's body from what it kept (None: keep the redacted body)."""


class Remembered(msgspec.Struct, frozen=True):
    fingerprint: str
    status: int
    headers: list[tuple[str, str]]
    body: str
    """base64"""
    redacted: bool = False
    """The body holds `KEPT_FIELDS` only; the path's `Rehydrate` fills in the rest."""


class IdempotencyStore:
    def __init__(self, nc: Client, topology: Topology, ttl_seconds: int) -> None:
        self.nc = nc
        self.name = topology.bucket(BUCKET)
        self.ttl = ttl_seconds
        self.kv: KeyValue | None = None

    async def start(self) -> None:
        js = self.nc.jetstream()
        try:
            self.kv = await js.key_value(self.name)
        except BucketNotFoundError:
            self.kv = await js.create_key_value(
                KeyValueConfig(bucket=self.name, history=1, ttl=float(self.ttl))
            )

    async def get(self, key: str) -> Remembered | None:
        assert self.kv is not None
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:
            return None
        if not entry.value:
            return None
        return msgspec.json.decode(entry.value, type=Remembered)

    async def put(self, key: str, value: Remembered) -> None:
        assert self.kv is not None
        await self.kv.put(key, msgspec.json.encode(value))


def storage_key(principal: Principal, key: str, path: str) -> str:
    raw = "\x1f".join((principal.tenant_id, key, path))
    return "k" + hashlib.sha256(raw.encode()).hexdigest()


class IdempotencyMiddleware:
    """`redacted` names the paths whose success replies carry personal data, each with how
    a replay rebuilds the body."""

    def __init__(
        self, app: ASGIApp, gw: Gateway, redacted: dict[str, Rehydrate] | None = None
    ) -> None:
        self.app = app
        self.gw = gw
        self.store = gw.idempotency
        self.max_bytes = gw.settings.max_upload_bytes
        self.redacted = redacted or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, HEADER)
        principal = scope.get("user")
        if (
            scope["type"] != ScopeType.HTTP
            or scope.get("method") != "POST"
            or key is None
            or not isinstance(principal, Principal)
            or scope["path"].rstrip("/") in NOT_REMEMBERED
        ):
            await self.app(scope, receive, send)
            return
        if not 1 <= len(key) <= 255 or not key.isprintable():
            raise ApiProblem(422, detail="Idempotency-Key must be 1-255 printable characters")
        body, replay = await _buffer(receive, self.max_bytes)
        fingerprint = hashlib.sha256(body).hexdigest()
        where = storage_key(principal, key, scope["path"])
        found = await self.store.get(where)
        if found is not None:
            if found.fingerprint != fingerprint:
                raise ApiProblem(
                    422,
                    "idempotency_key_reused",
                    "This Idempotency-Key was used with another request",
                )
            rehydrate = self.redacted.get(scope["path"].rstrip("/"))
            if found.redacted and rehydrate is not None:
                found = await _rehydrated(found, self.gw, principal, rehydrate)
            await _send_remembered(found, send)
            return
        captured: dict[str, Any] = {"status": 0, "headers": [], "body": b""}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")
            await send(message)

        await self.app(scope, replay, capture)
        status = captured["status"]
        if status and status < 500 and status != 429:
            headers = [
                (k.decode(), v.decode())
                for k, v in captured["headers"]
                if k.lower() in KEPT_HEADERS
            ]
            body = captured["body"]
            redact = 200 <= status < 300 and scope["path"].rstrip("/") in self.redacted
            if redact:
                body = _redacted(body)
                headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            body64 = base64.b64encode(body).decode()
            await self.store.put(
                where, Remembered(fingerprint, status, headers, body64, redacted=redact)
            )


def _redacted(body: bytes) -> bytes:
    try:
        reply = msgspec.json.decode(body, type=dict[str, Any])
    except msgspec.DecodeError:
        return b"{}"
    return msgspec.json.encode({k: reply[k] for k in KEPT_FIELDS if k in reply})


async def _rehydrated(
    found: Remembered, gw: Gateway, who: Principal, rehydrate: Rehydrate
) -> Remembered:
    kept = msgspec.json.decode(base64.b64decode(found.body), type=dict[str, Any])
    body = await rehydrate(gw, who, kept)
    if body is None:
        return found
    return msgspec.structs.replace(found, body=base64.b64encode(body).decode())


def _header(scope: Scope, name: str) -> str | None:
    wanted = name.encode()
    for k, v in scope.get("headers", []):
        if k.lower() == wanted:
            return str(v.decode("latin-1"))
    return None


async def _buffer(receive: Receive, max_bytes: int) -> tuple[bytes, Receive]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > max_bytes:
            raise ApiProblem(413)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    sent = False

    async def replay() -> ReceiveMessage:
        nonlocal sent
        if not sent:
            sent = True
            return HTTPRequestEvent(type="http.request", body=body, more_body=False)
        return await receive()

    return body, replay


async def _send_remembered(found: Remembered, send: Send) -> None:
    body = base64.b64decode(found.body)
    headers = [(k.encode(), v.encode()) for k, v in found.headers if k.lower() != "content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    headers.append((b"idempotent-replayed", b"true"))
    await send(
        HTTPResponseStartEvent(type="http.response.start", status=found.status, headers=headers)
    )
    await send(HTTPResponseBodyEvent(type="http.response.body", body=body, more_body=False))
