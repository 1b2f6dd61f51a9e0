"""A webhook-service running in the test's process, real receivers on 127.0.0.1, and the
other owners' events appended directly as their services would.

Everything is real: nats-server, Postgres, the durable consumers, HTTP over loopback. The
receivers are tiny HTTP/1.1 servers whose answers a test scripts (fail the first n tries,
answer slowly, go down and come back).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypedDict, TypeVar

import asyncpg
import msgspec
import pytest
from nats.aio.client import Client

from wacast.contracts import webhooks as wh
from wacast.contracts.base import Event, Reply
from wacast.contracts.messages import MessageDelivered, MessageRead, MessageSent
from wacast.contracts.subjects import Topology
from wacast.contracts.values import Origin
from wacast.runtime.clock import SystemClock
from wacast.runtime.commands import Requester
from wacast.runtime.deadletter import DeadLetters
from wacast.runtime.eventstore import EventStore
from wacast.runtime.service import ServiceContext, make_broker, stop_service
from wacast.webhook_service.app import setup
from wacast.webhook_service.settings import Settings

T = TypeVar("T")
TENANT = "acme"


class OutcomeFields(TypedDict):
    """What the gateway's outcome events of one message share."""

    tenant_id: str
    occurred_at: datetime
    message_id: str
    device_id: str
    lead_id: str
    origin: Origin
    origin_id: str


OTHER = "umbrella"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def json(self) -> dict[str, Any]:
        decoded = msgspec.json.decode(self.body)
        assert isinstance(decoded, dict)
        return decoded

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    """An HTTP endpoint on 127.0.0.1: answers `status` (after `delay` seconds), except the
    first `fail_first` requests, which get 500."""

    status: int = 200
    fail_first: int = 0
    delay: float = 0.0
    got: list[Received] = field(default_factory=list)
    server: asyncio.Server | None = None
    writers: set[asyncio.StreamWriter] = field(default_factory=set)
    arrived: int = 0
    """Requests read so far, answered or not (`got` holds the answered ones)."""

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hooks"

    @property
    def ok(self) -> list[Received]:
        return [r for r in self.got if 200 <= r.status < 300]

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in list(self.writers):
                writer.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                headers: dict[str, str] = {}
                while (header := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.arrived += 1
                if self.delay:
                    await asyncio.sleep(self.delay)
                status = 500 if self.fail_first > 0 else self.status
                self.fail_first -= 1
                self.got.append(Received(headers, body, status))
                writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n".encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self.writers.discard(writer)
            writer.close()


class Running:
    def __init__(self, ctx: ServiceContext[Settings], tasks: list[asyncio.Task[None]]) -> None:
        self.ctx = ctx
        self.tasks = tasks

    async def stop(self) -> None:
        assert await stop_service(self.ctx, self.tasks), "the service did not stop cleanly"


class Harness:
    def __init__(self, nc: Client, topology: Topology, nats_url: str, database_url: str) -> None:
        self.nc = nc
        self.topology = topology
        self.nats_url = nats_url
        self.database_url = database_url
        self.store = EventStore(nc, topology)
        self.requester = Requester(nc, topology, timeout=20)
        self.running: Running | None = None
        self.receivers: list[Receiver] = []

    async def start(self, **overrides: Any) -> Running:
        fields: dict[str, Any] = {
            "url_allowlist": "127.0.0.1",
            "webhook_retry_base_seconds": 0.05,
            "webhook_retry_max_seconds": 0.2,
            "webhook_timeout_seconds": 2.0,
            **overrides,
        }
        settings = Settings(
            nats_url=self.nats_url,
            namespace=self.topology.prefix,
            database_url=self.database_url,
            **fields,
        )
        broker = make_broker(settings, "webhook-service")
        await broker.connect()
        nc = broker.connection
        pool = await asyncpg.create_pool(self.database_url, min_size=1, max_size=10)
        assert pool is not None
        ctx: ServiceContext[Settings] = ServiceContext(
            name="webhook-service",
            settings=settings,
            topology=self.topology,
            broker=broker,
            nc=nc,
            store=EventStore(nc, self.topology),
            clock=SystemClock(),
            dead_letters=DeadLetters(nc, self.topology),
            pool=pool,
        )
        await setup(ctx)
        await broker.start()
        tasks = [asyncio.create_task(work()) for work in ctx._background]
        self.running = Running(ctx, tasks)
        return self.running

    async def stop(self) -> None:
        if self.running is not None:
            await self.running.stop()
            self.running = None

    async def receiver(self, **fields: Any) -> Receiver:
        receiver = Receiver(**fields)
        await receiver.start()
        self.receivers.append(receiver)
        return receiver

    async def webhook(
        self, url: str, event_types: list[str] | None = None, tenant: str = TENANT
    ) -> Reply:
        reply = await self.requester.send(
            wh.CreateWebhook(tenant_id=tenant, url=url, event_types=event_types or ["*"])
        )
        assert reply.ok, reply
        return reply

    async def deliveries(
        self, webhook_id: str, status: wh.DeliveryStatus | None = None, tenant: str = TENANT
    ) -> list[wh.Delivery]:
        found = await self.requester.query(
            wh.DELIVERIES_QUERY,
            wh.ListDeliveries(
                tenant_id=tenant,
                webhook_id=webhook_id,
                status=status,
                limit=500,
            ),
            wh.DeliveryPage,
        )
        assert isinstance(found, wh.DeliveryPage), found
        return found.items

    # other owners ----------------------------------------------------------------------
    async def append(self, *events: Event) -> int:
        seq = 0
        for event in events:
            appended = await self.store.append(
                event.subject(self.topology), [event], msg_id=uuid.uuid4().hex, expected=None
            )
            seq = appended.seq
        return seq

    async def message(self, message_id: str, *steps: str, tenant: str = TENANT) -> None:
        """The gateway's outcomes of one message: `sent`, `delivered`, `read`."""
        base: OutcomeFields = {
            "tenant_id": tenant,
            "occurred_at": datetime.now(UTC),
            "message_id": message_id,
            "device_id": "d1",
            "lead_id": f"lead-{message_id}",
            "origin": "campaign",
            "origin_id": "c1",
        }
        kinds: dict[str, Callable[[], Event]] = {
            "sent": lambda: MessageSent(**base, wa_message_id=f"wa-{message_id}"),
            "delivered": lambda: MessageDelivered(**base),
            "read": lambda: MessageRead(**base),
        }
        await self.append(*(kinds[step]() for step in steps))

    async def until(
        self, check: Callable[[], Awaitable[T | None]], what: str, timeout: float = 30.0
    ) -> T:
        """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = await check()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout}s waiting for {what}")
            await asyncio.sleep(0.05)

    async def received(self, receiver: Receiver, n: int, timeout: float = 30.0) -> None:
        async def enough() -> bool:
            return len(receiver.ok) >= n

        await self.until(enough, f"{n} successful deliveries", timeout)


@pytest.fixture
async def harness(
    nc: Client, streams: Topology, nats_url: str, database_url: str
) -> AsyncIterator[Harness]:
    created = Harness(nc, streams, nats_url, database_url)
    yield created
    await created.stop()
    for receiver in created.receivers:
        await receiver.stop()


@pytest.fixture
async def service(harness: Harness) -> Harness:
    await harness.start()
    return harness
