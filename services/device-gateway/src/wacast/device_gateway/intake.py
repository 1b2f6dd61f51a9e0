"""Send requests of the partitions this replica holds, recorded in their devices' lanes.

One durable pull consumer per partition (its cursor belongs to the partition, whichever
replica holds it). Each request is recorded in its lane (`MessageAccepted`, or
`MessageCancelled` when it cannot go: device deleted, campaign withdrawn, lane full...)
with the lane's expected sequence, and acknowledged at once: nothing waits for its turn
holding an unacknowledged message. A redelivered request is checked against the lane and
the message's outcomes first, so it is never recorded twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from wacast.contracts import messages as m
from wacast.contracts.streams import MESSAGES, codec
from wacast.device_gateway.controls import Controls
from wacast.device_gateway.directory import Directory
from wacast.device_gateway.domain.device import Device
from wacast.device_gateway.domain.lane import Entry, cancelled
from wacast.device_gateway.lanes import Fenced, Lanes, Slot, Stopped
from wacast.runtime.clock import Clock
from wacast.runtime.deadletter import DeadLetters
from wacast.runtime.eventstore import EventStore
from wacast.runtime.tasks import cancel_and_wait

log = logging.getLogger(__name__)

BATCH = 500
UNKNOWN_DEVICE_RETRIES = 5
"""A request for a device the directory does not know yet is retried this often (the
registration may still be on its way), then cancelled as `device_unknown`."""
MAX_DELIVER = 8


def durable_name(partition: int) -> str:
    return f"gateway-sendreq-{partition}"


class Intake:
    def __init__(
        self,
        nc: Client,
        store: EventStore,
        clock: Clock,
        directory: Directory,
        controls: Controls,
        lanes: Lanes,
        dead_letters: DeadLetters,
        lane_bound: int,
        on_fenced: Callable[[int], None],
    ) -> None:
        self.js = nc.jetstream()
        self.store = store
        self.topology = store.topology
        self.clock = clock
        self.directory = directory
        self.controls = controls
        self.lanes = lanes
        self.dead_letters = dead_letters
        self.lane_bound = lane_bound
        self.on_fenced = on_fenced
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self._decoder = codec(MESSAGES)

    async def start(self, partition: int) -> None:
        config = ConsumerConfig(
            durable_name=durable_name(partition),
            filter_subject=self.topology.send_requests_of_partition(partition),
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=30.0,
            max_ack_pending=20_000,
        )
        sub = await self.js.pull_subscribe(
            config.filter_subject or "",
            durable=config.durable_name,
            stream=MESSAGES.name(self.topology),
            config=config,
        )
        self.tasks[partition] = asyncio.create_task(
            self._run(partition, sub), name=f"intake-{partition}"
        )

    async def stop(self, partition: int) -> None:
        task = self.tasks.pop(partition, None)
        if task is not None:
            await cancel_and_wait([task])

    async def _run(self, partition: int, sub: Any) -> None:
        try:
            while True:
                try:
                    msgs = await sub.fetch(BATCH, timeout=5.0)
                except (NatsTimeout, TimeoutError):
                    continue
                try:
                    await self.take(msgs)
                except Fenced:
                    self.on_fenced(partition)
                    return
                except Stopped:
                    return
                except Exception as exc:
                    log.exception("send requests of partition %s failed; retrying", partition)
                    for msg in msgs:
                        with contextlib.suppress(Exception):
                            if msg.metadata.num_delivered >= MAX_DELIVER:
                                await self._bury(msg, exc)
                            else:
                                await msg.nak(delay=2.0)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def take(self, msgs: list[Msg]) -> None:
        by_lane: dict[str, list[tuple[Msg, m.MessageRequested]]] = defaultdict(list)
        for msg in msgs:
            try:
                event = self._decoder.decode(msg.data)
                if not isinstance(event, m.MessageRequested):
                    raise TypeError(f"{type(event).__name__} is not a send request")
            except Exception as exc:
                await self._bury(msg, exc)
                continue
            by_lane[event.device_id].append((msg, event))
        await asyncio.gather(*(self._take_lane(reqs) for reqs in by_lane.values()))

    async def _take_lane(self, requests: list[tuple[Msg, m.MessageRequested]]) -> None:
        first = requests[0][1]
        known = self.directory.state(first.device_id)
        device = known if known is not None and known.tenant_id == first.tenant_id else None
        if device is None:
            young = [r for r in requests if r[0].metadata.num_delivered < UNKNOWN_DEVICE_RETRIES]
            for msg, _ in young:
                await msg.nak(delay=1.0)
            requests = [r for r in requests if r not in young]
            if not requests:
                return
        slot = self.lanes.slots.get(first.device_id)
        if slot is None:
            subject = self.topology.lane(first.tenant_id, first.device_id)
            last = await self.store.last_seq(MESSAGES, subject)
            slot = self.lanes.open(first.tenant_id, first.device_id, last)
        now = self.clock.now()
        events: list[m.MessageAccepted | m.MessageCancelled] = []
        async with slot.lock:
            for msg, request in requests:
                request_seq = msg.metadata.sequence.stream
                if slot.lane.holds(request.message_id):
                    continue
                if msg.metadata.num_delivered > 1 and await self._seen(request, request_seq):
                    continue
                entry = _entry(request, request_seq, now)
                reason = self._refusal(device, slot, entry, len(events))
                if reason is not None and self.controls.lead_withdrawn(request.tenant_id, entry):
                    await self.controls.refresh(request.tenant_id, "lead", request.lead_id)
                    reason = self._refusal(device, slot, entry, len(events))
                if reason is None:
                    events.append(_accepted(request, entry, now))
                else:
                    events.append(
                        cancelled(request.tenant_id, request.device_id, entry, reason, now)
                    )
            if events:
                await self.lanes.append_locked(slot, events)
        for msg, _ in requests:
            await msg.ack()
        self.lanes.wake(first.device_id)

    def _refusal(self, device: Device | None, slot: Slot, entry: Entry, adding: int) -> str | None:
        if device is None:
            return "device_unknown"
        if device.gone:
            return "device_deleted"
        withdrawn = self.controls.withdrawal(slot.lane.tenant_id, entry)
        if withdrawn is not None:
            return withdrawn
        if entry.not_after is not None and entry.not_after <= entry.accepted_at:
            return "expired"
        if len(slot.lane.pending) + adding >= self.lane_bound:
            return "lane_full"
        return None

    async def _seen(self, request: m.MessageRequested, request_seq: int) -> bool:
        """Was this redelivered request recorded before (and perhaps sent and done)?

        Its lane events, if any, come after the request in the stream."""
        outcome = self.topology.message(request.tenant_id, request.message_id)
        if await self.store.last_seq(MESSAGES, outcome) > 0:
            return True
        lane = self.topology.lane(request.tenant_id, request.device_id)
        for stored in await self.store.load(MESSAGES, lane, after=request_seq):
            if getattr(stored.event, "message_id", None) == request.message_id:
                return True
        return False

    async def _bury(self, msg: Msg, exc: BaseException) -> None:
        await self.dead_letters.send(
            stream=MESSAGES.name(self.topology),
            consumer="gateway-sendreq",
            subject=msg.subject,
            seq=msg.metadata.sequence.stream,
            data=msg.data,
            headers=msg.headers,
            error=exc,
        )
        await msg.ack()


def _entry(request: m.MessageRequested, request_seq: int, now: Any) -> Entry:
    return Entry(
        message_id=request.message_id,
        lead_id=request.lead_id,
        origin=request.origin,
        origin_id=request.origin_id,
        request_seq=request_seq,
        seq=0,
        accepted_at=now,
        pacing=request.pacing,
        window=request.window,
        not_before=request.not_before,
        not_after=request.not_after,
    )


def _accepted(request: m.MessageRequested, entry: Entry, now: Any) -> m.MessageAccepted:
    return m.MessageAccepted(
        tenant_id=request.tenant_id,
        occurred_at=now,
        device_id=request.device_id,
        message_id=request.message_id,
        lead_id=request.lead_id,
        origin=request.origin,
        origin_id=request.origin_id,
        request_seq=entry.request_seq,
        pacing=request.pacing,
        window=request.window,
        not_before=request.not_before,
        not_after=request.not_after,
    )
