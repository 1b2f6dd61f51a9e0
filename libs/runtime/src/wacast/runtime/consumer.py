"""Durable event consumers: at-least-once delivery into idempotent handlers.

A payload that cannot be decoded goes to the dead-letter stream at once; a handler that keeps
failing is retried with backoff and, after `max_deliver` attempts, dead-lettered too. Either
way the message is acknowledged and the consumer goes on with the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from faststream import AckPolicy
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage
from nats.js.api import ConsumerConfig, DeliverPolicy

from wacast.contracts.streams import StreamSpec, codec
from wacast.contracts.subjects import Topology
from wacast.runtime.deadletter import DeadLetters
from wacast.runtime.projection import Envelope

log = logging.getLogger("wacast.consumer")

Handler = Callable[[Envelope], Awaitable[None]]


def backoff(attempt: int, base: float = 0.5, cap: float = 30.0) -> float:
    return float(min(cap, base * (2 ** max(0, attempt - 1))))


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
    config = ConsumerConfig(
        ack_wait=30.0,
        max_ack_pending=10_000,
        deliver_policy=DeliverPolicy.NEW if deliver_new_only else DeliverPolicy.ALL,
    )

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
        try:
            event = decoder.decode(raw.data)
        except Exception as exc:
            await _bury(dead_letters, stream, durable, raw.subject, seq, raw.data, raw.headers, exc)
            await msg.ack()
            return
        try:
            await handle(Envelope(spec.key, seq, raw.subject, event))
        except Exception as exc:
            if meta.num_delivered >= max_deliver:
                await _bury(
                    dead_letters, stream, durable, raw.subject, seq, raw.data, raw.headers, exc
                )
                await msg.ack()
            else:
                log.warning("%s: %s seq %s failed (%s); retrying", durable, stream, seq, exc)
                await msg.nack(delay=backoff(meta.num_delivered))
            return
        await msg.ack()


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
    log.error("dead-lettering %s seq %s for %s: %s", stream, seq, durable, error)
    await dead_letters.send(
        stream=stream,
        consumer=durable,
        subject=subject,
        seq=seq,
        data=data,
        headers=headers,
        error=error,
    )
