"""The whole read and write path in one process, for the API tests.

One stack per test session (its own NATS namespace and database): the api-gateway app over
httpx's ASGI transport, the real report-service, campaign-service, sequence-service and
webhook-service, and a small stand-in device owner (the real device-gateway needs a WhatsApp
driver). Each test makes its own tenants, so tests stay independent without paying for a
stack each. The stack itself is `wacast.api_gateway.testing`, shared with the fuzz tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from wacast.api_gateway.testing import (
    OWNER_SETTINGS,
    Caller,
    DeviceOwner,
    Stack,
    served_app,
    whole_stack,
)
from wacast.runtime.embedded import PostgresPlan

__all__ = ["OWNER_SETTINGS", "Caller", "DeviceOwner", "Stack"]


@pytest.fixture(scope="session")
async def stack(nats_url: str, postgres_plan: PostgresPlan) -> AsyncIterator[Stack]:
    async with whole_stack(nats_url, postgres_plan) as built:
        yield built


@pytest.fixture
async def acme(stack: Stack) -> Caller:
    return await stack.tenant("acme")


@pytest.fixture
async def umbrella(stack: Stack) -> Caller:
    return await stack.tenant("umb")


@pytest.fixture(scope="session")
async def http_url(stack: Stack) -> AsyncIterator[str]:
    """The app served by uvicorn on a free port (for WebSockets and real HTTP clients)."""
    async with served_app(stack) as url:
        yield url
