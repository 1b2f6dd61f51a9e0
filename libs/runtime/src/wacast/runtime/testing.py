"""pytest fixtures: one real nats-server and one real Postgres per test session.

Each test gets its own namespace (streams, subjects and buckets no other test sees) and its
own database cloned from a template, so tests stay independent without paying for new
servers. Loaded by the root conftest as a plugin.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import nats
import pytest
import pytest_asyncio
from hypothesis import settings
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from wacast.contracts.subjects import Topology
from wacast.runtime.deadletter import DeadLetters
from wacast.runtime.embedded import NatsPlan, PostgresPlan, free_port, stop
from wacast.runtime.eventstore import EventStore
from wacast.runtime.provisioning import ensure_streams

TEMPLATE_DB = "wacast_template"

settings.register_profile("ci", derandomize=True, database=None, max_examples=100, deadline=None)
settings.register_profile("explore", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("WACAST_HYPOTHESIS_PROFILE", "ci"))
"""Property tests are derandomized and bounded by default (the same examples on every run,
so CI is stable and quick); `WACAST_HYPOTHESIS_PROFILE=explore` searches far more widely."""


def _server_dir(name: str) -> Path:
    """A data folder of the session's own, outside pytest's basetemp.

    pytest prunes all but the newest few basetemp folders when a session starts, so a
    second pytest run on the machine would delete a running server's data under it.
    """
    folder = Path(tempfile.mkdtemp(prefix=f"wacast-test-{name}-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


@pytest.fixture(scope="session")
def nats_plan() -> Iterator[NatsPlan]:
    plan = NatsPlan(_server_dir("nats"), free_port())
    proc = plan.start(log=Path(plan.data_dir) / "nats.log")
    yield plan
    stop(proc)


@pytest.fixture(scope="session")
def nats_url(nats_plan: NatsPlan) -> str:
    return nats_plan.url


@pytest.fixture(scope="session")
def postgres_plan() -> Iterator[PostgresPlan]:
    plan = PostgresPlan(_server_dir("postgres"), free_port(), durable=False)
    proc = plan.start(log=Path(plan.data_dir) / "postgres.log")
    subprocess.run(
        [
            _psql(),
            "-h",
            "127.0.0.1",
            "-p",
            str(plan.port),
            "-U",
            "postgres",
            "-q",
            "-c",
            f"CREATE DATABASE {TEMPLATE_DB}",
        ],
        check=True,
        capture_output=True,
    )
    yield plan
    stop(proc)


def _psql() -> str:
    from wacast.runtime.embedded import _pg_bin

    return _pg_bin("psql")


@pytest_asyncio.fixture
async def database_url(postgres_plan: PostgresPlan) -> AsyncIterator[str]:
    """A fresh database for one test, cloned from the (empty) template."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_plan.url())
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE {TEMPLATE_DB}')
    finally:
        await admin.close()
    yield postgres_plan.url(name)
    admin = await asyncpg.connect(postgres_plan.url())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest_asyncio.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    created = await asyncpg.create_pool(database_url, min_size=1, max_size=5)
    assert created is not None
    yield created
    await created.close()


@pytest.fixture
def topology() -> Topology:
    """A namespace of this test's own."""
    return Topology(f"t{uuid.uuid4().hex[:10]}")


@pytest_asyncio.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(nats_url)
    yield client
    await client.close()


@pytest_asyncio.fixture
async def streams(nc: Client, topology: Topology) -> AsyncIterator[Topology]:
    """Every stream and bucket of the test's namespace; deleted afterwards."""
    await ensure_streams(nc, topology)
    yield topology
    js = nc.jetstream()
    prefixes = (topology.stream(""), f"KV_{topology.bucket('')}", f"OBJ_{topology.bucket('')}")
    for name in await js.streams_info():
        if name.config.name and name.config.name.startswith(prefixes):
            await js.delete_stream(name.config.name)


async def until_answering(nc: Client, subject: str, timeout: float = 10.0) -> None:
    """Wait until something answers requests on `subject` (a malformed probe is answered
    too). A subscription made on another connection can reach the server's interest graph
    after that connection's flush when the machine is loaded."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await nc.request(subject, b"{", timeout=1)
            return
        except (NoRespondersError, NatsTimeout):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"nothing answers on {subject}") from None
            await asyncio.sleep(0.05)


@pytest.fixture
def store(nc: Client, streams: Topology) -> EventStore:
    return EventStore(nc, streams)


@pytest.fixture
def dead_letters(nc: Client, streams: Topology) -> DeadLetters:
    return DeadLetters(nc, streams)
