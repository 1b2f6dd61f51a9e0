"""What became of a message handed to the driver, on its own subject.

The first outcome (sent or failed) is appended expecting the message subject empty, so only
one can ever be recorded: a replica taking a device over fails a dispatch without outcome
as `unknown`, and a late `sent` from the replica it replaced is then refused (and the other
way round). Receipts (delivered, read) and replies follow the first outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import nats.errors

from wacast.contracts import messages as m
from wacast.contracts.streams import MESSAGES
from wacast.device_gateway import metrics
from wacast.device_gateway.domain.lane import Entry
from wacast.device_gateway.lanes import Slot
from wacast.device_gateway.receipts import Receipts, Ref
from wacast.runtime.clock import Clock
from wacast.runtime.coalescer import Coalescer
from wacast.runtime.eventstore import Append, AppendFailed, Conflict

log = logging.getLogger(__name__)

TRANSIENT = (AppendFailed, TimeoutError, OSError, nats.errors.Error)
"""Failures of the bus, not of the decision: try again."""


class Outcomes:
    def __init__(self, appender: Coalescer, clock: Clock, receipts: Receipts) -> None:
        self.appender = appender
        self.clock = clock
        self.receipts = receipts

    async def sent(
        self, slot: Slot, entry: Entry, wa_message_id: str, attempt: int, to: str
    ) -> None:
        lane = slot.lane
        ref = Ref(
            lane.tenant_id,
            entry.message_id,
            lane.device_id,
            entry.lead_id,
            entry.origin,
            entry.origin_id,
        )
        event = m.MessageSent(
            **ref.fields(),
            occurred_at=self.clock.now(),
            wa_message_id=wa_message_id,
            attempt=attempt,
        )
        if await self.record(slot, entry, event):
            metrics.SENDS.labels("sent", "").inc()
            await self.receipts.remember(wa_message_id, to, ref)

    async def fail(
        self,
        slot: Slot,
        entry: Entry,
        reason: str,
        *,
        attempt: int,
        retryable: bool = False,
        detail: str = "",
    ) -> None:
        lane = slot.lane
        ref = Ref(
            lane.tenant_id,
            entry.message_id,
            lane.device_id,
            entry.lead_id,
            entry.origin,
            entry.origin_id,
        )
        event = m.MessageFailed(
            **ref.fields(),
            occurred_at=self.clock.now(),
            reason=reason,
            retryable=retryable,
            detail=detail,
            attempt=attempt,
        )
        if await self.record(slot, entry, event):
            metrics.SENDS.labels("failed", reason).inc()

    async def record(self, slot: Slot, entry: Entry, event: m.MessageOutcomeBase) -> bool:
        """Append the first outcome of a message; True when this one was recorded. The lane
        goes on either way. Transient trouble is retried while the lane is served."""
        stored = await first_outcome(self.appender, event, lambda: slot.stopped)
        slot.lane.settle(entry.message_id)
        return stored


async def first_outcome(
    appender: Coalescer, event: m.MessageOutcomeBase, give_up: Callable[[], bool]
) -> bool:
    """Append `event` as the message's first outcome; True when it is stored (also when an
    earlier attempt was, its acknowledgement lost: the stored first event carries this
    one's message id), False when another outcome came first."""
    store = appender.store
    subject = store.topology.message(event.tenant_id, event.message_id)
    msg_id = f"outcome:{event.message_id}:{type(event).__name__}:{getattr(event, 'attempt', 0)}"
    delay = 0.05
    while True:
        try:
            await appender.append(Append(subject, event, msg_id, 0))
        except Conflict:
            stored = await store.load(MESSAGES, subject)
            if stored and stored[0].msg_id == msg_id:
                return True  # ours, stored without acknowledgement
            log.info("message %s has an outcome already", event.message_id)
            return False
        except TRANSIENT as exc:
            if give_up():
                return False
            log.warning("recording the outcome of %s failed (%s); retrying", event.message_id, exc)
            await asyncio.sleep(delay)
            delay = min(5.0, delay * 2)
            continue
        return True
