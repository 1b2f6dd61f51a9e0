"""Delivery and read receipts attributed to the messages they are about, and the latest
message each device sent each lead (what a reply answers).

The network reports receipts by WhatsApp message id and replies by sender; the gateway
remembers, for the latest sends (bounded), which message each WhatsApp id, each (device,
lead) and each (device, recipient phone) belongs to. At start-up the recent `MessageSent`
events are read back (they carry the WhatsApp id, the device and the lead, not the phone),
so receipts and replies to sends made before a restart or takeover still count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from wacast.contracts import messages as m
from wacast.contracts.streams import MESSAGES, codec
from wacast.contracts.subjects import partition_of
from wacast.contracts.values import Origin
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
        self.by_lead: OrderedDict[tuple[str, str], Ref] = OrderedDict()
        self.by_chat: OrderedDict[tuple[str, str], Ref] = OrderedDict()
        """(device, recipient phone): for a contact whose lead the gateway cannot name."""
        self.unrecovered: set[int] = set()
        """Partitions taken whose recent sends are not read back yet."""
        self._round_done = asyncio.Event()
        self._fresh: set[tuple[str, str]] = set()
        self.early: OrderedDict[str, list[tuple[str, str, datetime]]] = OrderedDict()
        """Receipts that came before their send was recorded (the network is quick)."""

    async def remember(self, wa_message_id: str, to: str, ref: Ref) -> None:
        """`ref` was recorded as sent with `wa_message_id`: its receipts may be appended."""
        _put(self.by_wa_id, wa_message_id, ref, self.capacity)
        if ref.lead_id:
            _put(self.by_lead, (ref.device_id, ref.lead_id), ref, self.capacity)
            self._fresh.add((ref.device_id, ref.lead_id))
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

    def latest(self, device_id: str, lead_id: str, phone: str) -> Ref | None:
        """The latest message `device_id` sent the lead (or, without a lead, the phone)."""
        if lead_id:
            return self.by_lead.get((device_id, lead_id))
        return self.by_chat.get((device_id, phone))

    async def recovered(self, device_id: str, timeout: float) -> bool:
        """Wait (at most `timeout` seconds) until the recent sends of the device's partition
        are read back; False when they are not."""
        deadline = asyncio.get_running_loop().time() + timeout
        while partition_of(device_id) in self.unrecovered:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return False
            self._round_done.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._round_done.wait(), left)
        return True

    async def recover(self, partitions: set[int], seconds: float) -> int:
        """Read back recent sends of devices in `partitions`; returns how many."""
        # JetStream stamps messages with the server's wall time, whatever clock we run on.
        since = datetime.now(UTC) - timedelta(seconds=seconds)
        decoder = codec(MESSAGES)
        topology = self.store.topology
        found = 0
        latest: dict[tuple[str, str], Ref] = {}
        self._fresh.clear()
        try:
            async with SubjectReader(
                self.store.nc, MESSAGES.name(topology), topology.all_of("msg"), start_time=since
            ) as reader:
                async for batch in reader.replay():
                    for msg in batch:
                        event = decoder.decode(msg.data)
                        if not isinstance(event, m.MessageSent):
                            continue
                        if partition_of(event.device_id) not in partitions:
                            continue
                        ref = Ref(
                            event.tenant_id, event.message_id, event.device_id, event.lead_id,
                            event.origin, event.origin_id,
                        )  # fmt: skip
                        _put(self.by_wa_id, event.wa_message_id, ref, self.capacity)
                        if event.lead_id:
                            latest[(event.device_id, event.lead_id)] = ref
                        found += 1
            for key, ref in latest.items():
                if key not in self._fresh:  # else sent while reading back: newer
                    _put(self.by_lead, key, ref, self.capacity)
        finally:
            self.unrecovered -= partitions
            self._round_done.set()
        return found


def _put(cache: OrderedDict[Any, Ref], key: Any, ref: Ref, capacity: int) -> None:
    cache[key] = ref
    cache.move_to_end(key)
    while len(cache) > capacity:
        cache.popitem(last=False)
