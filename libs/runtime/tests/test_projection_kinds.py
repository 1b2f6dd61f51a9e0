"""A projection that reads only some subject kinds of a stream still reaches its end."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg
from nats.aio.client import Client

from wacast.contracts.base import Event
from wacast.contracts.messages import CampaignFanoutProgressed, MessageRequested
from wacast.contracts.streams import MESSAGES, StreamSpec
from wacast.contracts.subjects import Topology
from wacast.contracts.values import MessageContent
from wacast.runtime.deadletter import DeadLetters
from wacast.runtime.eventstore import EventStore
from wacast.runtime.projection import DbConnection, Envelope, ProjectionRunner

T0 = datetime(2030, 1, 1, tzinfo=UTC)


class Cursors:
    """Reads the fan-out cursors of the MESSAGES stream and nothing else of it."""

    name = "cursors"
    streams: Sequence[StreamSpec] = (MESSAGES,)
    kinds = {"MESSAGES": ("fanout",)}

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def migrate(self, conn: DbConnection) -> None:
        return None

    async def apply(self, conn: DbConnection, batch: Sequence[Envelope]) -> None:
        self.seen += [type(envelope.event).__name__ for envelope in batch]


def request(n: int) -> MessageRequested:
    return MessageRequested(
        tenant_id="acme",
        occurred_at=T0,
        message_id=f"m{n}",
        device_id="d1",
        lead_id=f"l{n}",
        origin="campaign",
        origin_id="c1",
        to="+14155550100",
        content=MessageContent(text="hi"),
    )


def cursor(n: int) -> CampaignFanoutProgressed:
    return CampaignFanoutProgressed(
        tenant_id="acme", occurred_at=T0, campaign_id="c1", cursor=f"l{n}", requested=n
    )


def cursors_runner(
    projection: Cursors,
    pool: asyncpg.Pool,
    nc: Client,
    streams: Topology,
    dead_letters: DeadLetters,
) -> ProjectionRunner:
    return ProjectionRunner(
        projection,
        pool=pool,
        nc=nc,
        topology=streams,
        schema="cursors",
        dead_letters=dead_letters,
        idle_wait=0.2,
    )


async def append(store: EventStore, topology: Topology, event: Event, n: int) -> int:
    done = await store.append(event.subject(topology), [event], msg_id=f"e{n}", expected=None)
    return done.seq


async def test_a_projection_reads_only_its_kinds_and_its_checkpoint_reaches_the_streams_end(
    nc: Client, store: EventStore, streams: Topology, pool: asyncpg.Pool, dead_letters: DeadLetters
) -> None:
    for n, event in enumerate([request(1), cursor(1), request(2), request(3)]):
        last = await append(store, streams, event, n)
    projection = Cursors()
    runner = cursors_runner(projection, pool, nc, streams, dead_letters)

    positions = await runner.catch_up()

    assert positions == {"MESSAGES": last}
    assert projection.seen == ["CampaignFanoutProgressed"]
    live = asyncio.create_task(runner.run())
    try:
        later = await append(store, streams, request(4), 9)
        assert await runner.wait_until("MESSAGES", later, timeout=5)
        async with pool.acquire() as conn:
            stored = await conn.fetchval('SELECT seq FROM "cursors".projection_checkpoints')
        assert stored == later
        assert projection.seen == ["CampaignFanoutProgressed"]
    finally:
        live.cancel()
        await asyncio.gather(live, return_exceptions=True)


async def test_catching_up_ends_when_the_streams_tail_was_deleted_and_never_passes_a_stored_event(
    nc: Client, store: EventStore, streams: Topology, pool: asyncpg.Pool, dead_letters: DeadLetters
) -> None:
    """An erasure can purge the last messages of a stream: its last sequence then names no
    message, and catching up must still end; but an event stored an instant ago (not
    delivered yet) is never passed over."""
    projection = Cursors()
    runner = cursors_runner(projection, pool, nc, streams, dead_letters)
    checkpoint = await append(store, streams, cursor(1), 1)
    assert await runner.catch_up() == {"MESSAGES": checkpoint}
    stored = await append(store, streams, cursor(2), 2)

    assert await runner._idle(MESSAGES, checkpoint) == checkpoint, "cursor 2 is still to read"

    purged = await append(store, streams, request(3), 3)
    await nc.jetstream().purge_stream(MESSAGES.name(streams), subject=request(3).subject(streams))
    assert await asyncio.wait_for(runner.catch_up(), 10) == {"MESSAGES": purged}
    assert projection.seen == ["CampaignFanoutProgressed", "CampaignFanoutProgressed"]
    assert stored < purged
    async with pool.acquire() as conn:
        saved = await conn.fetchval('SELECT seq FROM "cursors".projection_checkpoints')
    assert saved == purged


async def test_catching_up_stops_at_its_target_even_when_more_was_stored_meanwhile(
    nc: Client, store: EventStore, streams: Topology, pool: asyncpg.Pool, dead_letters: DeadLetters
) -> None:
    """A rebuild reports the sequence its tables are as of: events stored after it started
    (a late read receipt) are the live runner's, or a rebuild compared with the live tables
    is one receipt ahead of them."""
    projection = Cursors()
    runner = cursors_runner(projection, pool, nc, streams, dead_letters)
    await runner.prepare()
    target = 0
    for n in range(1, 4):
        stored = await append(store, streams, cursor(n), n)
        target = stored if n == 2 else target

    assert await runner._read(MESSAGES, until=target)

    assert projection.seen == ["CampaignFanoutProgressed"] * 2
    async with pool.acquire() as conn:
        saved = await conn.fetchval('SELECT seq FROM "cursors".projection_checkpoints')
    assert saved == target
    assert runner.position("MESSAGES") == target
