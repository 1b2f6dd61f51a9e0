"""The fuzz tests' system: the whole read and write path in one process (see
`wacast.api_gateway.testing`), once per session, and the app served on a real port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from wacast.api_gateway.testing import Stack, served_app, whole_stack
from wacast.runtime.embedded import PostgresPlan


@pytest.fixture(scope="session")
async def stack(nats_url: str, postgres_plan: PostgresPlan) -> AsyncIterator[Stack]:
    async with whole_stack(nats_url, postgres_plan) as built:
        yield built


@pytest.fixture(scope="session")
async def http_url(stack: Stack) -> AsyncIterator[str]:
    """The app served by uvicorn on a free port, for clients that speak real HTTP."""
    async with served_app(stack) as url:
        yield url
