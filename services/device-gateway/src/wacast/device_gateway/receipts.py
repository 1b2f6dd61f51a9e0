"""Delivery and read receipts, and replies, attributed to the messages they are about.

The network reports receipts by WhatsApp message id and replies by sender; the gateway
remembers, for the latest sends (bounded), which message each WhatsApp id and each
(device, recipient) pair belongs to. At start-up the recent `MessageSent` events are read
back, so receipts for sends made before a restart or takeover still count.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from wacast.contracts import messages as m
from wacast.contracts.streams import MESSAGES, codec
from wacast.contracts.values import Origin
from wacast.device_gateway.drivers.base import Inbound
from wacast.runtime.clock import Clock
from wacast.runtime.coalescer import Coalescer
from wacast.runtime.eventstore import Append
from wacast.runtime.reader import SubjectReader

log = logging.getLogger(__name__)

EARLY_RECEIPTS = 10_000


class Ref(NamedTuple):
    tenant_id: str
    message_id: str
    device_id: str
    lead_id: str
    origin: Origin
    origin_id: str

    def fields(self) -> dict[str, Any]:
        return self._asdict()


class Receipts:
    def __init__(self, appender: Coalescer, clock: Clock, capacity: int) -> None:
        self.appender = appender
        self.store = appender.store
        self.clock = clock
        self.capacity = capacity
        self.by_wa_id: OrderedDict[str, Ref] = OrderedDict()
        self.by_chat: OrderedDict[tuple[str, str], Ref] = OrderedDict()
        self.early: OrderedDict[str, list[tuple[str, str, datetime]]] = OrderedDict()
        """Receipts that came before their send was recorded (the network is quick)."""

    async def remember(self, wa_message_id: str, to: str, ref: Ref) -> None:
        """`ref` was recorded as sent with `wa_message_id`: its receipts may be appended."""
        _put(self.by_wa_id, wa_message_id, ref, self.capacity)
        if to:
            _put(self.by_chat, (ref.device_id, to), ref, self.capacity)
        for device_id, kind, at in self.early.pop(wa_message_id, []):
            try:
                await self.receipt(device_id, wa_message_id, kind, at)
            except Exception as exc:
                log.warning("recording a %s receipt of %s failed: %s", kind, ref.message_id, exc)

    async def receipt(self, device_id: str, wa_message_id: str, kind: str, at: datetime) -> None:
        ref = self.by_wa_id.get(wa_message_id)
        if ref is None:
            self.early.setdefault(wa_message_id, []).append((device_id, kind, at))
            while len(self.early) > EARLY_RECEIPTS:
                self.early.popitem(last=False)
            return
        if ref.device_id != device_id:
            return
        cls = m.MessageRead if kind == "read" else m.MessageDelivered
        event = cls(**ref.fields(), occurred_at=at)
        subject = self.store.topology.message(ref.tenant_id, ref.message_id)
        await self.appender.append(Append(subject, event, f"{kind}:{ref.message_id}"))

    async def reply(self, device_id: str, message: Inbound) -> None:
        ref = self.by_chat.get((device_id, message.sender))
        if ref is None:
            return
        event = m.MessageReplied(
            **ref.fields(),
            occurred_at=message.at or self.clock.now(),
            text=message.text,
            wa_message_id=message.wa_message_id,
        )
        subject = self.store.topology.message(ref.tenant_id, ref.message_id)
        await self.appender.append(Append(subject, event, f"reply:{message.wa_message_id}"))

    async def recover(self, serves: Callable[[str], bool], seconds: float) -> int:
        """Read back recent sends of the devices this replica serves; returns how many."""
        since = self.clock.now() - timedelta(seconds=seconds)
        decoder = codec(MESSAGES)
        topology = self.store.topology
        found = 0
        async with SubjectReader(
            self.store.nc, MESSAGES.name(topology), topology.all_of("msg"), start_time=since
        ) as reader:
            async for batch in reader.replay():
                for msg in batch:
                    event = decoder.decode(msg.data)
                    if isinstance(event, m.MessageSent) and serves(event.device_id):
                        ref = Ref(
                            event.tenant_id,
                            event.message_id,
                            event.device_id,
                            event.lead_id,
                            event.origin,
                            event.origin_id,
                        )
                        _put(self.by_wa_id, event.wa_message_id, ref, self.capacity)
                        found += 1
        return found


def _put(cache: OrderedDict[Any, Ref], key: Any, ref: Ref, capacity: int) -> None:
    cache[key] = ref
    cache.move_to_end(key)
    while len(cache) > capacity:
        cache.popitem(last=False)
