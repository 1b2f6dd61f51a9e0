"""The send lanes of the devices this replica serves: pacing, one send in flight, fencing.

Each lane is appended to only here, each append expecting the lane subject's last sequence
(the fencing token): when another replica took the device's partition and appended first,
the append fails with `Fenced` and this replica stops serving the partition. A refused or
unacknowledged append is checked against what the lane holds first: this replica's own
events stored without acknowledgement are adopted, never taken for another's. Idle lanes
cost no task: one scheduler keeps a heap of wake-up times, and a lane gets a task only
while it has a message to hand to the driver.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any, Protocol

import nats.errors

from wacast.contracts import messages as m
from wacast.contracts.base import Event
from wacast.contracts.streams import MESSAGES
from wacast.contracts.subjects import Topology, partition_of
from wacast.device_gateway import metrics
from wacast.device_gateway.controls import Controls
from wacast.device_gateway.domain.lane import Entry, Lane, Plan, cancelled
from wacast.device_gateway.domain.limits import local_day
from wacast.device_gateway.settings import Settings
from wacast.runtime.clock import Clock
from wacast.runtime.coalescer import Coalescer
from wacast.runtime.eventstore import MAX_BATCH, Append, AppendFailed, Conflict, EventStore

log = logging.getLogger(__name__)

RECONCILE_ATTEMPTS = 5
"""A lane append without acknowledgement and not found stored is sent again this often
(with a doubling pause from `RECONCILE_DELAY` seconds) before the lane gives up for now."""
RECONCILE_DELAY = 0.1
CHECKPOINT_EVERY = 1000
"""A busy lane checkpoints when its oldest open entry moved this many events on."""


class Fenced(Exception):
    """Another replica appended to the lane: this one no longer serves its partition."""

    def __init__(self, device_id: str) -> None:
        super().__init__(f"lane of {device_id} was taken over")
        self.device_id = device_id


class Stopped(Exception):
    """This replica stopped serving the lane (it handed the partition over)."""


@dataclass(slots=True)
class Slot:
    lane: Lane
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    task: asyncio.Task[None] | None = None
    stopped: bool = False
    checkpointed_open_from: int = 0
    unconfirmed: set[str] = field(default_factory=set)
    """Message ids of lane appends sent since the last acknowledged one: found stored
    after the lane's sequence, they are this replica's own, not another's."""


class Sender(Protocol):
    async def dispatch(self, slot: Slot, plan: Plan) -> None: ...


class Lanes:
    def __init__(
        self,
        settings: Settings,
        store: EventStore,
        appender: Coalescer,
        clock: Clock,
        rng: random.Random,
        controls: Controls,
    ) -> None:
        self.settings = settings
        self.store = store
        self.appender = appender
        self.topology: Topology = store.topology
        self.clock = clock
        self.rng = rng
        self.controls = controls
        self.slots: dict[str, Slot] = {}
        self.sendable: Callable[[str], bool] = lambda _: False
        self.on_fenced: Callable[[int], None] = lambda _: None
        self.sender: Sender | None = None
        self.zone_of: Callable[[str], str] = lambda _: "UTC"
        """The tenant's timezone (local days of daily caps)."""
        self.cap_of: Callable[[Lane, datetime], int | None] = lambda lane, now: None
        """The lane's daily cap on the local day of `now` (None: no cap)."""
        self._heap: list[tuple[datetime, int, str]] = []
        self._order = itertools.count()
        self._woken = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()

    # -- which lanes are served --------------------------------------------------------

    def adopt(self, lanes: Iterable[Lane]) -> None:
        """Serve rebuilt lanes (they start when woken)."""
        for lane in lanes:
            self.slots[lane.device_id] = Slot(lane, checkpointed_open_from=lane.open_from())

    def open(self, tenant_id: str, device_id: str, last_seq: int) -> Slot:
        """The device's slot; a lane never seen gets one expecting `last_seq`."""
        slot = self.slots.get(device_id)
        if slot is None:
            lane = Lane(tenant_id, device_id, seq=last_seq, zone=self.zone_of(tenant_id))
            slot = self.slots[device_id] = Slot(lane)
        return slot

    async def drop(self, partition: int, grace: float) -> None:
        """Stop serving the partition's lanes; a send in flight gets `grace` seconds."""
        dropped = [s for d, s in self.slots.items() if partition_of(d) == partition]
        for slot in dropped:
            slot.stopped = True
        tasks = [s.task for s in dropped if s.task is not None and not s.task.done()]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for slot in dropped:
            if self.slots.get(slot.lane.device_id) is slot:
                del self.slots[slot.lane.device_id]

    def held(self, slot: Slot) -> Callable[[Entry], bool]:
        return partial(self.controls.is_held, slot.lane.tenant_id)

    # -- appending, fenced ---------------------------------------------------------------

    async def append(self, slot: Slot, events: Sequence[Event]) -> None:
        async with slot.lock:
            await self.append_locked(slot, events)

    async def append_locked(self, slot: Slot, events: Sequence[Event]) -> None:
        """Append to the lane subject in atomic batches, each expecting the lane's last
        sequence, and fold what was stored into the lane.

        An append without acknowledgement, or refused as stale, may have been stored by
        this replica all the same (a slow server acknowledges late; a retry then finds its
        own batch there): the lane reads back what follows its sequence, adopts what this
        replica sent and appends only the rest. Only an event it did not send means that
        another replica took the lane over (`Fenced`)."""
        if slot.stopped:
            raise Stopped(slot.lane.device_id)
        lane = slot.lane
        subject = self.topology.lane(lane.tenant_id, lane.device_id)
        for start in range(0, len(events), MAX_BATCH):
            chunk = list(events[start : start + MAX_BATCH])
            for attempt in itertools.count():
                items = [
                    Append(subject, e, _msg_id(e, lane.seq), lane.seq if i == 0 else None)
                    for i, e in enumerate(chunk)
                ]
                slot.unconfirmed.update(item.msg_id for item in items)
                try:
                    appended = await self.appender.append_group(items)
                except (Conflict, AppendFailed, TimeoutError) as exc:
                    adopted = await self._reconcile(slot, subject, exc)
                    chunk = [
                        e for e, i in zip(chunk, items, strict=True) if i.msg_id not in adopted
                    ]
                    if not chunk:
                        break
                    if not adopted and not isinstance(exc, Conflict):
                        if attempt + 1 >= RECONCILE_ATTEMPTS:
                            raise
                        await asyncio.sleep(RECONCILE_DELAY * 2**attempt)
                    continue
                first = appended.seq - len(chunk) + 1
                for i, event in enumerate(chunk):
                    lane.apply(first + i, event)
                slot.unconfirmed.clear()
                break

    async def _reconcile(self, slot: Slot, subject: str, exc: Exception) -> set[str]:
        """Adopt what this replica's unacknowledged appends stored after the lane's
        sequence; the message ids adopted. `Fenced` when another writer appended."""
        lane = slot.lane
        stored = await self.store.load(MESSAGES, subject, after=lane.seq)
        adopted: set[str] = set()
        for found in stored:
            if found.msg_id not in slot.unconfirmed:
                raise self._fenced(slot, f"{found.msg_id or 'an event'} at {found.seq}")
            lane.apply(found.seq, found.event)
            adopted.add(found.msg_id)
        if stored:
            log.info(
                "lane of %s: adopted %d event(s) stored without acknowledgement (%s)",
                lane.device_id, len(stored), exc,
            )  # fmt: skip
        elif isinstance(exc, Conflict):
            raise self._fenced(slot, f"the lane is not at {lane.seq}")
        if slot.stopped:
            raise Stopped(lane.device_id)
        return adopted

    def _fenced(self, slot: Slot, what: str) -> Fenced:
        slot.stopped = True
        metrics.FENCED.inc()
        log.warning(
            "lane fenced by another replica: %s", what, extra={"device_id": slot.lane.device_id}
        )
        return Fenced(slot.lane.device_id)

    async def cancel(self, slot: Slot, entries: Iterable[Entry], reason: str) -> None:
        """Take waiting entries out of the lane as cancelled (failed before hand-off)."""
        now = self.clock.now()
        lane = slot.lane
        async with slot.lock:
            events = [
                cancelled(lane.tenant_id, lane.device_id, e, reason, now)
                for e in entries
                if e.message_id in lane.pending
            ]
            if events:
                await self.append_locked(slot, events)
        if events:
            metrics.SENDS.labels("cancelled", reason).inc(len(events))

    # -- scheduling ----------------------------------------------------------------------

    def wake(self, device_id: str, at: datetime | None = None) -> None:
        slot = self.slots.get(device_id)
        if slot is None or slot.stopped:
            return
        if at is not None and at > self.clock.now():
            earliest = self._heap[0][0] if self._heap else None
            heapq.heappush(self._heap, (at, next(self._order), device_id))
            if earliest is None or at < earliest:
                self._woken.set()
            return
        if slot.task is None or slot.task.done():
            slot.task = asyncio.create_task(self._drive(slot), name=f"lane-{device_id}")

    def wake_all(self, partition: int | None = None) -> None:
        for device_id in list(self.slots):
            if partition is None or partition_of(device_id) == partition:
                self.wake(device_id)

    async def run(self) -> None:
        """Wake lanes when their time comes."""
        while True:
            now = self.clock.now()
            while self._heap and self._heap[0][0] <= now:
                _, _, device_id = heapq.heappop(self._heap)
                self.wake(device_id)
            self._woken.clear()
            if not self._heap:
                await self._woken.wait()
                continue
            sleeper = asyncio.ensure_future(self.clock.sleep_until(self._heap[0][0]))
            woken = asyncio.ensure_future(self._woken.wait())
            await asyncio.wait([sleeper, woken], return_when=asyncio.FIRST_COMPLETED)
            for waiter in (sleeper, woken):
                waiter.cancel()

    async def _drive(self, slot: Slot) -> None:
        device_id = slot.lane.device_id
        try:
            await self._steps(slot)
        except Fenced:
            self.on_fenced(partition_of(device_id))
        except Stopped:
            return
        except asyncio.CancelledError:
            raise
        except (TimeoutError, nats.errors.Error, AppendFailed) as exc:
            log.warning("lane of %s: the bus failed (%s); retrying shortly", device_id, exc)
            self.wake(device_id, self.clock.now() + timedelta(seconds=1))
        except Exception:
            log.exception("lane of %s failed; retrying shortly", device_id)
            self.wake(device_id, self.clock.now() + timedelta(seconds=1))

    async def _steps(self, slot: Slot) -> None:
        lane = slot.lane
        while not slot.stopped and lane.flight is None:
            if not self.sendable(lane.device_id):
                return
            now = self.clock.now()
            lane.zone = self.zone_of(lane.tenant_id)
            plan = lane.plan(
                now,
                self.rng,
                guard=self.settings.pacing_guard_seconds,
                held=self.held(slot),
                cap=self.cap_of(lane, now),
            )
            if plan.expired:
                await self.cancel(slot, plan.expired, "expired")
                continue
            if plan.entry is None or plan.due is None:
                if plan.wake is not None:
                    self.wake(lane.device_id, plan.wake)
                if lane.seq > lane.checkpointed_seq:
                    self._spawn(self.checkpoint(slot))
                return
            start = plan.due - timedelta(seconds=self.lead(plan))
            if start > now:
                self.wake(lane.device_id, start)
                return
            assert self.sender is not None
            await self.sender.dispatch(slot, plan)
            if lane.open_from() - slot.checkpointed_open_from >= CHECKPOINT_EVERY:
                await self.checkpoint(slot)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def lead(self, plan: Plan) -> float:
        """How long before the send the lane starts preparing (typing)."""
        assert plan.entry is not None
        if plan.entry.pacing.max_seconds <= 0:
            return 0.0
        typing = min(self.settings.typing_max_seconds, plan.gap)
        return max(typing, self.settings.prepare_seconds) + self.settings.prepare_seconds

    async def checkpoint(self, slot: Slot) -> None:
        lane = slot.lane
        open_from = lane.open_from()
        event = m.LaneCheckpointed(
            tenant_id=lane.tenant_id,
            occurred_at=self.clock.now(),
            device_id=lane.device_id,
            lane_seq=lane.seq,
            open_from_seq=open_from,
            last_dispatch_at=lane.last_send_at,
            day=lane.day.isoformat() if lane.day else "",
            sent_that_day=lane.sent_that_day,
        )
        subject = self.topology.lane_checkpoint(lane.tenant_id, lane.device_id)
        try:
            await self.appender.append(Append(subject, event, f"cp:{lane.device_id}:{lane.seq}"))
        except Exception as exc:
            log.warning("lane checkpoint of %s failed: %s", lane.device_id, exc)
            return
        lane.checkpointed_seq = max(lane.checkpointed_seq, event.lane_seq)
        slot.checkpointed_open_from = open_from

    def daily(self, now: datetime) -> tuple[int, int, int]:
        """(hand-offs today, sum of daily caps, lanes waiting at their cap) over the served
        lanes, each counted in its tenant's local day."""
        sent = capacity = waiting = 0
        days: dict[str, date] = {}
        for slot in self.slots.values():
            lane = slot.lane
            today = days.get(lane.zone)
            if today is None:
                today = days[lane.zone] = local_day(now, lane.zone)
            sent += lane.sent_on(today)
            cap = self.cap_of(lane, now)
            if cap is not None:
                capacity += cap
                waiting += bool(lane.pending) and lane.at_cap(now, cap)
        return sent, capacity, waiting

    def depth(self) -> tuple[int, int]:
        """(messages pending, lanes with a message in flight) over the served lanes."""
        pending = sum(len(s.lane.pending) for s in self.slots.values())
        busy = sum(1 for s in self.slots.values() if s.lane.flight is not None)
        return pending, busy


def _msg_id(event: Event, seq: int) -> str:
    if isinstance(event, m.LaneFenced):  # two owners fencing at once must not look alike
        return f"LaneFenced:{event.tenant_id}:{event.owner}:{event.epoch}:{seq}"
    message_id = getattr(event, "message_id", "")
    attempt = getattr(event, "attempt", 0)
    return f"{type(event).__name__}:{event.tenant_id}:{message_id}:{attempt}:{seq}"
