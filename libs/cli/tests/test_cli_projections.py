"""`wacast projections rebuild`: what it rebuilds equals what the live runner built."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from nats.aio.client import Client

from wacast.cli.commands_common import CliError, Options
from wacast.cli.commands_projections import rebuild
from wacast.contracts.devices import DeviceEvent, DeviceRegistered, DeviceRenamed
from wacast.contracts.streams import DEVICES, StreamSpec
from wacast.contracts.subjects import Topology
from wacast.runtime.deadletter import DeadLetters
from wacast.runtime.eventstore import Append, EventStore
from wacast.runtime.projection import DbConnection, Envelope, ProjectionRunner
from wacast.runtime.registry import ProjectionRegistration, discover, registrations_of

T0 = datetime(2030, 1, 1, tzinfo=UTC)


class DeviceNames:
    name = "device_names"
    streams: Sequence[StreamSpec] = (DEVICES,)

    async def migrate(self, conn: DbConnection) -> None:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS device_names (device_id text PRIMARY KEY,"
            " name text NOT NULL, renames int NOT NULL, changed_at timestamptz NOT NULL)"
        )

    async def apply(self, conn: DbConnection, batch: Sequence[Envelope]) -> None:
        for env in batch:
            event: DeviceEvent = env.event  # type: ignore[assignment]
            if isinstance(event, DeviceRegistered):
                await conn.execute(
                    "INSERT INTO device_names VALUES ($1, $2, 0, $3)",
                    event.device_id,
                    event.name,
                    env.occurred_at,
                )
            elif isinstance(event, DeviceRenamed):
                await conn.execute(
                    "UPDATE device_names SET name = $2, renames = renames + 1, changed_at = $3"
                    " WHERE device_id = $1",
                    event.device_id,
                    event.name,
                    env.occurred_at,
                )


REGISTRATION = ProjectionRegistration("device_names", "devnames", DeviceNames, "test projection")


async def write_history(store: EventStore, topology: Topology) -> int:
    items: list[Append] = []
    for d in range(40):
        subject = topology.device("acme", f"d{d}")
        at = T0 + timedelta(minutes=d)
        registered = DeviceRegistered(
            tenant_id="acme", occurred_at=at, device_id=f"d{d}", name=f"n{d}", driver="sim"
        )
        items.append(Append(subject, registered, f"r{d}"))
        for r in range(d % 4):
            renamed = DeviceRenamed(
                tenant_id="acme",
                occurred_at=at + timedelta(seconds=r),
                device_id=f"d{d}",
                name=f"n{d}.{r}",
            )
            items.append(Append(subject, renamed, f"r{d}.{r}"))
    last = 0
    for start in range(0, len(items), 50):
        last = (await store.append_batch(items[start : start + 50])).seq
    return last


async def table(pool: asyncpg.Pool) -> list[tuple[object, ...]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM devnames.device_names ORDER BY device_id")
    return [tuple(row) for row in rows]


async def test_rebuild_through_the_cli_equals_live(
    pool: asyncpg.Pool,
    nc: Client,
    store: EventStore,
    streams: Topology,
    nats_url: str,
    database_url: str,
) -> None:
    last = await write_history(store, streams)
    live = ProjectionRunner(
        DeviceNames(),
        pool=pool,
        nc=nc,
        topology=streams,
        schema="devnames",
        dead_letters=DeadLetters(nc, streams),
        idle_wait=0.05,
    )
    await live.catch_up()
    built_live = await table(pool)
    async with pool.acquire() as conn:  # damage the live tables: rebuild must not care
        await conn.execute("DELETE FROM devnames.device_names WHERE device_id = 'd3'")

    opts = Options(nats_url, streams.prefix, database_url, quiet=True)
    reached = await rebuild(opts, None, [REGISTRATION])

    assert reached == {"device_names": {"DEVICES": last}}
    assert await table(pool) == built_live
    assert len(built_live) == 40


async def test_rebuild_with_nothing_registered_says_so(
    nats_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    opts = Options(nats_url, "nothing", "postgresql://nowhere:1/x", quiet=True)
    assert await rebuild(opts, None, []) == {}
    assert "no projections are registered" in capsys.readouterr().err


async def test_an_unknown_projection_name_or_a_missing_stream_is_a_clear_error(
    nats_url: str, database_url: str, topology: Topology
) -> None:
    opts = Options(nats_url, topology.prefix, database_url, quiet=True)
    with pytest.raises(CliError, match=r"no projection named 'nope'.*device_names"):
        await rebuild(opts, "nope", [REGISTRATION])
    with pytest.raises(CliError, match="does not exist"):
        await rebuild(opts, "device_names", [REGISTRATION])


class FakeEntryPoint:
    def __init__(self, name: str, loaded: object) -> None:
        self.name, self.value, self._loaded = name, f"tests:{name}", loaded

    def load(self) -> object:
        return self._loaded


def test_registrations_come_as_one_a_list_or_a_callable() -> None:
    other = ProjectionRegistration("other", "other", DeviceNames)
    found = discover(
        [
            FakeEntryPoint("one", REGISTRATION),  # type: ignore[list-item]
            FakeEntryPoint("many", lambda: [other]),  # type: ignore[list-item]
        ]
    )
    assert [r.name for r in found] == ["device_names", "other"]
    assert registrations_of((REGISTRATION,)) == [REGISTRATION]


def test_bad_registrations_are_refused() -> None:
    from wacast.runtime.registry import RegistryError

    with pytest.raises(RegistryError, match="exists"):
        discover([FakeEntryPoint("a", REGISTRATION), FakeEntryPoint("b", REGISTRATION)])  # type: ignore[list-item]
    with pytest.raises(RegistryError, match="expected a ProjectionRegistration"):
        discover([FakeEntryPoint("a", 42)])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="lower-case identifier"):
        ProjectionRegistration("x", 'bad"schema', DeviceNames)
