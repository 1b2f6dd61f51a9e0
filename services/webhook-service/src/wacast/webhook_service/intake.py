"""Taking source events in: which endpoints get an event, recorded once each.

Durable consumers of the subjects that hold public event types (never the send path: this
process, its own consumers) hand each event here. For every endpoint of the tenant that
takes its type and existed when it happened, `WebhookDeliveryQueued` is appended to the
delivery's subject expecting it empty: a redelivered source event queues nothing twice.
"""

from __future__ import annotations

import contextlib

from wacast.contracts import webhooks as wh
from wacast.runtime.eventstore import Conflict
from wacast.runtime.projection import Envelope
from wacast.webhook_service.core import Core


class Intake:
    def __init__(self, core: Core) -> None:
        self.core = core

    async def on_event(self, envelope: Envelope) -> None:
        event = envelope.event
        public = wh.public_type(event)
        if public is None:
            return
        endpoints = self.core.directory.subscribers(event.tenant_id, public, event.occurred_at)
        if not endpoints:
            return
        resource = wh.resource_of(event)
        for endpoint in endpoints:
            delivery_id = wh.delivery_id(endpoint.webhook_id, envelope.stream, envelope.seq)
            queued = wh.WebhookDeliveryQueued(
                tenant_id=event.tenant_id,
                occurred_at=self.core.clock.now(),
                delivery_id=delivery_id,
                webhook_id=endpoint.webhook_id,
                source_stream=envelope.stream,
                source_seq=envelope.seq,
                event_type=public,
                resource=resource,
            )
            with contextlib.suppress(Conflict):  # queued already: the source event came again
                await self.core.store.append(
                    queued.subject(self.core.topology), [queued], msg_id=delivery_id, expected=0
                )
