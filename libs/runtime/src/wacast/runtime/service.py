"""The host every NATS-connected service runs in.

It loads settings (a bad value stops the process with the variable's name), configures
logging, connects the faststream broker, provisions streams, lets the service register its
handlers and background work, serves health and metrics, and shuts down cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import asyncpg
from faststream.nats import NatsBroker
from nats.aio.client import Client

from wacast.contracts.subjects import Topology
from wacast.runtime.clock import ControlledClock, SystemClock, make_clock
from wacast.runtime.consumer import poll_consumers
from wacast.runtime.deadletter import DeadLetters
from wacast.runtime.eventstore import EventStore
from wacast.runtime.health import ReadinessCheck, health_app, http_server
from wacast.runtime.http_metrics import instrument
from wacast.runtime.logs import configure_logging
from wacast.runtime.provisioning import ensure_streams
from wacast.runtime.settings import CommonSettings, SettingsError, load_settings
from wacast.runtime.tasks import cancel_and_wait
from wacast.runtime.telemetry import TelemetryError
from wacast.runtime.telemetry import setup as setup_telemetry

log = logging.getLogger("wacast.service")

S = TypeVar("S", bound=CommonSettings)


def make_broker(settings: CommonSettings, name: str) -> NatsBroker:
    """One broker per process; reconnects forever (NATS restarts are routine)."""
    return NatsBroker(
        servers=settings.nats_url.split(","),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        logger=logging.getLogger(f"wacast.{name}.broker"),
        # faststream logs every message received and processed at this level: two lines per
        # event at INFO cost the busiest consumers more CPU than their work.
        log_level=logging.DEBUG,
    )


@dataclass
class ServiceContext(Generic[S]):
    name: str
    settings: S
    topology: Topology
    broker: NatsBroker
    nc: Client
    store: EventStore
    clock: SystemClock | ControlledClock
    dead_letters: DeadLetters
    pool: asyncpg.Pool | None = None
    checks: dict[str, ReadinessCheck] = field(default_factory=dict)
    _background: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)

    def background(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `work` for the life of the service; a crash of it stops the service."""
        self._background.append(work)


Setup = Callable[[ServiceContext[S]], Awaitable[None]]


async def connect_pool(url: str, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    await ensure_database(url)
    pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size)
    assert pool is not None
    return pool


async def ensure_database(url: str) -> None:
    """Create the database named in `url` when it does not exist yet."""
    base, _, name = url.rpartition("/")
    name = name.split("?")[0]
    try:
        conn = await asyncpg.connect(url)
    except asyncpg.InvalidCatalogNameError:
        admin = await asyncpg.connect(f"{base}/postgres")
        try:
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
    else:
        await conn.close()


async def serve(
    name: str, settings: S, port: int, setup: Setup[S], *, needs_database: bool = False
) -> None:
    topology = Topology(settings.namespace)
    broker = make_broker(settings, name)
    await broker.connect()
    nc = broker.connection
    clock = make_clock(settings.clock)
    ctx: ServiceContext[S] = ServiceContext(
        name=name,
        settings=settings,
        topology=topology,
        broker=broker,
        nc=nc,
        store=EventStore(nc, topology),
        clock=clock,
        dead_letters=DeadLetters(nc, topology),
    )
    ctx.checks["nats"] = _nats_ready(nc)
    await ensure_streams(nc, topology, settings.stream_replicas)
    if isinstance(clock, ControlledClock):
        await clock.follow(nc, topology)
    if needs_database:
        ctx.pool = await connect_pool(settings.database_url)
        ctx.checks["postgres"] = _pool_ready(ctx.pool)
    await setup(ctx)
    await broker.start()
    await nc.flush()  # the server has our subscriptions before we report ready
    server = http_server(instrument(health_app(name, ctx.checks), name), settings.http_host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [
        asyncio.create_task(work(), name=getattr(work, "__name__", repr(work)))
        for work in ctx._background  # a functools.partial has no __name__
    ]
    tasks.append(asyncio.create_task(server.serve(), name="http"))
    tasks.append(
        asyncio.create_task(
            poll_consumers(nc.jetstream(), topology.stream("")), name="consumer-metrics"
        )
    )
    stopper = asyncio.create_task(stop.wait(), name="stop")
    log.info("service started", extra={"port": port})
    done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    failure = next((t for t in done if t is not stopper and t.exception() is not None), None)
    if failure is not None:
        log.error("background task %s failed", failure.get_name(), exc_info=failure.exception())
    server.should_exit = True
    stopper.cancel()
    http = [task for task in tasks if task.get_name() == "http"]
    served = await _bounded(asyncio.wait(http), "stopping the HTTP server")
    clean = await stop_service(ctx, [task for task in tasks if task not in http]) and served
    log.info("service stopped")
    if failure is not None:
        raise SystemExit(1)
    if not clean:
        raise SystemExit(3)  # the process exits even though a task ignored its cancellation


async def stop_service(ctx: ServiceContext[Any], tasks: Sequence[asyncio.Task[Any]]) -> bool:
    """Cancel the service's `tasks`, then stop its broker, clock and database pool, each step
    bounded by `SHUTDOWN_STEP_SECONDS`; False when a step overran (its work is left behind)."""
    clean = await _bounded(cancel_and_wait(tasks), "stopping the tasks")
    clean = await _bounded(ctx.broker.stop(), "stopping the broker") and clean
    clean = await _bounded(ctx.clock.close(), "closing the clock") and clean
    if ctx.pool is not None and not await _bounded(ctx.pool.close(), "closing the pool"):
        ctx.pool.terminate()  # a connection never released must not keep the process alive
        clean = False
    return clean


SHUTDOWN_STEP_SECONDS = 10.0
"""Longest wait for each step of a shutdown (tasks, broker, clock, database pool): a process that
cannot stop cleanly still exits, so that its supervisor starts it again."""


async def _bounded(step: Awaitable[Any], what: str) -> bool:
    """False (logged) when `step` did not end within `SHUTDOWN_STEP_SECONDS`. A step that
    overruns is left behind, not cancelled: waiting for a cancellation it ignores is what
    must not happen."""
    future = asyncio.ensure_future(step)
    await asyncio.wait([future], timeout=SHUTDOWN_STEP_SECONDS)
    if not future.done():
        log.warning("%s took over %.0fs; going on", what, SHUTDOWN_STEP_SECONDS)
        return False
    if not future.cancelled() and future.exception() is not None:
        log.warning("%s failed: %r", what, future.exception())
    return True


def _nats_ready(nc: Client) -> ReadinessCheck:
    async def check() -> bool:
        return bool(nc.is_connected)

    return check


def _pool_ready(pool: asyncpg.Pool) -> ReadinessCheck:
    async def check() -> bool:
        async with pool.acquire(timeout=1) as conn:
            return bool(await conn.fetchval("SELECT 1"))

    return check


def run(
    name: str,
    settings_cls: type[S],
    port_of: Callable[[S], int],
    setup: Setup[S],
    *,
    needs_database: bool = False,
) -> None:
    """Entry point of a service process."""
    try:
        settings = load_settings(settings_cls)
    except SettingsError as exc:
        print(f"{name}: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(name, settings.log_level, settings.log_format)
    try:
        setup_telemetry(name)
    except TelemetryError as exc:
        print(f"{name}: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        asyncio.run(serve(name, settings, port_of(settings), setup, needs_database=needs_database))
    except SystemExit as exc:
        # asyncio.run waits for every task it cancels: one that ignores its cancellation
        # would keep a failed process alive (its port closed) forever. Leave at once.
        logging.shutdown()
        os._exit(exc.code if isinstance(exc.code, int) else 1)
