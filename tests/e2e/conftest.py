"""One running stack for every e2e test of a session, and a fresh tenant per test.

The stack (`wacast.cli.stackrun.running_stack`) runs what `./dev up` runs, on free ports
under the session's temporary folder, with the controlled clock (`WACAST_CLOCK=controlled`:
sends, pacing and timers wait until a test moves time with `await stack.advance_clock(...)`)
and the simulator in its realistic profile (latencies, transient failures, the ban model:
the simulator measures gaps in wall time). Pairing completes only when a test scans the QR
or types the code (`WACAST_SIM_PAIR_DELAY=0`); `helpers.connect_sim_device` does that.

Tests that need other settings start their own stack with `running_stack`.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.e2e.helpers import api_client, sim_client
from wacast.cli.stackrun import RunningStack, Tenant, running_stack

STACK_ENV = {
    "WACAST_CLOCK": "controlled",
    "WACAST_SIM_PROFILE": "realistic",
    "WACAST_SIM_PAIR_DELAY": "0",
}


@pytest.fixture(scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningStack]:
    """nats-server, Postgres, every service and the simulator, healthy, for the session."""
    async with running_stack(tmp_path_factory.mktemp("stack") / "var", STACK_ENV) as running:
        yield running


@pytest.fixture
async def tenant(stack: RunningStack) -> Tenant:
    """A tenant of its own for one test (created through the api-gateway's tenant commands),
    so tests sharing the stack never see each other's devices, leads or campaigns."""
    return await stack.create_tenant(f"e2e-{secrets.token_hex(6)}")


@pytest.fixture
async def api(stack: RunningStack, tenant: Tenant) -> AsyncIterator[httpx.AsyncClient]:
    """The public API as the test's own tenant."""
    async with api_client(stack, tenant.key) as client:
        yield client


@pytest.fixture
async def sim(stack: RunningStack) -> AsyncIterator[httpx.AsyncClient]:
    """The simulator's control API."""
    async with sim_client(stack) as client:
        yield client
