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


async def append(store: EventStore, topology: Topology, event: Event, n: int) -> int:
    done = await store.append(event.subject(topology), [event], msg_id=f"e{n}", expected=None)
    return done.seq


async def test_a_projection_reads_only_its_kinds_and_its_checkpoint_reaches_the_streams_end(
    nc: Client, store: EventStore, streams: Topology, pool: asyncpg.Pool, dead_letters: DeadLetters
) -> None:
    for n, event in enumerate([request(1), cursor(1), request(2), request(3)]):
        last = await append(store, streams, event, n)
    projection = Cursors()
    runner = ProjectionRunner(
        projection,
        pool=pool,
        nc=nc,
        topology=streams,
        schema="cursors",
        dead_letters=dead_letters,
        idle_wait=0.2,
    )

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


async def test_an_idle_read_never_moves_its_checkpoint_over_a_matching_event_not_yet_read(
    nc: Client, store: EventStore, streams: Topology, pool: asyncpg.Pool, dead_letters: DeadLetters
) -> None:
    """The server updates a consumer's pending count after the stream stores a message, so
    an idle read must ask the stream itself whether an event of its kinds lies after its
    checkpoint (a read receipt was lost to that race under chaos)."""
    projection = Cursors()
    runner = ProjectionRunner(
        projection, pool=pool, nc=nc, topology=streams, schema="cursors", dead_letters=dead_letters
    )
    kinds = ("fanout",)
    checkpoint = await append(store, streams, request(1), 1)
    assert await runner.catch_up() == {"MESSAGES": checkpoint}
    await append(store, streams, cursor(1), 2)
    await append(store, streams, request(2), 3)

    stays = await runner._skip_unread(MESSAGES, kinds, checkpoint)
    assert stays == checkpoint, "a cursor after the checkpoint is still to be read"

    checkpoint = (await runner.catch_up())["MESSAGES"]
    assert projection.seen == ["CampaignFanoutProgressed"]
    end = await append(store, streams, request(3), 4)
    moved = await runner._skip_unread(MESSAGES, kinds, checkpoint)
    assert moved == end, "only requests follow the last cursor: the checkpoint moves to the end"
    async with pool.acquire() as conn:
        stored = await conn.fetchval('SELECT seq FROM "cursors".projection_checkpoints')
    assert stored == end
