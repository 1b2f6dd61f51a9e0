"""The fuzz tests' system: the whole read and write path in one process (see
`wacast.api_gateway.testing`), once per session, and the app served on a real port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from wacast.api_gateway.app import create_app
from wacast.api_gateway.testing import Stack, whole_stack
from wacast.runtime.embedded import PostgresPlan, free_port
from wacast.runtime.health import http_server


@pytest.fixture(scope="session")
async def stack(nats_url: str, postgres_plan: PostgresPlan) -> AsyncIterator[Stack]:
    async with whole_stack(nats_url, postgres_plan) as built:
        yield built


@pytest.fixture(scope="session")
async def http_url(stack: Stack) -> AsyncIterator[str]:
    """The app served by uvicorn on a free port, for clients that speak real HTTP."""
    port = free_port()
    served = http_server(create_app(stack.gw), "127.0.0.1", port)
    served.config.timeout_graceful_shutdown = 5
    task = asyncio.create_task(served.serve())
    while not served.started:
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    served.should_exit = True
    await task
