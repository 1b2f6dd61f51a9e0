"""Taking source events in: which endpoints get an event, recorded once each.

One durable pull consumer per subject that holds public event types (never the send path:
this process, its own consumers) fetches up to `BATCH` events at a time. For every event and
every endpoint of its tenant that takes its type and existed when it happened, a
`WebhookDeliveryQueued` goes to the delivery's own subject expecting it empty, with the
delivery id as message id; the whole fetch's deliveries are appended in source order in
atomic batches of at most 1,000, and the fetch is acknowledged once they are stored.

A redelivered fetch (a crash before the ack) holds deliveries stored already: the server
refuses such a batch whole (a duplicate message id, or a subject no longer empty), so the
intake looks up which delivery subjects exist and appends only the rest. Nothing is queued
twice, nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from wacast.contracts import webhooks as wh
from wacast.contracts.streams import BY_KEY, WEBHOOKS, StreamSpec, codec
from wacast.runtime.consumer import watch
from wacast.runtime.deadletter import DeadLetters
from wacast.runtime.eventstore import MAX_BATCH, Append, Conflict, DuplicateInBatch
from wacast.runtime.projection import Envelope
from wacast.webhook_service.core import Core

log = logging.getLogger("wacast.webhooks")

BATCH = 1000
"""Source events fetched (and their deliveries queued) at a time."""
MAX_DELIVER = 5
"""Tries of a fetch that cannot be queued before its events go to the dead letters."""
STORED_TRIES = 3
"""Rounds of 'leave out what is stored, append the rest' before a fetch is retried later."""


def durable_name(kind: str) -> str:
    return f"webhook-service-{kind}"


class Intake:
    def __init__(self, core: Core, dead_letters: DeadLetters) -> None:
        self.core = core
        self.dead_letters = dead_letters

    async def run(self, stream_key: str, kind: str) -> None:
        """Fetch, queue and acknowledge the events of one source subject, forever."""
        spec = BY_KEY[stream_key]
        topology = self.core.topology
        stream, durable = spec.name(topology), durable_name(kind)
        watch(stream, durable)
        subject = topology.all_of(kind)
        config = ConsumerConfig(
            durable_name=durable,
            filter_subject=subject,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=30.0,
            max_ack_pending=10_000,
        )
        js = self.core.store.nc.jetstream()
        sub = await js.pull_subscribe(subject, durable=durable, stream=stream, config=config)
        try:
            while True:
                try:
                    msgs = await sub.fetch(BATCH, timeout=1.0)
                except (NatsTimeout, TimeoutError):
                    continue
                try:
                    await self.take(spec, durable, msgs)
                except Exception as exc:
                    log.warning("%s: %d events not queued (%r); retrying", durable, len(msgs), exc)
                    for msg in msgs:
                        with contextlib.suppress(Exception):
                            if msg.metadata.num_delivered >= MAX_DELIVER:
                                await self._bury(durable, msg, exc)
                            else:
                                await msg.nak(delay=1.0)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def take(self, spec: StreamSpec, durable: str, msgs: list[Msg]) -> None:
        """Queue the deliveries of `msgs` (in their order), then acknowledge them all."""
        decoder = codec(spec)
        items: list[Append] = []
        taken: list[Msg] = []
        for msg in msgs:
            try:
                event = decoder.decode(msg.data)
            except Exception as exc:
                await self._bury(durable, msg, exc)
                continue
            taken.append(msg)
            items += self.deliveries(Envelope(spec.key, _seq(msg), msg.subject, event))
        for first in range(0, len(items), MAX_BATCH):
            await self._append(items[first : first + MAX_BATCH])
        await asyncio.gather(*(msg.ack() for msg in taken))

    def deliveries(self, envelope: Envelope) -> list[Append]:
        """One `WebhookDeliveryQueued` per endpoint that takes this event."""
        event = envelope.event
        public = wh.public_type(event)
        if public is None:
            return []
        core = self.core
        endpoints = core.directory.subscribers(event.tenant_id, public, event.occurred_at)
        if not endpoints:
            return []
        resource = wh.resource_of(event)
        now = core.clock.now()
        items = []
        for endpoint in endpoints:
            delivery_id = wh.delivery_id(endpoint.webhook_id, envelope.stream, envelope.seq)
            queued = wh.WebhookDeliveryQueued(
                tenant_id=event.tenant_id,
                occurred_at=now,
                delivery_id=delivery_id,
                webhook_id=endpoint.webhook_id,
                source_stream=envelope.stream,
                source_seq=envelope.seq,
                event_type=public,
                resource=resource,
            )
            items.append(Append(queued.subject(core.topology), queued, delivery_id, expected=0))
        return items

    async def _append(self, items: list[Append]) -> None:
        """Store `items` in one atomic batch, leaving out those stored already."""
        for _ in range(STORED_TRIES):
            if not items:
                return
            try:
                await self.core.store.append_batch(items)
                return
            except (Conflict, DuplicateInBatch):
                stored = await self.core.store.last_of(WEBHOOKS, [i.subject for i in items])
                items = [i for i in items if i.subject not in stored]
        raise RuntimeError("deliveries kept being refused as stored; will retry the fetch")

    async def _bury(self, durable: str, msg: Msg, error: BaseException) -> None:
        stream, seq = msg.metadata.stream, _seq(msg)
        log.error("dead-lettering %s seq %s for %s: %s", stream, seq, durable, error)
        await self.dead_letters.send(
            stream=stream,
            consumer=durable,
            subject=msg.subject,
            seq=seq,
            data=msg.data,
            headers=msg.headers,
            error=error,
        )
        await msg.ack()


def _seq(msg: Msg) -> int:
    return int(msg.metadata.sequence.stream)
