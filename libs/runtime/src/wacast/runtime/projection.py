"""The projection runner: streams into Postgres tables, exactly once.

The Postgres checkpoint per (projection, stream) is the only cursor. The runner reads each
stream from checkpoint + 1 with an ephemeral, unacknowledged pull consumer (no durable ack
floor to disagree with), applies a batch, and commits the rows and the new checkpoint in one
transaction. The checkpoint update is compare-and-set, so a runner whose schema was swapped
by a rebuild (or that raced another replica) notices, rolls back and resumes from the table.
A payload that cannot be decoded, or an event whose apply keeps failing, goes to the
dead-letter stream and the runner goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from prometheus_client import Counter, Gauge, Histogram

from wacast.contracts.base import Event
from wacast.contracts.streams import StreamSpec, codec
from wacast.contracts.subjects import Topology
from wacast.runtime.deadletter import DeadLetters

log = logging.getLogger("wacast.projection")

APPLIED = Counter("wacast_projection_events_applied_total", "Events applied", ["projection"])
LAG = Gauge(
    "wacast_projection_lag_events", "Events behind the stream's end", ["projection", "stream"]
)
BATCH_SECONDS = Histogram(
    "wacast_projection_batch_seconds", "Time to apply and commit one batch", ["projection"]
)


@dataclass(frozen=True, slots=True)
class Envelope:
    """An event as a projection sees it: where it sits, and when it happened."""

    stream: str
    seq: int
    subject: str
    event: Event

    @property
    def occurred_at(self) -> datetime:
        return self.event.occurred_at


DbConnection = asyncpg.Connection | PoolConnectionProxy
"""What projections write through: a plain or a pooled asyncpg connection."""


class Projection(Protocol):
    """Tables built from events. `apply` must only use event data, never `now()`.

    A projection that needs only some subjects of a stream may say which with an attribute
    `kinds` (stream key -> subject kinds, e.g. `{"MESSAGES": ("msg", "fanout")}`): the
    runner still reads the whole stream, so its checkpoint passes every message, but hands
    the projection only those (the others are not even decoded). Reading only its kinds
    would need an idle probe per kind before moving the checkpoint over the rest; reading
    everything needs none, for a few more messages.
    """

    name: str
    streams: Sequence[StreamSpec]

    async def migrate(self, conn: DbConnection) -> None:
        """Create the tables in the current schema (search_path is set by the runner)."""

    async def apply(self, conn: DbConnection, batch: Sequence[Envelope]) -> None:
        """Write the effect of `batch` (one stream's events, in order)."""


TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InvalidCachedStatementError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.AdminShutdownError,
    asyncpg.InternalClientError,
)
"""Failures of the database or the bus, not of an event: retry, never dead-letter.
`InternalClientError` ("cannot switch to state …; another operation is in progress") is a
connection left broken, e.g. by a Postgres restart mid-commit (seen in the chaos test)."""


class CheckpointMoved(Exception):
    """The stored checkpoint is not where this runner left it: resume from the table."""


RETRY_WHOLE: tuple[type[BaseException], ...] = (CheckpointMoved, *TRANSIENT)


CHECKPOINTS_DDL = """
CREATE TABLE IF NOT EXISTS projection_checkpoints (
    projection text NOT NULL,
    stream text NOT NULL,
    seq bigint NOT NULL,
    PRIMARY KEY (projection, stream)
)
"""


async def prepare_schema(conn: DbConnection, schema: str, projection: Projection) -> None:
    async with conn.transaction():
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'SET LOCAL search_path TO "{schema}"')
        await conn.execute(CHECKPOINTS_DDL)
        await projection.migrate(conn)
        for spec in projection.streams:
            await conn.execute(
                "INSERT INTO projection_checkpoints VALUES ($1, $2, 0) ON CONFLICT DO NOTHING",
                projection.name,
                spec.key,
            )


class ProjectionRunner:
    def __init__(
        self,
        projection: Projection,
        *,
        pool: asyncpg.Pool,
        nc: Client,
        topology: Topology,
        schema: str,
        dead_letters: DeadLetters,
        batch_size: int = 1000,
        idle_wait: float = 0.5,
    ) -> None:
        self.projection = projection
        self.pool = pool
        self.nc = nc
        self.js = nc.jetstream()
        self.topology = topology
        self.schema = schema
        self.dead_letters = dead_letters
        self.batch_size = batch_size
        self.idle_wait = idle_wait
        self._applied: dict[str, int] = {}
        self._progress = asyncio.Condition()
        self._subjects = {
            spec.key: tuple(f"{topology.prefix}.{kind}." for kind in kinds)
            for spec in projection.streams
            if (kinds := subject_kinds(projection, spec))
        }
        """Stream key -> subject prefixes the projection reads (absent: all of it)."""

    # reading your own writes ---------------------------------------------------
    def position(self, stream_key: str) -> int:
        return self._applied.get(stream_key, 0)

    async def wait_until(self, stream_key: str, seq: int, timeout: float = 2.0) -> bool:
        """Wait (bounded) until `seq` of `stream_key` is applied; False when it was not."""
        if self.position(stream_key) >= seq:
            return True
        async with self._progress:
            try:
                await asyncio.wait_for(
                    self._progress.wait_for(lambda: self.position(stream_key) >= seq), timeout
                )
            except TimeoutError:
                return False
        return True

    # running ----------------------------------------------------------------------
    async def prepare(self) -> None:
        async with self.pool.acquire() as conn:
            await prepare_schema(conn, self.schema, self.projection)

    async def run(self) -> None:
        """Follow every stream of the projection until cancelled."""
        await self.prepare()
        async with asyncio.TaskGroup() as group:
            for spec in self.projection.streams:
                group.create_task(self._follow(spec, until=None))

    async def catch_up(self) -> dict[str, int]:
        """Apply everything stored now, then return; used by rebuild and tests."""
        await self.prepare()
        targets: dict[str, int] = {}
        for spec in self.projection.streams:
            info = await self.js.stream_info(spec.name(self.topology))
            targets[spec.key] = int(info.state.last_seq)
        for spec in self.projection.streams:
            await self._follow(spec, until=targets[spec.key])
        return targets

    async def _follow(self, spec: StreamSpec, until: int | None) -> None:
        delay = 0.1
        while True:
            try:
                if await self._read(spec, until):
                    return
            except CheckpointMoved:
                log.info("checkpoint moved under %s/%s; resuming", self.projection.name, spec.key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                stop_if_cancelled()
                # The bus or the database went away: resume from the checkpoint when back.
                log.warning("%s/%s interrupted: %r", self.projection.name, spec.key, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            stop_if_cancelled()

    async def _checkpoint(self, spec: StreamSpec) -> int:
        async with self.pool.acquire() as conn:
            seq = await conn.fetchval(
                f'SELECT seq FROM "{self.schema}".projection_checkpoints '
                "WHERE projection = $1 AND stream = $2",
                self.projection.name,
                spec.key,
            )
        return int(seq or 0)

    async def _read(self, spec: StreamSpec, until: int | None) -> bool:
        position = await self._checkpoint(spec)
        await self._advance(spec.key, position)
        if until is not None and position >= until:
            return True
        stream = spec.name(self.topology)
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=position + 1,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=60.0,
            max_waiting=1,
            mem_storage=True,
        )
        consumer = await self.js.add_consumer(stream, config)
        pull = _Pull(self.nc, stream, str(consumer.name), self.batch_size, self.idle_wait)
        await pull.start()
        try:
            while True:
                stop_if_cancelled()
                msgs = await pull.next_batch()
                if not msgs:  # the pull request expired: nothing new for idle_wait
                    position = await self._idle(spec, position)
                    if until is not None and position >= until:
                        return True
                    continue
                if until is not None and _stream_seq(msgs[-1]) > until:
                    await self._apply_until(spec, msgs, position, until)
                    return True
                position = await self._apply(spec, msgs, expected=position)
                if until is not None and position >= until:
                    return True
        finally:
            with contextlib.suppress(Exception):
                await pull.stop()
            with contextlib.suppress(Exception):
                await self.js.delete_consumer(stream, str(consumer.name))

    async def _apply_until(
        self, spec: StreamSpec, msgs: list[Msg], position: int, until: int
    ) -> None:
        """Catching up stops at its target exactly: what was stored after it started is left
        to the live runner, so a rebuild's tables are the state as of the sequence it
        reports (a rebuild compared with live tables must not be a receipt ahead)."""
        within = [msg for msg in msgs if _stream_seq(msg) <= until]
        if within:
            position = await self._apply(spec, within, expected=position)
        if position < until:  # nothing (left) up to the target: only the checkpoint moves
            await self._pass(spec, position, until)

    async def _idle(self, spec: StreamSpec, position: int) -> int:
        """The read went idle: report the lag, and pass a deleted tail.

        When no message is stored after the checkpoint up to the stream's last sequence,
        those were deleted (an erasure purges subjects) and the checkpoint moves to the end,
        or catching up to that sequence would never end. The stream itself is asked: a
        message stored an instant ago may not be delivered yet, and must not be passed over.
        """
        stream = spec.name(self.topology)
        end = int((await self.js.stream_info(stream)).state.last_seq)
        LAG.labels(self.projection.name, spec.key).set(max(0, end - position))
        if end <= position:
            return position
        try:
            found = await self.js.get_msg(stream, seq=position + 1, subject=">", next=True)
        except NotFoundError:
            found = None
        if found is not None and (found.seq is None or found.seq <= end):
            return position
        await self._pass(spec, position, end)
        return end

    async def _pass(self, spec: StreamSpec, position: int, to: int) -> None:
        """Move the checkpoint over sequences that hold nothing to apply."""
        await self._commit(spec, [], position, to)
        await self._advance(spec.key, to)

    async def _apply(self, spec: StreamSpec, msgs: list[Msg], expected: int) -> int:
        decoder = codec(spec)
        wanted = self._subjects.get(spec.key)
        batch: list[Envelope] = []
        poison: list[tuple[Msg, BaseException]] = []
        last = expected
        for msg in msgs:
            seq = _stream_seq(msg)
            if seq <= last:
                continue  # already applied: a redelivered message
            last = seq
            if wanted is not None and not msg.subject.startswith(wanted):
                continue  # not for this projection: only the checkpoint passes it
            try:
                batch.append(Envelope(spec.key, seq, msg.subject, decoder.decode(msg.data)))
            except Exception as exc:
                poison.append((msg, exc))
        for msg, error in poison:
            await self._dead_letter(spec, msg, error)
        if last == expected:
            return expected
        started = time.perf_counter()
        try:
            await self._commit(spec, batch, expected, last)
        except RETRY_WHOLE:
            raise
        except Exception as exc:
            log.warning("batch of %s failed (%s); applying one by one", spec.key, exc)
            await self._apply_one_by_one(spec, batch, msgs, expected, last)
        BATCH_SECONDS.labels(self.projection.name).observe(time.perf_counter() - started)
        APPLIED.labels(self.projection.name).inc(len(batch))
        await self._advance(spec.key, last)
        return last

    async def _apply_one_by_one(
        self, spec: StreamSpec, batch: list[Envelope], msgs: list[Msg], expected: int, last: int
    ) -> None:
        by_seq = {_stream_seq(m): m for m in msgs}
        position = expected
        for envelope in batch:
            try:
                await self._commit(spec, [envelope], position, envelope.seq)
            except RETRY_WHOLE:
                raise
            except Exception as exc:
                await self._dead_letter(spec, by_seq[envelope.seq], exc)
                await self._commit(spec, [], position, envelope.seq)
            position = envelope.seq
        if position < last:
            await self._commit(spec, [], position, last)

    async def _commit(
        self, spec: StreamSpec, batch: Sequence[Envelope], old: int, new: int
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(f'SET LOCAL search_path TO "{self.schema}"')
            if batch:
                await self.projection.apply(conn, batch)
            status = await conn.execute(
                "UPDATE projection_checkpoints SET seq = $4 "
                "WHERE projection = $1 AND stream = $2 AND seq = $3",
                self.projection.name,
                spec.key,
                old,
                new,
            )
            if status != "UPDATE 1":
                raise CheckpointMoved(spec.key)

    async def _dead_letter(self, spec: StreamSpec, msg: Msg, exc: BaseException) -> None:
        log.error("dead-lettering %s seq %s: %.500s", spec.key, _stream_seq(msg), exc)
        await self.dead_letters.send(
            stream=spec.key,
            consumer=f"projection-{self.projection.name}",
            subject=msg.subject,
            seq=_stream_seq(msg),
            data=msg.data,
            headers=msg.headers,
            error=exc,
        )

    async def _advance(self, stream_key: str, seq: int) -> None:
        async with self._progress:
            self._applied[stream_key] = seq
            self._progress.notify_all()


def subject_kinds(projection: Projection, spec: StreamSpec) -> tuple[str, ...]:
    """The subject kinds of `spec` the projection reads (empty: the whole stream)."""
    kinds: Mapping[str, Sequence[str]] = getattr(projection, "kinds", None) or {}
    return tuple(kinds.get(spec.key, ()))


def stop_if_cancelled() -> None:
    """Raise `CancelledError` when the running task was asked to stop.

    On Python 3.11, `asyncio.wait_for` (used inside nats-py and asyncpg) may swallow a
    cancellation that arrives as the awaited call completes, and a `timeout` that fires at
    that moment turns it into `TimeoutError`; a loop that retries on errors would then run
    forever. The request stays counted on the task (`cancelling()`), so check it.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError()


ACK_V1_TOKENS = 9
"""`$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`"""


def _ack_position(msg: Msg) -> tuple[int, int]:
    """(stream sequence, messages pending after it) of a delivered message."""
    stream_seq, _, pending = _delivery(msg)
    return stream_seq, pending


def _delivery(msg: Msg) -> tuple[int, int, int]:
    """(stream sequence, consumer sequence, messages pending after it) of a delivered message.

    Read from its ack subject; cheaper than `msg.metadata`, which also builds a timestamp and
    two dataclasses per message. Other subject shapes (with a domain) go through `metadata`.
    """
    tokens = (msg.reply or "").split(".")
    if len(tokens) == ACK_V1_TOKENS:
        return int(tokens[5]), int(tokens[6]), int(tokens[8])
    meta = msg.metadata
    return meta.sequence.stream, meta.sequence.consumer, meta.num_pending


def _stream_seq(msg: Msg) -> int:
    return _ack_position(msg)[0]


class PullFailed(Exception):
    """The server ended a pull request with an error, or lost it: resume from the table."""


class _Pull:
    """One ephemeral pull consumer, read through a plain subscription.

    nats-py's `fetch` awaits every message through a task and a timeout of its own, which
    cost more than decoding and applying the event. Here the subscription callback appends to
    a buffer and the runner takes a batch at a time. The next pull request goes out as soon as
    the previous one is used up, so the server delivers the next batch while this one is
    applied; at most about two batches are buffered. One pull request is open at a time, as
    the consumer's `max_waiting=1` requires.
    """

    def __init__(self, nc: Client, stream: str, consumer: str, batch: int, expires: float) -> None:
        self.nc = nc
        self.batch = batch
        self.subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self.request = json.dumps({"batch": batch, "expires": int(expires * 1e9)}).encode()
        self.stall = 2 * expires + 2.0
        self.inbox = nc.new_inbox()
        self.buffer: deque[Msg] = deque()
        self.wanted = 0
        """Messages the open pull request may still deliver (0: none is open)."""
        self.idle = False
        """The last pull request expired: nothing new was stored meanwhile."""
        self.error: Exception | None = None
        self.delivered = 0
        """The consumer sequence of the last message received: each next one is one more."""
        self.arrived = asyncio.Event()
        self.sub: Subscription | None = None

    async def start(self) -> None:
        self.sub = await self.nc.subscribe(self.inbox, cb=self._receive)

    async def stop(self) -> None:
        if self.sub is not None:
            await self.sub.unsubscribe()

    async def _receive(self, msg: Msg) -> None:
        if msg.reply:  # a stored message; status messages have no ack subject
            consumer_seq = _delivery(msg)[1]
            if consumer_seq != self.delivered + 1 and self.error is None:
                # Lost on the way (e.g. a reconnect while a pull request stayed open): what
                # follows must not be applied over the hole.
                self.error = PullFailed(
                    f"delivery {self.delivered + 1} never arrived (next came {consumer_seq})"
                )
            self.delivered = consumer_seq
            self.buffer.append(msg)
            self.wanted -= 1
        else:
            headers = msg.headers or {}
            status = headers.get("Status", "")
            if status == "100":  # idle heartbeat
                return
            self.wanted = 0
            if status in ("404", "408"):  # no messages; request expired
                self.idle = True
            else:
                self.error = PullFailed(f"pull ended: {status} {headers.get('Description', '')}")
        self.arrived.set()

    def _ready(self) -> bool:
        if not self.buffer:
            return False
        if len(self.buffer) >= self.batch or self.wanted <= 0:
            return True
        return _ack_position(self.buffer[-1])[1] == 0  # the stream has nothing more yet

    async def _pull(self) -> None:
        self.wanted = self.batch
        self.idle = False
        await self.nc.publish(self.subject, self.request, reply=self.inbox)

    async def next_batch(self) -> list[Msg]:
        """Up to `batch` messages in stream order; [] when a pull request expired empty."""
        while True:
            self.arrived.clear()
            if self.error is not None:
                raise self.error
            if self._ready():
                break
            if self.wanted <= 0:
                if self.idle:
                    self.idle = False
                    return []
                await self._pull()
                continue
            try:
                async with asyncio.timeout(self.stall):
                    await self.arrived.wait()
            except TimeoutError:
                raise PullFailed("the pull request neither delivered nor expired") from None
        taken = [self.buffer.popleft() for _ in range(min(self.batch, len(self.buffer)))]
        if self.wanted <= 0 and len(self.buffer) < self.batch:
            await self._pull()  # the server sends the next batch while this one is applied
        return taken


async def rebuild(
    projection: Projection,
    *,
    pool: asyncpg.Pool,
    nc: Client,
    topology: Topology,
    schema: str,
    dead_letters: DeadLetters,
) -> dict[str, int]:
    """Replay every stream into a shadow schema, then swap it in by rename in one transaction.

    Live runners on the old schema notice the swap through their checkpoint and resume from
    the rebuilt tables' position.
    """
    shadow = f"{schema}__rebuild"
    async with pool.acquire() as conn:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{shadow}" CASCADE')
    runner = ProjectionRunner(
        projection, pool=pool, nc=nc, topology=topology, schema=shadow, dead_letters=dead_letters
    )
    positions = await runner.catch_up()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.execute(f'ALTER SCHEMA "{shadow}" RENAME TO "{schema}"')
    return positions
