"""The projection runner applies each event exactly once, whatever happens around it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from wacast.contracts.devices import DeviceEvent, DeviceRegistered, DeviceRenamed
from wacast.contracts.streams import DEVICES, StreamSpec
from wacast.contracts.subjects import Topology
from wacast.runtime.deadletter import ERROR_HEADER, ORIGIN_SEQ, DeadLetters
from wacast.runtime.eventstore import Append, EventStore
from wacast.runtime.projection import (
    DbConnection,
    Envelope,
    ProjectionRunner,
    _delivery,
    _Pull,
    rebuild,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)


class DeviceNames:
    """A small real projection: device names, rename counts, last change time."""

    name = "device_names"
    streams: Sequence[StreamSpec] = (DEVICES,)

    def __init__(self, hang_at_batch: int = 0) -> None:
        self.batches = 0
        self.hang_at_batch = hang_at_batch
        self.hung = asyncio.Event()

    async def migrate(self, conn: DbConnection) -> None:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS device_names ("
            " device_id text PRIMARY KEY, name text NOT NULL, renames int NOT NULL,"
            " changed_at timestamptz NOT NULL, last_seq bigint NOT NULL)"
        )

    async def apply(self, conn: DbConnection, batch: Sequence[Envelope]) -> None:
        self.batches += 1
        for env in batch:
            event: DeviceEvent = env.event  # type: ignore[assignment]
            if isinstance(event, DeviceRegistered):
                await conn.execute(
                    "INSERT INTO device_names VALUES ($1, $2, 0, $3, $4)",
                    event.device_id,
                    event.name,
                    env.occurred_at,
                    env.seq,
                )
            elif isinstance(event, DeviceRenamed):
                if event.name == "poison":
                    raise ValueError("this projection cannot take that name")
                await conn.execute(
                    "UPDATE device_names SET name = $2, renames = renames + 1,"
                    " changed_at = $3, last_seq = $4 WHERE device_id = $1",
                    event.device_id,
                    event.name,
                    env.occurred_at,
                    env.seq,
                )
        if self.batches == self.hang_at_batch:
            self.hung.set()
            await asyncio.Event().wait()  # killed here, its rows written but not committed


def runner(
    pool: asyncpg.Pool,
    nc: Client,
    topology: Topology,
    schema: str = "live",
    batch: int = 7,
    hang_at_batch: int = 0,
) -> ProjectionRunner:
    return ProjectionRunner(
        DeviceNames(hang_at_batch),
        pool=pool,
        nc=nc,
        topology=topology,
        schema=schema,
        dead_letters=DeadLetters(nc, topology),
        batch_size=batch,
        idle_wait=0.05,
    )


async def write_history(
    store: EventStore, topology: Topology, devices: int, renames: int, first: int = 0
) -> int:
    items: list[Append] = []
    for d in range(first, first + devices):
        dev = f"dev{d}"
        subject = topology.device("acme", dev)
        at = T0 + timedelta(minutes=d)
        items.append(
            Append(
                subject,
                DeviceRegistered(
                    tenant_id="acme", occurred_at=at, device_id=dev, name=f"phone {d}", driver="sim"
                ),
                f"reg-{dev}",
            )
        )
        for r in range(renames):
            items.append(
                Append(
                    subject,
                    DeviceRenamed(
                        tenant_id="acme",
                        occurred_at=at + timedelta(seconds=r + 1),
                        device_id=dev,
                        name=f"phone {d} v{r}",
                    ),
                    f"ren-{dev}-{r}",
                )
            )
    last = 0
    for start in range(0, len(items), 100):
        last = (await store.append_batch(items[start : start + 100])).seq
    return last


async def table(pool: asyncpg.Pool, schema: str = "live") -> list[tuple[object, ...]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(f'SELECT * FROM "{schema}".device_names ORDER BY device_id')
    return [tuple(r) for r in rows]


async def test_a_clean_pass_applies_every_event_once_with_event_timestamps(
    pool: asyncpg.Pool, nc: Client, store: EventStore, streams: Topology
) -> None:
    last = await write_history(store, streams, devices=20, renames=3)

    positions = await runner(pool, nc, streams).catch_up()

    assert positions[DEVICES.key] == last
    rows = await table(pool)
    assert len(rows) == 20
    assert rows[0] == ("dev0", "phone 0 v2", 3, T0 + timedelta(seconds=3), rows[0][4])


async def test_redelivered_events_are_not_applied_twice(
    pool: asyncpg.Pool, nc: Client, store: EventStore, streams: Topology
) -> None:
    await write_history(store, streams, devices=5, renames=2)
    live = runner(pool, nc, streams)
    await live.catch_up()
    before = await table(pool)

    # The same events come again (a consumer redelivery): the checkpoint turns them away.
    js = nc.jetstream()
    sub = await js.pull_subscribe("", durable=None, stream=DEVICES.name(streams))
    again = await sub.fetch(15, timeout=2)
    assert await live._apply(DEVICES, again, expected=live.position(DEVICES.key)) == live.position(
        DEVICES.key
    )
    await live.catch_up()

    assert await table(pool) == before


async def test_a_runner_killed_between_batches_resumes_to_the_same_rows(
    pool: asyncpg.Pool, nc: Client, store: EventStore, streams: Topology, database_url: str
) -> None:
    await write_history(store, streams, devices=30, renames=4)
    first = runner(pool, nc, streams, batch=5, hang_at_batch=9)
    task = asyncio.create_task(first.run())
    projection = first.projection
    assert isinstance(projection, DeviceNames)
    await asyncio.wait_for(projection.hung.wait(), 10)
    assert 0 < first.position(DEVICES.key) < 150
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    await runner(pool, nc, streams, batch=5).catch_up()
    await runner(pool, nc, streams, schema="clean", batch=1000).catch_up()
    assert await table(pool) == await table(pool, "clean")
    assert len(await table(pool)) == 30


async def test_rebuild_from_zero_equals_the_live_tables_and_the_live_runner_follows(
    pool: asyncpg.Pool, nc: Client, store: EventStore, streams: Topology
) -> None:
    await write_history(store, streams, devices=10, renames=2)
    live = runner(pool, nc, streams)
    task = asyncio.create_task(live.run())
    assert await live.wait_until(DEVICES.key, 30, timeout=10)
    before = await table(pool)

    await rebuild(
        DeviceNames(),
        pool=pool,
        nc=nc,
        topology=streams,
        schema="live",
        dead_letters=DeadLetters(nc, streams),
    )
    assert await table(pool) == before

    last = await write_history(store, streams, devices=2, renames=2, first=10)
    last_new = await store.append(
        streams.device("acme", "dev11"),
        [DeviceRenamed(tenant_id="acme", occurred_at=T0, device_id="dev11", name="after")],
        msg_id="after",
        expected=None,
    )
    assert last_new.seq > last
    assert await live.wait_until(DEVICES.key, last_new.seq, timeout=10)
    rows = {r[0]: r for r in await table(pool)}
    assert rows["dev11"][1] == "after"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_malformed_payload_goes_to_the_dead_letter_stream_and_the_runner_goes_on(
    pool: asyncpg.Pool, nc: Client, store: EventStore, streams: Topology
) -> None:
    js = nc.jetstream()
    await write_history(store, streams, devices=2, renames=0)
    bad = await js.publish(streams.device("acme", "junk"), b'{"type": "DeviceRegistered", "x"')
    await store.append(
        streams.device("acme", "dev0"),
        [DeviceRenamed(tenant_id="acme", occurred_at=T0, device_id="dev0", name="poison")],
        msg_id="p",
        expected=None,
    )
    await write_history(store, streams, devices=1, renames=0, first=2)  # after both

    await runner(pool, nc, streams).catch_up()

    assert [r[0] for r in await table(pool)] == ["dev0", "dev1", "dev2"]
    dlq = await js.pull_subscribe("", durable=None, stream=streams.stream("DLQ"))
    letters = await dlq.fetch(2, timeout=2)
    assert {m.headers[ORIGIN_SEQ] for m in letters if m.headers} == {str(bad.seq), str(bad.seq + 1)}
    assert all(m.headers and m.headers[ERROR_HEADER] for m in letters)
    assert letters[0].data == b'{"type": "DeviceRegistered", "x"'


class BrokenConnection(DeviceNames):
    """Its first applies fail the way a connection broken by a Postgres restart does."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def apply(self, conn: DbConnection, batch: Sequence[Envelope]) -> None:
        if self.failures:
            self.failures -= 1
            raise asyncpg.InternalClientError(
                "cannot switch to state 15; another operation (2) is in progress"
            )
        await super().apply(conn, batch)


async def test_a_broken_database_connection_is_retried_never_dead_lettered(
    pool: asyncpg.Pool, nc: Client, store: EventStore, streams: Topology
) -> None:
    await write_history(store, streams, devices=3, renames=1)
    flaky = ProjectionRunner(
        BrokenConnection(failures=2),  # the batch, then the first event on its own
        pool=pool,
        nc=nc,
        topology=streams,
        schema="live",
        dead_letters=DeadLetters(nc, streams),
        idle_wait=0.05,
    )

    await asyncio.wait_for(flaky.catch_up(), 30)

    rows = await table(pool)
    assert [(r[0], r[1], r[2]) for r in rows] == [(f"dev{d}", f"phone {d} v0", 1) for d in range(3)]
    dlq = await nc.jetstream().stream_info(streams.stream("DLQ"))
    assert dlq.state.messages == 0


async def test_read_your_writes_waits_for_the_projection_and_gives_up_when_bounded(
    pool: asyncpg.Pool, nc: Client, store: EventStore, streams: Topology
) -> None:
    live = runner(pool, nc, streams)
    assert not await live.wait_until(DEVICES.key, 1, timeout=0.1)
    task = asyncio.create_task(live.run())
    last = await write_history(store, streams, devices=1, renames=0)
    assert await live.wait_until(DEVICES.key, last, timeout=5)
    assert len(await table(pool)) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_message_lost_on_the_way_is_read_again_never_jumped_over(
    pool: asyncpg.Pool,
    nc: Client,
    store: EventStore,
    streams: Topology,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A delivery can vanish between server and client (a reconnect while a pull request
    stays open); the consumer sequence shows the hole, and the runner reads again from its
    checkpoint instead of applying what came after it."""
    await write_history(store, streams, devices=10, renames=2)
    receive = _Pull._receive
    dropped: list[int] = []

    async def lose_the_fifth(pull: _Pull, msg: Msg) -> None:
        if msg.reply and not dropped and _delivery(msg)[1] == 5:
            dropped.append(_delivery(msg)[0])
            return
        await receive(pull, msg)

    monkeypatch.setattr(_Pull, "_receive", lose_the_fifth)
    # One pull request asks for more than is stored, so it ends by expiring (not by a
    # missing count that would stall it) and nothing else shows the hole.
    await runner(pool, nc, streams, batch=1000).catch_up()
    await runner(pool, nc, streams, schema="clean", batch=1000).catch_up()

    assert dropped, "no delivery was dropped: the test did not test anything"
    assert await table(pool) == await table(pool, "clean")
