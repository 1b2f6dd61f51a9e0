"""The whole read and write path in one process, for tests of the API and of the system.

One stack (its own NATS namespace and database): the api-gateway app (serve it over httpx's
ASGI transport or uvicorn), the real report-service, the real campaign-service and
sequence-service when they start, and a small stand-in device owner (the real
device-gateway needs a WhatsApp driver). Tests make their own tenants, so one stack serves a
whole test session. The api-gateway's tests and the cross-service fuzz tests build it here.
The other services are imported by name when the stack starts: the api-gateway's code does
not depend on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import asyncpg
import httpx
import nats
from faststream.nats import NatsBroker
from litestar import Litestar
from nats.aio.client import Client

from wacast.api_gateway.app import create_app
from wacast.api_gateway.gateway import Gateway
from wacast.api_gateway.settings import Settings
from wacast.api_gateway.tenants import serve_tenants
from wacast.contracts import devices as d
from wacast.contracts import tenants as tn
from wacast.contracts.base import Reply, encode
from wacast.contracts.commands import (
    CancelPairing,
    CreateTenant,
    DeleteDevice,
    DeviceCommand,
    IssueApiKey,
    LogoutDevice,
    RegisterDevice,
    RenameDevice,
    SetDeviceLimits,
    StartPairing,
)
from wacast.contracts.streams import DEVICES
from wacast.contracts.subjects import Topology
from wacast.runtime.clock import SystemClock
from wacast.runtime.commands import problem, serve_commands, serve_query
from wacast.runtime.deadletter import DeadLetters
from wacast.runtime.embedded import PostgresPlan, free_port
from wacast.runtime.eventstore import Conflict, EventStore
from wacast.runtime.health import http_server
from wacast.runtime.provisioning import ensure_streams
from wacast.runtime.service import ServiceContext
from wacast.runtime.testing import TEMPLATE_DB

log = logging.getLogger("wacast.api.testing")


OWNER_SETTINGS: dict[str, dict[str, Any]] = {
    "webhooks": {"url_allowlist": "127.0.0.1", "webhook_max_per_tenant": 3},
}
"""Settings of the real owners besides the stack's NATS, namespace and database: webhook
receivers run on 127.0.0.1, which only configuration lets the SSRF guard reach."""


class DeviceOwner:
    """Stand-in for the device-gateway's command handling: the same events and replies for
    the commands the API sends, no WhatsApp. Linking prompts go out live and answer
    `device.qr` like the real one's."""

    def __init__(self, nc: Client, topology: Topology) -> None:
        self.nc = nc
        self.topology = topology
        self.store = EventStore(nc, topology)
        self.clock = SystemClock()
        self.prompts: dict[tuple[str, str], d.DeviceQr] = {}

    async def handle(self, command: DeviceCommand) -> Reply:
        subject = self.topology.device(command.tenant_id, command.device_id or "x")
        base: dict[str, Any] = {
            "tenant_id": command.tenant_id,
            "occurred_at": self.clock.now(),
            "device_id": command.device_id,
        }
        if isinstance(command, RegisterDevice):
            event: d.DeviceEvent = d.DeviceRegistered(
                **base, name=command.name, driver=command.driver
            )
            try:
                done = await self.store.append(
                    subject, [event], msg_id=f"reg-{command.device_id}", expected=0
                )
            except Conflict:
                return problem("device_exists", "A device with this id exists", 409)
            return Reply(ok=True, seq=done.seq, stream=done.stream, id=command.device_id)
        last = await self.store.last_seq(DEVICES, subject)
        if not last:
            return problem("not_found", "No such device", 404)
        prompt: d.DeviceQr | None = None
        if isinstance(command, StartPairing):
            event = d.DevicePairingStarted(**base, method=command.method, phone=command.phone)
            code = "ABCD1234" if command.method == "code" else f"2@{uuid.uuid4().hex}"
            prompt = d.DeviceQr(
                tenant_id=command.tenant_id,
                device_id=command.device_id,
                method=command.method,
                code=code,
                at=self.clock.now(),
            )
            self.prompts[(command.tenant_id, command.device_id)] = prompt
        elif isinstance(command, CancelPairing):
            event = d.DevicePairingFailed(**base, reason="cancelled")
        elif isinstance(command, RenameDevice):
            event = d.DeviceRenamed(**base, name=command.name)
        elif isinstance(command, SetDeviceLimits):
            event = d.DeviceLimitsChanged(
                **base, daily_cap=command.daily_cap, warmup=command.warmup
            )
        elif isinstance(command, LogoutDevice):
            event = d.DeviceLoggedOut(**base, reason="requested")
        else:
            assert isinstance(command, DeleteDevice)
            event = d.DeviceDeleteRequested(**base, reason=command.reason)
        done = await self.store.append(subject, [event], msg_id=uuid.uuid4().hex, expected=last)
        if prompt is not None:  # the real gateway shows it when the driver has it
            await self.nc.publish(self.topology.live(command.tenant_id), encode(prompt))
        return Reply(ok=True, seq=done.seq, stream=done.stream, id=command.device_id)

    async def current_prompt(self, query: d.DeviceQrQuery) -> d.DeviceQr | Reply:
        found = self.prompts.get((query.tenant_id, query.device_id))
        if found is None:
            return problem("no_qr", "The device is not waiting to be linked", 404)
        return found

    async def connect(self, tenant_id: str, device_id: str) -> int:
        """What the real gateway appends when the phone scanned the code."""
        subject = self.topology.device(tenant_id, device_id)
        last = await self.store.last_seq(DEVICES, subject)
        base: dict[str, Any] = {
            "tenant_id": tenant_id,
            "occurred_at": self.clock.now(),
            "device_id": device_id,
        }
        done = await self.store.append(
            subject,
            [d.DevicePaired(**base, phone="+15550001234", jid="1@s"), d.DeviceConnected(**base)],
            msg_id=uuid.uuid4().hex,
            expected=last,
        )
        return done.seq


@dataclass
class Caller:
    """One tenant's HTTP client."""

    tenant_id: str
    key: str
    http: httpx.AsyncClient


@dataclass
class Stack:
    gw: Gateway
    app: Litestar
    nc: Client
    topology: Topology
    devices: DeviceOwner
    real_owners: list[str]
    callers: list[httpx.AsyncClient] = field(default_factory=list)
    services: dict[str, ServiceContext[Any]] = field(default_factory=dict)
    """The hosted services by name, as their setup wired them."""
    brokers: list[NatsBroker] = field(default_factory=list)
    """Every broker of the stack: the services', and the one of the api-gateway's tenants
    and the stand-in device owner."""
    pool: asyncpg.Pool | None = None

    async def tenant(self, prefix: str = "t") -> Caller:
        tenant_id = f"{prefix}{uuid.uuid4().hex[:8]}"
        created = await self.gw.tenants.handle(CreateTenant(tenant_id=tenant_id, name=tenant_id))
        assert created.ok, created
        key = tn.new_api_key()
        issued = await self.gw.tenants.handle(
            IssueApiKey(
                tenant_id=tenant_id,
                key_id=tn.key_id_of(key),
                key_hash=tn.key_hash(key),
                name="test",
                prefix=tn.key_display_prefix(key),
            )
        )
        assert issued.ok, issued
        http = self.client(key)
        return Caller(tenant_id, key, http)

    def client(self, key: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=cast(Any, self.app)),
            base_url="http://api.test",
            headers=headers,
            timeout=30,
        )
        self.callers.append(http)
        return http


Starter = Callable[[ServiceContext[Any]], Awaitable[None]]


@contextlib.asynccontextmanager
async def hosted(
    name: str, setup: Starter, settings: Any, topology: Topology, pool: asyncpg.Pool | None
) -> AsyncIterator[ServiceContext[Any]]:
    """A service wired by its own `setup`, as its process would run it."""
    broker = NatsBroker(settings.nats_url, logger=None)
    await broker.connect()
    nc = broker.connection
    ctx: ServiceContext[Any] = ServiceContext(
        name=name,
        settings=settings,
        topology=topology,
        broker=broker,
        nc=nc,
        store=EventStore(nc, topology),
        clock=SystemClock(),
        dead_letters=DeadLetters(nc, topology),
        pool=pool,
    )
    await setup(ctx)
    await broker.start()
    tasks = [asyncio.create_task(work()) for work in ctx._background]
    try:
        yield ctx
    finally:
        while not all(task.done() for task in tasks):  # a 3.11 cancel can be swallowed: again
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=1.0)
        await asyncio.wait_for(broker.stop(), 10)


@contextlib.asynccontextmanager
async def whole_stack(nats_url: str, postgres_plan: PostgresPlan) -> AsyncIterator[Stack]:
    """Start the stack in a namespace and database of its own; remove both afterwards."""
    topology = Topology(f"a{uuid.uuid4().hex[:10]}")
    database = f"api_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_plan.url())
    await admin.execute(f'CREATE DATABASE "{database}" TEMPLATE {TEMPLATE_DB}')
    await admin.close()
    database_url = postgres_plan.url(database)
    nc = await nats.connect(nats_url)
    await ensure_streams(nc, topology)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=20)
    assert pool is not None
    common: dict[str, Any] = {
        "nats_url": nats_url,
        "namespace": topology.prefix,
        "database_url": database_url,
    }
    real: list[str] = []
    services: dict[str, ServiceContext[Any]] = {}
    async with contextlib.AsyncExitStack() as stack_:
        reports = importlib.import_module("wacast.report_service.app")
        report_settings = importlib.import_module("wacast.report_service.settings")
        services["reports"] = await stack_.enter_async_context(
            hosted(
                "report-service",
                reports.setup,
                report_settings.Settings(**common, live_interval_seconds=0.2),
                topology,
                pool,
            )
        )
        for owner, module in (
            ("campaigns", "campaign_service"),
            ("sequences", "sequence_service"),
            ("webhooks", "webhook_service"),
        ):
            try:
                app_module = importlib.import_module(f"wacast.{module}.app")
                settings_module = importlib.import_module(f"wacast.{module}.settings")
                settings = settings_module.Settings(**common, **OWNER_SETTINGS.get(owner, {}))
                services[owner] = await stack_.enter_async_context(
                    hosted(owner, app_module.setup, settings, topology, pool)
                )
                real.append(owner)
            except Exception:
                log.exception("the %s owner does not start; its commands answer 503", owner)
        devices = DeviceOwner(nc, topology)
        owner_broker = NatsBroker(nats_url, logger=None)
        serve_commands(owner_broker, topology, "devices", DeviceCommand, devices.handle)
        serve_query(
            owner_broker,
            topology,
            d.DEVICE_QR_QUERY,
            d.DeviceQrQuery,
            devices.current_prompt,
            queue="devices",
        )
        gw = Gateway.build(
            Settings(**common, rate_limit_per_second=0, live_heartbeat_seconds=0.5),
            nc,
            topology,
            SystemClock(),
        )
        serve_tenants(owner_broker, topology, gw.tenants, gw.keys)
        await owner_broker.start()
        stack_.push_async_callback(owner_broker.stop)
        await gw.start()
        stack_.push_async_callback(gw.stop)
        built = Stack(
            gw,
            create_app(gw),
            nc,
            topology,
            devices,
            real,
            services=services,
            brokers=[*(ctx.broker for ctx in services.values()), owner_broker],
            pool=pool,
        )
        yield built
        for http in built.callers:
            await http.aclose()
    await pool.close()
    js = nc.jetstream()
    for info in await js.streams_info():
        name = info.config.name or ""
        if name.startswith(
            (topology.stream(""), f"KV_{topology.bucket('')}", f"OBJ_{topology.bucket('')}")
        ):
            await js.delete_stream(name)
    await nc.close()
    admin = await asyncpg.connect(postgres_plan.url())
    await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    await admin.close()


@contextlib.asynccontextmanager
async def served_app(stack: Stack) -> AsyncIterator[str]:
    """The stack's app served by uvicorn on a free port (for WebSockets and real HTTP
    clients); yields its base URL."""
    port = free_port()
    served = http_server(create_app(stack.gw), "127.0.0.1", port)
    served.config.timeout_graceful_shutdown = 5
    task = asyncio.create_task(served.serve())
    while not served.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        served.should_exit = True
        await task
