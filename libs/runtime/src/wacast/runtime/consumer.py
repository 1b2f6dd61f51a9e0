"""Durable event consumers: at-least-once delivery into idempotent handlers.

A payload that cannot be decoded goes to the dead-letter stream at once; a handler that keeps
failing is retried with backoff and, after `max_deliver` attempts, dead-lettered too. Either
way the message is acknowledged and the consumer goes on with the next one.

Each delivery is handled in a span continuing the trace of whoever appended the event.
`wacast_consumer_redeliveries_total{consumer}` counts deliveries after the first, and
`poll_consumers` (run by the service host) keeps `wacast_consumer_pending_messages` and
`wacast_consumer_ack_pending_messages` up to date for every durable `watch`ed in this
process (`consume_events` watches its own; code with its own pull consumers calls `watch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import nats.errors
from faststream import AckPolicy
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from prometheus_client import Counter, Gauge

from wacast.contracts.streams import StreamSpec, codec
from wacast.contracts.subjects import Topology
from wacast.runtime.deadletter import DeadLetters
from wacast.runtime.projection import Envelope
from wacast.runtime.tracing import start_span_from_headers

log = logging.getLogger("wacast.consumer")

REDELIVERIES = Counter(
    "wacast_consumer_redeliveries_total",
    "Deliveries of a message after its first (handler failures, ack timeouts)",
    ["consumer"],
)
PENDING = Gauge(
    "wacast_consumer_pending_messages",
    "Messages in the stream not yet delivered to the durable consumer (its backlog)",
    ["consumer"],
)
ACK_PENDING = Gauge(
    "wacast_consumer_ack_pending_messages",
    "Messages delivered to the durable consumer and not acknowledged yet",
    ["consumer"],
)
POLL_SECONDS = 15.0

_watched: dict[tuple[str, str], None] = {}
"""(stream, durable consumer) pairs polled by `poll_consumers`."""


def watch(stream: str, durable: str) -> None:
    """Report the backlog of `durable` on `stream` (bounded names only: no device ids)."""
    _watched[(stream, durable)] = None


def unwatch(durable: str) -> None:
    """Stop reporting `durable` (e.g. a partition this replica gave up)."""
    for key in [key for key in _watched if key[1] == durable]:
        del _watched[key]
    for gauge in (PENDING, ACK_PENDING):
        with contextlib.suppress(KeyError):
            gauge.remove(durable)


async def poll_once(js: JetStreamContext, prefix: str = "") -> None:
    """Read `consumer_info` of every watched durable whose stream starts with `prefix`."""
    for stream, durable in list(_watched):
        if not stream.startswith(prefix):
            continue
        try:
            info = await js.consumer_info(stream, durable, timeout=2.0)
        except NotFoundError:
            continue
        PENDING.labels(durable).set(info.num_pending or 0)
        ACK_PENDING.labels(durable).set(info.num_ack_pending or 0)


async def poll_consumers(
    js: JetStreamContext, prefix: str = "", every: float = POLL_SECONDS
) -> None:
    """`poll_once` for ever; a failed poll (NATS away) is logged and tried again later."""
    while True:
        try:
            await poll_once(js, prefix)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("consumer poll failed: %s", exc)
        await asyncio.sleep(every)


Handler = Callable[[Envelope], Awaitable[None]]


def backoff(attempt: int, base: float = 0.5, cap: float = 30.0) -> float:
    return float(min(cap, base * (2 ** max(0, attempt - 1))))


def nats_timeouts(fetch: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """`fetch` raising the builtin `TimeoutError` as `nats.errors.TimeoutError`.

    nats-py's `fetch` raises the builtin one when its deadline passes before its second pull
    request; faststream's pull loop expects nats-py's own (it suppresses only that), so its
    supervisor logged an ERROR with a traceback and restarted the loop, on a quiet consumer.
    """
    if getattr(fetch, "wacast_nats_timeouts", False):
        return fetch

    @functools.wraps(fetch)
    async def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fetch(*args, **kwargs)
        except nats.errors.TimeoutError:
            raise
        except TimeoutError as exc:
            raise nats.errors.TimeoutError() from exc

    wrapped.wacast_nats_timeouts = True  # type: ignore[attr-defined]
    return wrapped


def consume_events(
    broker: NatsBroker,
    topology: Topology,
    dead_letters: DeadLetters,
    *,
    spec: StreamSpec,
    subject: str,
    durable: str,
    handle: Handler,
    max_deliver: int = 5,
    batch_size: int = 100,
    deliver_new_only: bool = False,
) -> None:
    """Register a durable pull consumer of `subject` in `spec`'s stream on `broker`."""
    decoder = codec(spec)
    stream = spec.name(topology)
    watch(stream, durable)
    config = ConsumerConfig(
        ack_wait=30.0,
        max_ack_pending=10_000,
        deliver_policy=DeliverPolicy.NEW if deliver_new_only else DeliverPolicy.ALL,
    )

    async def _handle(msg: NatsMessage, seq: int, num_delivered: int) -> None:
        raw = msg.raw_message
        try:
            event = decoder.decode(raw.data)
        except Exception as exc:
            await _bury(dead_letters, stream, durable, raw.subject, seq, raw.data, raw.headers, exc)
            await msg.ack()
            return
        try:
            await handle(Envelope(spec.key, seq, raw.subject, event))
        except Exception as exc:
            if num_delivered >= max_deliver:
                await _bury(
                    dead_letters, stream, durable, raw.subject, seq, raw.data, raw.headers, exc
                )
                await msg.ack()
            else:
                log.warning("%s: %s seq %s failed (%s); retrying", durable, stream, seq, exc)
                await msg.nack(delay=backoff(num_delivered))
            return
        await msg.ack()

    pulls = JetStreamContext.PullSubscription
    pulls.fetch = nats_timeouts(pulls.fetch)  # type: ignore[method-assign,assignment]

    @broker.subscriber(
        subject,
        stream=JStream(stream, declare=False),
        durable=durable,
        config=config,
        pull_sub=PullSub(batch_size=batch_size, timeout=1.0),
        ack_policy=AckPolicy.MANUAL,
        title=f"{durable} on {stream}",
    )
    async def on_event(msg: NatsMessage) -> None:
        raw = msg.raw_message
        meta = raw.metadata
        seq = meta.sequence.stream
        if meta.num_delivered > 1:
            REDELIVERIES.labels(durable).inc()
        with start_span_from_headers(
            f"{durable} process",
            raw.headers,
            attributes={"messaging.destination": stream, "messaging.consumer": durable},
        ):
            await _handle(msg, seq, meta.num_delivered)


async def _bury(
    dead_letters: DeadLetters,
    stream: str,
    durable: str,
    subject: str,
    seq: int,
    data: bytes,
    headers: dict[str, str] | None,
    error: BaseException,
) -> None:
    log.error("dead-lettering %s seq %s for %s: %.500s", stream, seq, durable, error)
    await dead_letters.send(
        stream=stream,
        consumer=durable,
        subject=subject,
        seq=seq,
        data=data,
        headers=headers,
        error=error,
    )
