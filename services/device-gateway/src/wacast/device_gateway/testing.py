"""Test and benchmark support: the simulator and gateways as processes, or a gateway in this
process, and the few waits and requests the gateway's tests share."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from faststream.nats import NatsBroker
from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError, NoKeysError

from wacast.contracts import messages as m
from wacast.contracts.commands import RegisterDevice, StartPairing
from wacast.contracts.devices import DeviceEvent
from wacast.contracts.streams import DEVICES, LEASES_BUCKET, MESSAGES
from wacast.contracts.subjects import Topology
from wacast.contracts.values import MessageContent, Pacing, RetryPolicy, SendWindow
from wacast.device_gateway.domain.device import Device, fold
from wacast.device_gateway.gateway import Gateway
from wacast.device_gateway.partitions import PARTITION
from wacast.device_gateway.settings import Settings
from wacast.runtime.clock import ControlledClock, SystemClock, make_clock
from wacast.runtime.commands import Requester
from wacast.runtime.deadletter import DeadLetters
from wacast.runtime.embedded import free_port, wait_for_port
from wacast.runtime.eventstore import EventStore
from wacast.runtime.service import ServiceContext


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float, what: str, every: float = 0.05
) -> None:
    """Wait until `check()` holds, or fail saying `what` did not happen."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(every)


def _env(**values: Any) -> dict[str, str]:
    env = dict(os.environ)
    env.update({f"WACAST_{k.upper()}": str(v) for k, v in values.items()})
    env["WACAST_LOG_FORMAT"] = "text"
    return env


class Simulator:
    """`python -m wacast.wa_simulator` on a free port."""

    def __init__(self, log: Path, *, profile: str = "bench", pair_delay: float = 0.2) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.env = _env(sim_port=self.port, sim_profile=profile, sim_pair_delay=pair_delay)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Simulator:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "wacast.wa_simulator"], env=self.env, stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for_port(self.port, 20, self.proc)
        return self

    def stop(self) -> None:
        _end(self.proc)

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as client:
            response = await client.get(path, params=params)
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found

    async def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as client:
            response = await client.post(path, json=body or {})
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found

    async def stats(self) -> dict[str, Any]:
        return await self.get("/sim/v1/stats")


@dataclass
class GatewayProcess:
    """`python -m wacast.device_gateway` with settings from `WACAST_*` variables."""

    log: Path
    settings: dict[str, Any]
    proc: subprocess.Popen[bytes] | None = None
    port: int = field(default_factory=free_port)

    def start(self) -> GatewayProcess:
        env = _env(gateway_port=self.port, **self.settings)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "wacast.device_gateway"], env=env, stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for_port(self.port, 30, self.proc)
        return self

    def kill(self) -> None:
        """SIGKILL: no goodbye, leases expire, sends in flight are cut."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        _end(self.proc, timeout=30)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


def _end(proc: subprocess.Popen[bytes] | None, timeout: float = 10) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class InProcessGateway:
    """A gateway on its own broker connection in this process (its parts stay inspectable)."""

    def __init__(self, settings: Settings, **gateway: Any) -> None:
        self.settings = settings
        self.options = gateway
        self.broker: NatsBroker | None = None
        self.gateway: Gateway | None = None
        self.task: asyncio.Task[None] | None = None
        self.clock: SystemClock | ControlledClock | None = None

    async def start(self) -> Gateway:
        self.broker = broker = NatsBroker(self.settings.nats_url)
        await broker.connect()
        nc = broker.connection
        topology = Topology(self.settings.namespace)
        self.clock = clock = make_clock(self.settings.clock)
        if isinstance(clock, ControlledClock):
            await clock.follow(nc, topology)
        ctx: ServiceContext[Settings] = ServiceContext(
            name="device-gateway", settings=self.settings, topology=topology, broker=broker,
            nc=nc, store=EventStore(nc, topology), clock=clock,
            dead_letters=DeadLetters(nc, topology),
        )  # fmt: skip
        self.gateway = gateway = Gateway(ctx, **self.options)
        gateway.register(broker)
        await broker.start()
        await nc.flush()
        self.task = asyncio.create_task(gateway.run())
        await eventually(gateway.ready, 10, "the gateway ready")
        return gateway

    async def stop(self, timeout: float = 30.0) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.wait([self.task], timeout=timeout)
            if not self.task.done():
                raise AssertionError("the gateway did not stop:\n" + "\n".join(await_chains()))
        if self.clock is not None:
            await self.clock.close()
        if self.broker is not None:
            await self.broker.stop()


def await_chains() -> list[str]:
    """What every task of this loop is waiting on (a coroutine's await chain)."""
    chains = []
    for task in asyncio.all_tasks():
        links = []
        step: Any = task.get_coro()
        while step is not None:
            frame = getattr(step, "cr_frame", None) or getattr(step, "ag_frame", None)
            if frame is not None:
                where = f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}"
                links.append(f"{where} {frame.f_code.co_name}")
            step = getattr(step, "cr_await", None) or getattr(step, "ag_await", None)
        chains.append(f"{task.get_name()}: {' <- '.join(links)}")
    return chains


async def device_state(store: EventStore, tenant_id: str, device_id: str) -> Device:
    subject = store.topology.device(tenant_id, device_id)
    events: list[DeviceEvent] = [s.event for s in await store.load(DEVICES, subject)]  # type: ignore[misc]
    return fold(Device(device_id), events)


async def outcomes(store: EventStore, tenant_id: str, message_id: str) -> list[m.MessageEvent]:
    subject = store.topology.message(tenant_id, message_id)
    return [s.event for s in await store.load(MESSAGES, subject)]  # type: ignore[misc]


async def request_send(
    store: EventStore,
    tenant_id: str,
    device_id: str,
    message_id: str,
    *,
    to: str = "+5511987654321",
    text: str = "Hello there",
    pacing: Pacing | None = None,
    campaign_id: str = "c1",
    retry: RetryPolicy | None = None,
    lead_id: str = "",
    window: SendWindow | None = None,
) -> int:
    """Append a campaign's send request (as the campaign service does); its sequence."""
    request = m.MessageRequested(
        tenant_id=tenant_id, occurred_at=datetime.now(UTC), message_id=message_id,
        device_id=device_id, lead_id=lead_id or f"l-{message_id}", origin="campaign",
        origin_id=campaign_id, to=to, content=MessageContent(text=text),
        pacing=pacing or Pacing(), retry=retry or RetryPolicy(), window=window,
    )  # fmt: skip
    appended = await store.append(
        request.subject(store.topology), [request], msg_id=f"req:{message_id}", expected=0
    )
    return appended.seq


async def lease_holders(nc: Client, topology: Topology) -> dict[int, str]:
    """partition -> replica holding its lease, from the leases bucket."""
    kv = await nc.jetstream().key_value(topology.bucket(LEASES_BUCKET))
    held: dict[int, str] = {}
    try:
        keys = await kv.keys()
    except NoKeysError:
        return held
    for key in keys:
        if key.startswith(PARTITION):
            try:
                entry = await kv.get(key)
            except KeyNotFoundError:
                continue
            held[int(key.removeprefix(PARTITION))] = (entry.value or b"").decode()
    return held


async def register_and_pair(
    requester: Requester,
    store: EventStore,
    tenant_id: str,
    device_ids: list[str],
    timeout: float = 15,
) -> None:
    """Register `sim` devices, link them by QR, and wait until every one is connected."""
    for device_id in device_ids:
        reply = await requester.send(
            RegisterDevice(tenant_id=tenant_id, name=device_id, driver="sim", device_id=device_id)
        )
        assert reply.ok, reply.problem
        reply = await requester.send(StartPairing(tenant_id=tenant_id, device_id=device_id))
        assert reply.ok, reply.problem

    async def all_connected() -> bool:
        states = [await device_state(store, tenant_id, d) for d in device_ids]
        return all(s.status == "connected" for s in states)

    await eventually(all_connected, timeout, "every device connected")
