"""A lane driven by random requests, outcomes, withdrawals, checkpoints and the passing of
time, as the gateway drives it, never breaks the sending rules: at most one message in
flight, every gap between two sends within the next message's pacing, a message handed to
the driver again only after a retry was scheduled for it, nothing handed over after its
outcome or its cancellation, and the lane rebuilt from its checkpoint and events is the lane
folded as they happened."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from wacast.contracts import messages as m
from wacast.contracts.base import Event
from wacast.contracts.values import Pacing, SendWindow
from wacast.device_gateway.domain.lane import Lane, cancelled

START = datetime(2030, 1, 7, 8, 30, tzinfo=UTC)  # a Monday
T, D = "acme", "dev1"
GUARD = 0.05
PACINGS = [Pacing(min_seconds=0, max_seconds=0), Pacing(min_seconds=1, max_seconds=5),
           Pacing(min_seconds=10, max_seconds=30)]  # fmt: skip
MESSAGES = [f"m{i}" for i in range(6)]

operations = st.one_of(
    st.tuples(
        st.just("request"),
        st.sampled_from(MESSAGES),
        st.sampled_from(PACINGS),
        st.sampled_from([None, 0, 60]),  # not_before, seconds from now
        st.sampled_from([None, 5, 3600]),  # not_after, seconds from now
        st.sampled_from([None, SendWindow(days=[0, 1, 2, 3, 4], start_hour=9, end_hour=17)]),
    ),
    st.tuples(st.just("send")),
    st.tuples(st.just("outcome"), st.sampled_from(["sent", "failed", "retry", "unknown"])),
    st.tuples(st.just("withdraw"), st.sampled_from(MESSAGES)),
    st.tuples(st.just("wait"), st.integers(1, 4000)),
    st.tuples(st.just("checkpoint")),
)


@dataclass
class Gateway:
    """What the gateway does around the lane, reduced to the lane's own events."""

    rng: random.Random
    lane: Lane = field(default_factory=lambda: Lane(T, D))
    now: datetime = START
    events: list[tuple[int, Event]] = field(default_factory=list)
    checkpoint: m.LaneCheckpointed | None = None
    ended: set[str] = field(default_factory=set)
    """Messages with a final outcome or cancelled: their requests are never taken again."""
    sends: list[tuple[datetime, str]] = field(default_factory=list)
    retries: dict[str, int] = field(default_factory=dict)

    def append(self, event: Event) -> None:
        seq = len(self.events) + 1
        self.events.append((seq, event))
        self.lane.apply(seq, event)

    def base(self) -> dict[str, Any]:
        return {"tenant_id": T, "occurred_at": self.now, "device_id": D}

    def step(self, op: tuple[Any, ...]) -> None:
        match op:
            case ("request", message_id, pacing, not_before, not_after, window):
                if self.lane.holds(message_id) or message_id in self.ended:
                    return  # the intake's check: a request recorded before is not taken again
                self.append(
                    m.MessageAccepted(
                        **self.base(),
                        message_id=message_id,
                        lead_id=f"lead-{message_id}",
                        origin="campaign",
                        origin_id="c1",
                        request_seq=len(self.events) + 1,
                        pacing=pacing,
                        window=window,
                        not_before=None if not_before is None else self.now + _s(not_before),
                        not_after=None if not_after is None else self.now + _s(not_after),
                    )
                )
            case ("send",):
                self.send()
            case ("outcome", what):
                self.outcome(what)
            case ("withdraw", message_id):
                entry = self.lane.pending.get(message_id)
                if entry is not None:
                    self.append(cancelled(T, D, entry, "campaign_cancelled", self.now))
                    self.ended.add(message_id)
            case ("wait", seconds):
                self.now += _s(seconds)
            case ("checkpoint",):
                self.checkpoint = m.LaneCheckpointed(
                    tenant_id=T,
                    occurred_at=self.now,
                    device_id=D,
                    lane_seq=self.lane.seq,
                    open_from_seq=self.lane.open_from(),
                    last_dispatch_at=self.lane.last_send_at,
                )

    def send(self) -> None:
        """Plan; cancel what expired; hand the chosen message over when it is due."""
        plan = self.lane.plan(self.now, self.rng, guard=GUARD)
        if self.lane.flight is not None:
            assert plan.entry is None, "a second message planned while one is in flight"
            return
        for entry in plan.expired:
            self.append(cancelled(T, D, entry, "expired", self.now))
            self.ended.add(entry.message_id)
        if plan.entry is None or plan.due is None:
            return
        entry, pacing = plan.entry, plan.entry.pacing
        assert pacing.min_seconds <= plan.gap <= pacing.max_seconds
        previous = self.lane.last_send_at
        self.now = max(self.now, plan.due)
        if not self.lane.eligible(entry, self.now):
            return  # it became unsendable while waiting (window closed, expired)
        if previous is not None:
            assert (self.now - previous).total_seconds() >= pacing.min_seconds, "gap too short"
        assert entry.message_id not in self.ended, "handed over after its outcome"
        dispatched = sum(1 for _, mid in self.sends if mid == entry.message_id)
        assert dispatched <= self.retries.get(entry.message_id, 0), "handed over twice"
        self.append(m.MessageDispatching(**self.base(), message_id=entry.message_id,
                                         attempt=entry.attempt))  # fmt: skip
        self.sends.append((self.now, entry.message_id))

    def outcome(self, what: str) -> None:
        flight = self.lane.flight
        if flight is None:
            return
        message_id = flight.entry.message_id
        self.now += _s(1)
        self.lane.sent_at(self.now)  # the driver answered: the next gap counts from here
        if what == "retry":
            self.retries[message_id] = self.retries.get(message_id, 0) + 1
            self.append(
                m.MessageRetryScheduled(
                    **self.base(),
                    message_id=message_id,
                    attempt=flight.attempt + 1,
                    not_before=self.now + _s(30),
                    reason="transient",
                )
            )
            return
        self.ended.add(message_id)
        self.lane.settle(message_id)  # the outcome is on the message's own subject

    def rebuilt(self) -> Lane:
        """The lane as a replica taking the partition rebuilds it."""
        lane = Lane(T, D)
        start = 1
        if self.checkpoint is not None:
            lane.apply(0, self.checkpoint)
            start = self.checkpoint.open_from_seq
        for seq, event in self.events:
            if seq >= start:
                lane.apply(seq, event)
        lane.seq = max(lane.seq, self.lane.seq)
        flying = lane.flight.entry.message_id if lane.flight else ""
        if flying in self.ended:
            lane.settle(flying)
        return lane


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


@given(st.lists(operations, max_size=60), st.integers(0, 2**32))
def test_a_lane_keeps_its_sending_rules_whatever_happens(
    script: list[tuple[Any, ...]], seed: int
) -> None:
    gateway = Gateway(random.Random(seed))
    for op in script:
        gateway.step(op)
        flying = gateway.lane.flight
        assert flying is None or flying.entry.message_id not in gateway.lane.pending

    rebuilt = gateway.rebuilt()
    lane = gateway.lane
    assert sorted(rebuilt.pending) == sorted(lane.pending)
    assert {k: v.attempt for k, v in rebuilt.pending.items()} == {
        k: v.attempt for k, v in lane.pending.items()
    }
    assert (rebuilt.flight and rebuilt.flight.entry.message_id) == (
        lane.flight and lane.flight.entry.message_id
    )
    times = [at for at, _ in gateway.sends]
    assert times == sorted(times)
