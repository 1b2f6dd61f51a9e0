"""The one way to append and read events.

Appends to an aggregate subject carry `Nats-Expected-Last-Subject-Sequence` (optimistic
concurrency: the loser of a race gets `Conflict`) and a deterministic `Nats-Msg-Id` (a retried
publish is a no-op within the duplicate window). Hot paths append many events in one JetStream
atomic batch: stored all together or not at all, with the same per-message checks.

Every append carries the current trace context in its headers (when there is a span), and
counts what it stored in `wacast_eventstore_appends_total{stream,type}` (stream key without
the namespace, event type: bounded, and together a funnel of every state change) and each
lost race in `wacast_eventstore_conflicts_total`.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import APIError, NotFoundError
from prometheus_client import Counter as Metric
from prometheus_client import Histogram

from wacast.contracts.base import Event, encode
from wacast.contracts.streams import StreamSpec, codec
from wacast.contracts.subjects import Topology
from wacast.runtime.tracing import has_active_span, inject

APPENDS = Metric(
    "wacast_eventstore_appends_total",
    "Events stored by appends, by stream and event type (skipped duplicates not counted)",
    ["stream", "type"],
)
CONFLICTS = Metric(
    "wacast_eventstore_conflicts_total",
    "Appends refused because the aggregate moved on (optimistic concurrency conflicts)",
)
APPEND_SECONDS = Histogram(
    "wacast_eventstore_append_seconds",
    "Time for one append or atomic batch to be acknowledged",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

WRONG_LAST_SEQUENCE = 10071
DUPLICATE_IN_BATCH = 10201
MAX_BATCH = 1000
"""The server's default limit of messages in one atomic batch."""
LAST_OF_CHUNK = 256
"""Subjects per batched direct get in `EventStore.last_of`."""

EXPECTED_SEQ = "Nats-Expected-Last-Subject-Sequence"
MSG_ID = "Nats-Msg-Id"


class Conflict(Exception):
    """Someone appended to the aggregate first: reload and decide again."""

    def __init__(self, subject: str, expected: int | None, detail: str = "") -> None:
        super().__init__(f"{subject}: expected last sequence {expected}: {detail}".strip())
        self.subject = subject
        self.expected = expected


class AppendFailed(Exception):
    """The server refused an append for a reason other than a concurrent writer."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"append refused ({code}): {detail}")
        self.code = code


class DuplicateInBatch(AppendFailed):
    """An atomic batch held a message id already stored (or twice): nothing was stored.

    Unlike a single publish, the server does not skip the duplicate; the caller finds out
    which items exist already (e.g. by their subject's last sequence) and retries without.
    """


@dataclass(frozen=True, slots=True)
class Append:
    """One event for one subject inside a batch."""

    subject: str
    event: Event
    msg_id: str
    expected: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Appended:
    stream: str
    seq: int
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class Stored:
    """An event read back with where it sits in its stream."""

    seq: int
    subject: str
    event: Event
    msg_id: str = ""
    """Its `Nats-Msg-Id` (whose decision it was: a writer recognises its own appends)."""


class EventStore:
    def __init__(self, nc: Client, topology: Topology, timeout: float = 5.0) -> None:
        self.nc = nc
        self.js = nc.jetstream(timeout=timeout)
        self.topology = topology
        self.timeout = timeout

    async def append(
        self,
        subject: str,
        events: Sequence[Event],
        *,
        msg_id: str,
        expected: int | None,
        headers: dict[str, str] | None = None,
    ) -> Appended:
        """Append `events` to one aggregate subject; all or nothing.

        `expected` is the subject's last sequence the decision was based on (0: none yet,
        None: no check). `msg_id` identifies this decision, so a retry stores nothing new.
        """
        if not events:
            raise ValueError("nothing to append")
        if len(events) == 1:
            hdrs = {MSG_ID: msg_id, **_traced(headers)}
            if expected is not None:
                hdrs[EXPECTED_SEQ] = str(expected)
            started = time.perf_counter()
            appended = await self._publish_one(subject, encode(events[0]), hdrs, expected)
            APPEND_SECONDS.observe(time.perf_counter() - started)
            if not appended.duplicate:
                APPENDS.labels(self._key(appended.stream), type(events[0]).__name__).inc()
            return appended
        items = [
            Append(
                subject,
                event,
                msg_id=f"{msg_id}.{i}",
                expected=expected if i == 0 else None,
                headers=headers or {},
            )
            for i, event in enumerate(events)
        ]
        return await self.append_batch(items)

    async def _publish_one(
        self, subject: str, payload: bytes, headers: dict[str, str], expected: int | None
    ) -> Appended:
        try:
            ack = await self.js.publish(subject, payload, headers=headers, timeout=self.timeout)
        except APIError as exc:
            raise _refusal(subject, expected, exc) from None
        return Appended(ack.stream, ack.seq, bool(ack.duplicate))

    async def append_batch(self, items: Sequence[Append]) -> Appended:
        """Append to one stream in one atomic batch: every item is stored, or none is."""
        if not items:
            raise ValueError("nothing to append")
        if len(items) > MAX_BATCH:
            raise ValueError(f"an atomic batch holds at most {MAX_BATCH} messages")
        if len(items) == 1:
            only = items[0]
            return await self.append(
                only.subject,
                [only.event],
                msg_id=only.msg_id,
                expected=only.expected,
                headers=only.headers,
            )
        batch_id = uuid.uuid4().hex
        last = len(items) - 1
        started = time.perf_counter()
        context = _trace_context()
        for i, item in enumerate(items):
            hdrs = {
                **_traced(item.headers, context),
                "Nats-Batch-Id": batch_id,
                "Nats-Batch-Sequence": str(i + 1),
                MSG_ID: item.msg_id,
            }
            if item.expected is not None:
                hdrs[EXPECTED_SEQ] = str(item.expected)
            if i < last:
                await self.nc.publish(item.subject, encode(item.event), headers=hdrs)
            else:
                hdrs["Nats-Batch-Commit"] = "1"
                appended = await self._commit(item.subject, encode(item.event), hdrs, items)
                APPEND_SECONDS.observe(time.perf_counter() - started)
                if not appended.duplicate:
                    key = self._key(appended.stream)
                    for name, count in Counter(type(i.event).__name__ for i in items).items():
                        APPENDS.labels(key, name).inc(count)
                return appended
        raise AssertionError("unreachable")

    def _key(self, stream: str) -> str:
        """The stream's key (`MESSAGES`): a label that does not change with the namespace."""
        return stream.removeprefix(self.topology.stream(""))

    async def _commit(
        self, subject: str, payload: bytes, headers: dict[str, str], items: Sequence[Append]
    ) -> Appended:
        try:
            reply = await self.nc.request(subject, payload, headers=headers, timeout=self.timeout)
        except NoRespondersError:
            raise AppendFailed(503, f"no stream listens on {subject}") from None
        except NatsTimeout:
            raise AppendFailed(
                408, f"no acknowledgement for the batch ending on {subject}"
            ) from None
        ack = json.loads(reply.data) if reply.data else {}
        error = ack.get("error")
        if error:
            code = int(error.get("err_code", 0))
            detail = str(error.get("description", ""))
            if code == WRONG_LAST_SEQUENCE:
                guilty = next((i for i in items if i.expected is not None), items[0])
                CONFLICTS.inc()
                raise Conflict(guilty.subject, guilty.expected, detail)
            if code == DUPLICATE_IN_BATCH:
                raise DuplicateInBatch(code, detail)
            raise AppendFailed(code, detail)
        return Appended(str(ack.get("stream", "")), int(ack["seq"]), bool(ack.get("duplicate")))

    async def last_seq(self, spec: StreamSpec, subject: str) -> int:
        """The subject's last sequence (0 when empty): what an append expects next."""
        try:
            msg = await self.js.get_last_msg(spec.name(self.topology), subject, direct=True)
        except NotFoundError:
            return 0
        return int(msg.seq or 0)

    async def last_of(self, spec: StreamSpec, subjects: Sequence[str]) -> dict[str, Stored]:
        """The last event of each of `subjects` (those without one are left out): batched
        direct gets (`multi_last`), `LAST_OF_CHUNK` subjects a request, sent together, so
        that checking hundreds of claim or message subjects costs a few round trips."""
        unique = list(dict.fromkeys(subjects))
        chunks = [unique[i : i + LAST_OF_CHUNK] for i in range(0, len(unique), LAST_OF_CHUNK)]
        found: dict[str, Stored] = {}
        decoder = codec(spec)
        for msgs in await asyncio.gather(*(self._multi_last(spec, chunk) for chunk in chunks)):
            for msg in msgs:
                headers = msg.headers or {}
                subject = headers["Nats-Subject"]
                found[subject] = Stored(
                    int(headers["Nats-Sequence"]),
                    subject,
                    decoder.decode(msg.data),
                    headers.get(MSG_ID, ""),
                )
        return found

    async def _multi_last(self, spec: StreamSpec, subjects: list[str]) -> list[Msg]:
        got: list[Msg] = []
        end: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def receive(msg: Msg) -> None:
            status = (msg.headers or {}).get("Status")
            if status is None:
                got.append(msg)
            elif not end.done():
                end.set_result(status)  # 204: end of the batch; 404: none of them

        inbox = self.nc.new_inbox()
        sub = await self.nc.subscribe(inbox, cb=receive)
        try:
            request = json.dumps({"multi_last": subjects, "batch": len(subjects)}).encode()
            api = f"$JS.API.DIRECT.GET.{spec.name(self.topology)}"
            await self.nc.publish(api, request, reply=inbox)
            status = await asyncio.wait_for(end, self.timeout)
        except TimeoutError:
            raise AppendFailed(408, f"no answer to a batched read of {spec.key}") from None
        finally:
            await sub.unsubscribe()
        if status not in ("204", "404"):
            raise AppendFailed(int(status) if status.isdigit() else 500, "batched read refused")
        return got

    async def load(self, spec: StreamSpec, subject: str, after: int = 0) -> list[Stored]:
        """Every event of one aggregate subject after sequence `after`, in order."""
        decoder = codec(spec)
        stream = spec.name(self.topology)
        found: list[Stored] = []
        seq = after + 1
        while True:
            try:
                msg = await self.js.get_msg(
                    stream, seq=seq, subject=subject, next=True, direct=True
                )
            except NotFoundError:
                return found
            data = msg.data or b""
            msg_id = (msg.headers or {}).get(MSG_ID, "")
            found.append(Stored(int(msg.seq or 0), subject, decoder.decode(data), msg_id))
            seq = int(msg.seq or 0) + 1


def _refusal(subject: str, expected: int | None, exc: APIError) -> Exception:
    code = int(exc.err_code or 0)
    if code == WRONG_LAST_SEQUENCE:
        CONFLICTS.inc()
        return Conflict(subject, expected, str(exc.description or ""))
    return AppendFailed(code, str(exc.description or exc))


def _trace_context() -> dict[str, str]:
    """The current trace context as headers (none without a span to continue)."""
    return inject() if has_active_span() else {}


def _traced(
    headers: dict[str, str] | None, context: dict[str, str] | None = None
) -> dict[str, str]:
    """`headers` with the trace context added; a context the caller passed wins."""
    return {**(_trace_context() if context is None else context), **(headers or {})}


T = TypeVar("T")


async def retry_on_conflict(
    attempt: Callable[[], Awaitable[T]], *, attempts: int = 8, base_delay: float = 0.005
) -> T:
    """Run a load-decide-append `attempt` again when a concurrent writer got there first."""
    for n in range(attempts):
        try:
            return await attempt()
        except Conflict:
            if n == attempts - 1:
                raise
            await asyncio.sleep(base_delay * (2**n))
    raise AssertionError("unreachable")
