"""The service host stops a failed service even when its shutdown cannot finish cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import time

import pytest

from wacast.contracts.subjects import Topology
from wacast.runtime import service
from wacast.runtime.embedded import free_port
from wacast.runtime.service import ServiceContext, serve
from wacast.runtime.settings import CommonSettings


async def test_a_failed_service_exits_although_a_database_connection_is_never_released(
    nats_url: str, database_url: str, streams: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "SHUTDOWN_STEP_SECONDS", 1.0)
    settings = CommonSettings(
        nats_url=nats_url, database_url=database_url, namespace=streams.prefix
    )

    async def setup(ctx: ServiceContext[CommonSettings]) -> None:
        async def hold() -> None:
            assert ctx.pool is not None
            await ctx.pool.acquire()  # never released: Pool.close() alone would wait forever
            await asyncio.Event().wait()

        async def fail(why: str) -> None:
            await asyncio.sleep(0.3)
            raise RuntimeError(why)

        ctx.background(hold)
        ctx.background(functools.partial(fail, "the database went away"))  # no __name__

    loop = asyncio.get_running_loop()
    started = time.monotonic()
    try:
        # In this task (a SystemExit inside a task of its own would stop the event loop).
        with pytest.raises(SystemExit):
            async with asyncio.timeout(30):
                await serve("host-test", settings, free_port(), setup, needs_database=True)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    assert time.monotonic() - started < 20


async def test_a_failed_service_exits_although_a_task_ignores_its_cancellation(
    nats_url: str, streams: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "SHUTDOWN_STEP_SECONDS", 1.0)
    settings = CommonSettings(nats_url=nats_url, namespace=streams.prefix)
    stubborn: list[asyncio.Task[None]] = []

    async def setup(ctx: ServiceContext[CommonSettings]) -> None:
        async def ignore_cancellation() -> None:
            task = asyncio.current_task()
            assert task is not None
            stubborn.append(task)
            for _ in range(3):  # as a wait_for on 3.11 can swallow a cancel
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.sleep(3600)

        async def fail() -> None:
            await asyncio.sleep(0.3)
            raise RuntimeError("boom")

        ctx.background(ignore_cancellation)
        ctx.background(fail)

    loop = asyncio.get_running_loop()
    started = time.monotonic()
    try:
        with pytest.raises(SystemExit):
            async with asyncio.timeout(30):
                await serve("host-test", settings, free_port(), setup)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        for task in stubborn:
            task.cancel()
    assert time.monotonic() - started < 20
