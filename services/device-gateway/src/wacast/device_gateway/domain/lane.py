"""A device's send lane: what waits (pending), what is in flight, and what goes next.

The lane is rebuilt by applying the events of its lane subject in order (`apply`); the
outcome of a message in flight lives on the message's own subject and is reported with
`settle`. `plan` picks the next message and when it may go, from a clock value and a
random source it is given: at most one message in flight, and between two sends a random
gap uniform in the next message's pacing range. The lane is a plain mutable object (a lane
may hold 100,000 entries) but does no I/O.

Daily cap: the lane counts its hand-offs (`MessageDispatching`) per local day of its
tenant's timezone; once the day's count reaches the cap it is given, nothing goes before
the next local midnight, and the first send of a capped day comes a drawn gap after
midnight at the earliest (capped devices do not all send at the stroke of midnight). A
checkpoint carries the day's count, and a replay counts only the hand-offs after it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from wacast.contracts import messages as m
from wacast.contracts.base import Event
from wacast.contracts.values import Origin, Pacing, SendWindow
from wacast.device_gateway.domain.limits import day_start, local_day, next_midnight
from wacast.device_gateway.domain.pacing import draw_gap, window_open, window_opens


@dataclass(slots=True)
class Entry:
    message_id: str
    lead_id: str
    origin: Origin
    origin_id: str
    request_seq: int
    seq: int
    """Lane sequence of its `MessageAccepted` (a checkpoint never skips an open entry)."""
    accepted_at: datetime
    pacing: Pacing
    window: SendWindow | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    attempt: int = 1


@dataclass(slots=True)
class Flight:
    entry: Entry
    attempt: int
    handed_at: datetime


@dataclass(frozen=True, slots=True)
class Plan:
    """What the lane does next: send `entry` at `due` (after a gap of `gap` seconds), or
    nothing before `wake` (None: nothing until something happens); `expired` entries are
    past their `not_after` and must be cancelled."""

    entry: Entry | None = None
    due: datetime | None = None
    gap: float = 0.0
    wake: datetime | None = None
    expired: tuple[Entry, ...] = ()


Held = Callable[[Entry], bool]


def _never(_: Entry) -> bool:
    return False


@dataclass(slots=True)
class Lane:
    tenant_id: str
    device_id: str
    seq: int = 0
    """Last sequence of the lane subject seen: the next append expects it (fencing)."""
    pending: dict[str, Entry] = field(default_factory=dict)
    flight: Flight | None = None
    last_send_at: datetime | None = None
    gap: float | None = None
    """The gap drawn for the next send; drawn once, so re-planning does not re-roll it."""
    gap_pacing: Pacing | None = None
    checkpointed_seq: int = 0
    zone: str = "UTC"
    """The tenant's timezone: local days of the daily cap, windows without a zone."""
    day: date | None = None
    sent_that_day: int = 0
    """Hand-offs on local day `day`."""
    counted_through: int = 0
    """Hand-offs at or below this lane sequence are counted already (by a checkpoint)."""

    def apply(self, seq: int, event: Event) -> None:
        """Fold one event of the lane subject stored at `seq`."""
        self.seq = max(self.seq, seq)
        match event:
            case m.MessageAccepted():
                if event.message_id not in self.pending and not self.is_flying(event.message_id):
                    self.pending[event.message_id] = Entry(
                        message_id=event.message_id,
                        lead_id=event.lead_id,
                        origin=event.origin,
                        origin_id=event.origin_id,
                        request_seq=event.request_seq,
                        seq=seq,
                        accepted_at=event.occurred_at,
                        pacing=event.pacing,
                        window=event.window,
                        not_before=event.not_before,
                        not_after=event.not_after,
                    )
            case m.MessageDispatching():
                self._count(seq, event.occurred_at)
                entry = self.pending.pop(event.message_id, None)
                if entry is not None:
                    self.flight = Flight(entry, event.attempt, event.occurred_at)
                    self.last_send_at = event.occurred_at
                    self.gap = None
            case m.MessageRetryScheduled():
                flight = self.flight
                if flight is not None and flight.entry.message_id == event.message_id:
                    entry = flight.entry
                    entry.attempt = event.attempt
                    entry.not_before = event.not_before
                    self.pending[entry.message_id] = entry
                    self.flight = None
            case m.MessageCancelled():
                self.pending.pop(event.message_id, None)
            case m.LaneCheckpointed():
                self.restore(event)

    def restore(self, checkpoint: m.LaneCheckpointed) -> None:
        """Start from a checkpoint: its count stands for every hand-off up to its
        `lane_seq`, so a replay from `open_from_seq` counts only those after it."""
        self.seq = max(self.seq, checkpoint.lane_seq)
        self.checkpointed_seq = checkpoint.lane_seq
        self.counted_through = checkpoint.lane_seq
        self.last_send_at = checkpoint.last_dispatch_at
        self.day = date.fromisoformat(checkpoint.day) if checkpoint.day else None
        self.sent_that_day = checkpoint.sent_that_day if checkpoint.day else 0

    def _count(self, seq: int, at: datetime) -> None:
        if seq <= self.counted_through:
            return
        day = local_day(at, self.zone)
        if day == self.day:
            self.sent_that_day += 1
        else:  # a new day (or the tenant moved to another timezone: its day starts now)
            self.day, self.sent_that_day = day, 1

    def sent_on(self, day: date) -> int:
        """Hand-offs on local day `day`."""
        return self.sent_that_day if day == self.day else 0

    def at_cap(self, now: datetime, cap: int | None) -> bool:
        return cap is not None and self.sent_on(local_day(now, self.zone)) >= cap

    def is_flying(self, message_id: str) -> bool:
        return self.flight is not None and self.flight.entry.message_id == message_id

    def holds(self, message_id: str) -> bool:
        return message_id in self.pending or self.is_flying(message_id)

    def settle(self, message_id: str) -> None:
        """The message in flight has its outcome: the lane may go on."""
        if self.is_flying(message_id):
            self.flight = None

    def sent_at(self, at: datetime) -> None:
        """The driver was called at `at`: the next gap counts from here."""
        self.last_send_at = at

    def open_from(self) -> int:
        """Where a replay must start to see every open entry."""
        seqs = [entry.seq for entry in self.pending.values()]
        if self.flight is not None:
            seqs.append(self.flight.entry.seq)
        return min(seqs) if seqs else self.seq + 1

    @property
    def idle(self) -> bool:
        return not self.pending and self.flight is None

    def plan(
        self,
        now: datetime,
        rng: random.Random,
        *,
        guard: float = 0.0,
        held: Held = _never,
        cap: int | None = None,
    ) -> Plan:
        """`cap`: hand-offs allowed on the local day of `now` (None: no cap)."""
        if self.flight is not None:
            return Plan()
        if self.pending and self.at_cap(now, cap):
            return Plan(wake=next_midnight(now, self.zone))  # expired ones: the sweeper's
        wake: datetime | None = None
        expired: list[Entry] = []
        chosen: Entry | None = None
        for entry in self.pending.values():
            if entry.not_after is not None and now >= entry.not_after:
                expired.append(entry)
                continue
            if held(entry):
                continue
            later = _not_yet(entry, now, self.zone)
            if later is not None:
                wake = later if wake is None else min(wake, later)
                continue
            chosen = entry
            break
        if chosen is None:
            return Plan(wake=wake, expired=tuple(expired))
        if self.gap is None or self.gap_pacing != chosen.pacing:
            self.gap = draw_gap(chosen.pacing, rng, guard)
            self.gap_pacing = chosen.pacing
        gap = timedelta(seconds=self.gap)
        due = now if self.last_send_at is None else self.last_send_at + gap
        if cap is not None:
            today = local_day(now, self.zone)
            if self.sent_on(today) == 0:
                due = max(due, day_start(today, self.zone, now) + gap)
        return Plan(chosen, max(due, now), self.gap, wake, tuple(expired))

    def eligible(
        self, entry: Entry, now: datetime, held: Held = _never, cap: int | None = None
    ) -> bool:
        """`entry` may still be handed to the driver at `now`."""
        if entry.message_id not in self.pending or self.flight is not None:
            return False
        if entry.not_after is not None and now >= entry.not_after:
            return False
        if self.at_cap(now, cap):
            return False
        return not held(entry) and _not_yet(entry, now, self.zone) is None


def _not_yet(entry: Entry, now: datetime, zone: str) -> datetime | None:
    """When `entry` becomes sendable, or None when it is sendable at `now`."""
    if entry.not_before is not None and entry.not_before > now:
        return entry.not_before
    if entry.window is not None and not window_open(entry.window, now, zone):
        return window_opens(entry.window, now, zone)
    return None


def cancelled(
    tenant_id: str, device_id: str, entry: Entry, reason: str, now: datetime
) -> m.MessageCancelled:
    return m.MessageCancelled(
        tenant_id=tenant_id,
        occurred_at=now,
        device_id=device_id,
        message_id=entry.message_id,
        lead_id=entry.lead_id,
        origin=entry.origin,
        origin_id=entry.origin_id,
        reason=reason,
    )
