"""The lane's pacing rules, driven by hand with a fake clock and a seeded random source."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, date, datetime, timedelta

from wacast.contracts import messages as m
from wacast.contracts.devices import WARMUP_RAMP
from wacast.contracts.values import Pacing, RetryPolicy, SendWindow
from wacast.device_gateway.domain.lane import Lane
from wacast.device_gateway.domain.limits import daily_cap
from wacast.device_gateway.domain.pacing import retry_delay, typing_seconds

T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)  # a Monday
FAST = Pacing(min_seconds=0.05, max_seconds=0.2)


def accepted(
    message_id: str, *, pacing: Pacing = FAST, origin: str = "campaign", **extra: object
) -> m.MessageAccepted:
    return m.MessageAccepted(
        tenant_id="acme",
        occurred_at=T0,
        device_id="d1",
        message_id=message_id,
        lead_id=f"lead-{message_id}",
        origin=origin,  # type: ignore[arg-type]
        origin_id="c1" if origin == "campaign" else "e1",
        request_seq=1,
        pacing=pacing,
        **extra,  # type: ignore[arg-type]
    )


def dispatching(message_id: str, at: datetime, attempt: int = 1) -> m.MessageDispatching:
    return m.MessageDispatching(
        tenant_id="acme", occurred_at=at, device_id="d1", message_id=message_id, attempt=attempt
    )


class Run:
    """A lane fed events with increasing sequences, sending whenever its plan says so."""

    def __init__(self, lane: Lane, cap: int | None = None) -> None:
        self.lane = lane
        self.cap = cap
        self.seq = 0
        self.now = T0
        self.rng = random.Random(7)
        self.sends: list[tuple[datetime, str]] = []
        self.most_in_flight = 0

    def feed(self, event: m.MessageEvent) -> None:
        self.seq += 1
        self.lane.apply(self.seq, event)

    def drain(self, latency: float = 0.01) -> None:
        while True:
            plan = self.lane.plan(self.now, self.rng, cap=self.cap)
            if plan.entry is None:
                if plan.wake is None:
                    return
                self.now = plan.wake
                continue
            assert plan.due is not None
            self.now = max(self.now, plan.due)
            self.feed(dispatching(plan.entry.message_id, self.now))
            self.sends.append((self.now, plan.entry.message_id))
            self.most_in_flight = max(self.most_in_flight, int(self.lane.flight is not None))
            assert self.lane.plan(self.now, self.rng).entry is None, "a second send in flight"
            self.now += timedelta(seconds=latency)
            self.lane.settle(plan.entry.message_id)

    def gaps(self) -> list[float]:
        times = [at for at, _ in self.sends]
        return [(b - a).total_seconds() for a, b in itertools.pairwise(times)]


def test_gaps_are_always_within_the_pacing_range_and_never_two_sends_in_flight() -> None:
    run = Run(Lane("acme", "d1"))
    for i in range(300):
        run.feed(accepted(f"m{i}"))

    run.drain()

    assert len(run.sends) == 300
    assert run.most_in_flight == 1
    gaps = run.gaps()
    assert all(0.05 <= gap <= 0.2 for gap in gaps), (min(gaps), max(gaps))
    assert max(gaps) - min(gaps) > 0.1, "gaps are random across the range"


def test_campaign_and_sequence_messages_share_one_lane_paced_by_the_next_message() -> None:
    slow = Pacing(min_seconds=5, max_seconds=6)
    run = Run(Lane("acme", "d1"))
    run.feed(accepted("c1"))
    run.feed(accepted("s1", pacing=slow, origin="sequence"))
    run.feed(accepted("c2"))

    run.drain()

    assert [message for _, message in run.sends] == ["c1", "s1", "c2"]
    first, second = run.gaps()
    assert 5 <= first <= 6
    assert 0.05 <= second <= 0.2


def test_the_gap_is_drawn_once_however_often_the_lane_is_planned() -> None:
    lane = Lane("acme", "d1")
    lane.apply(1, accepted("m1"))
    lane.apply(2, accepted("m2"))
    lane.apply(3, dispatching("m1", T0))
    lane.settle("m1")
    rng = random.Random(1)

    dues = {lane.plan(T0 + timedelta(milliseconds=i), rng).due for i in range(20)}

    assert len(dues) == 1


def test_a_retry_goes_back_to_pending_and_waits_for_its_time() -> None:
    run = Run(Lane("acme", "d1"))
    run.feed(accepted("m1"))
    run.feed(dispatching("m1", T0))
    later = T0 + timedelta(seconds=30)
    run.feed(
        m.MessageRetryScheduled(
            tenant_id="acme",
            occurred_at=T0,
            device_id="d1",
            message_id="m1",
            attempt=2,
            not_before=later,
            reason="transient",
        )
    )

    assert run.lane.flight is None
    plan = run.lane.plan(T0, run.rng)
    assert plan.entry is None
    assert plan.wake == later
    assert run.lane.plan(later, run.rng).entry is not None
    assert run.lane.pending["m1"].attempt == 2


def test_expired_and_held_messages_are_not_sent() -> None:
    lane = Lane("acme", "d1")
    lane.apply(1, accepted("old", not_after=T0))
    lane.apply(2, accepted("held"))
    lane.apply(3, accepted("free", origin="sequence"))

    plan = lane.plan(T0, random.Random(1), held=lambda e: e.origin == "campaign")

    assert [e.message_id for e in plan.expired] == ["old"]
    assert plan.entry is not None
    assert plan.entry.message_id == "free"


def test_a_closed_send_window_wakes_the_lane_when_it_opens() -> None:
    window = SendWindow(days=[0], start_hour=10, end_hour=11, timezone="Europe/Berlin")
    lane = Lane("acme", "d1")
    lane.apply(1, accepted("m1", window=window))

    plan = lane.plan(T0, random.Random(1))  # 09:00 UTC = 10:00 in Berlin: open
    closed = lane.plan(T0 + timedelta(hours=1), random.Random(1))

    assert plan.entry is not None
    assert closed.entry is None
    assert closed.wake == datetime(2030, 1, 14, 9, 0, tzinfo=UTC)


def test_a_replay_resumes_from_the_oldest_open_entry() -> None:
    lane = Lane("acme", "d1")
    lane.apply(10, accepted("m1"))
    lane.apply(11, accepted("m2"))
    lane.apply(12, dispatching("m1", T0))

    assert lane.open_from() == 10
    lane.settle("m1")
    assert lane.open_from() == 11
    lane.apply(13, dispatching("m2", T0))
    lane.settle("m2")
    assert lane.open_from() == 14
    assert lane.idle


def test_typing_grows_with_the_text_within_its_bounds() -> None:
    assert typing_seconds("hi", FAST, 0.1, 0.05, 5.0) == 0.1
    assert typing_seconds("x" * 1000, Pacing(), 20.0, 0.05, 5.0) == 5.0
    assert typing_seconds("x" * 10, Pacing(), 20.0, 0.05, 5.0) == 0.5
    assert typing_seconds("x" * 10, Pacing(min_seconds=0, max_seconds=0), 0.0, 0.05, 5.0) == 0


def test_retries_back_off_exponentially() -> None:
    policy = RetryPolicy(max_attempts=4, backoff_seconds=30)

    assert [retry_delay(policy, n) for n in (2, 3, 4)] == [30, 60, 120]


SAO_PAULO = "America/Sao_Paulo"  # UTC-3 all year: local midnight is 03:00 UTC


def test_a_lane_at_its_daily_cap_holds_until_local_midnight_then_goes_on_paced() -> None:
    slow = Pacing(min_seconds=10, max_seconds=20)
    run = Run(Lane("acme", "d1", zone=SAO_PAULO), cap=3)
    for i in range(5):
        run.feed(accepted(f"m{i}", pacing=slow))

    run.drain()

    midnight = datetime(2030, 1, 8, 3, 0, tzinfo=UTC)
    times = [at for at, _ in run.sends]
    assert len(times) == 5
    assert all(at < midnight for at in times[:3])
    assert all(at >= midnight + timedelta(seconds=10) for at in times[3:])
    assert 10 <= (times[4] - times[3]).total_seconds() <= 20
    assert all(10 <= gap <= 20 for gap in run.gaps()[:2])


def test_a_lane_at_its_cap_keeps_its_messages_pending_and_wakes_at_local_midnight() -> None:
    lane = Lane("acme", "d1", zone=SAO_PAULO)
    lane.apply(1, accepted("m1"))
    lane.apply(2, accepted("m2"))
    lane.apply(3, dispatching("m1", T0))
    lane.settle("m1")
    after = T0 + timedelta(hours=1)

    plan = lane.plan(after, random.Random(1), cap=1)

    assert plan.entry is None
    assert plan.wake == datetime(2030, 1, 8, 3, 0, tzinfo=UTC)
    assert list(lane.pending) == ["m2"]
    assert not lane.eligible(lane.pending["m2"], after, cap=1)
    assert lane.plan(after, random.Random(1), cap=2).entry is not None
    assert lane.plan(after, random.Random(1)).entry is not None


def test_a_replay_from_a_checkpoint_counts_each_hand_off_once() -> None:
    lane = Lane("acme", "d1", zone=SAO_PAULO)
    events: list[m.MessageEvent] = [accepted(f"m{i}") for i in range(4)]
    events += [dispatching("m0", T0), dispatching("m1", T0 + timedelta(minutes=1))]
    for seq, event in enumerate(events, start=1):
        lane.apply(seq, event)
        if isinstance(event, m.MessageDispatching):
            lane.settle(event.message_id)  # its outcome came
    checkpoint = m.LaneCheckpointed(
        tenant_id="acme", occurred_at=T0, device_id="d1", lane_seq=lane.seq,
        open_from_seq=lane.open_from(), day=lane.day.isoformat() if lane.day else "",
        sent_that_day=lane.sent_that_day,
    )  # fmt: skip
    events.append(dispatching("m2", T0 + timedelta(minutes=2)))

    rebuilt = Lane("acme", "d1", zone=SAO_PAULO)
    rebuilt.restore(checkpoint)
    for seq, event in enumerate(events, start=1):
        if seq >= checkpoint.open_from_seq:
            rebuilt.apply(seq, event)

    assert checkpoint.open_from_seq == 3  # m2 and m3 were open: their accepts are replayed
    assert rebuilt.sent_on(date(2030, 1, 7)) == 3
    assert rebuilt.sent_on(date(2030, 1, 8)) == 0
    assert list(rebuilt.pending) == ["m3"]


def test_hand_offs_count_in_the_local_day_of_the_tenant() -> None:
    lane = Lane("acme", "d1", zone=SAO_PAULO)
    lane.apply(1, accepted("m1"))
    lane.apply(2, accepted("m2"))
    lane.apply(3, dispatching("m1", datetime(2030, 1, 8, 2, 0, tzinfo=UTC)))  # 23:00 local
    lane.settle("m1")
    lane.apply(4, dispatching("m2", datetime(2030, 1, 8, 3, 30, tzinfo=UTC)))  # 00:30 local

    assert lane.sent_on(date(2030, 1, 8)) == 1
    assert lane.day == date(2030, 1, 8)


def test_the_daily_cap_is_the_devices_own_else_the_tenants_lowered_by_the_warm_up_ramp() -> None:
    paired = date(2030, 1, 7)
    assert daily_cap(None, None, False, paired, paired) is None
    assert daily_cap(None, 100, False, paired, paired) == 100
    assert daily_cap(50, 100, False, paired, paired) == 50
    assert daily_cap(0, 100, False, paired, paired) == 0
    assert daily_cap(None, None, True, paired, paired) == WARMUP_RAMP[0]
    assert daily_cap(30, None, True, paired, paired + timedelta(days=1)) == min(30, WARMUP_RAMP[1])
    assert daily_cap(1000, None, True, paired, paired + timedelta(days=2)) == WARMUP_RAMP[2]
    after_ramp = paired + timedelta(days=len(WARMUP_RAMP))
    assert daily_cap(1000, None, True, paired, after_ramp) == 1000
    assert daily_cap(None, None, True, paired, after_ramp) is None
    assert daily_cap(None, 500, True, None, paired) == 500  # never paired: nothing to ramp


def test_a_window_without_a_timezone_of_its_own_is_in_the_tenants() -> None:
    window = SendWindow(days=[0], start_hour=9, end_hour=10)
    lane = Lane("acme", "d1", zone=SAO_PAULO)
    lane.apply(1, accepted("m1", window=window))

    plan = lane.plan(T0, random.Random(1))  # 09:00 UTC = 06:00 in Sao Paulo: closed

    assert plan.entry is None
    assert plan.wake == datetime(2030, 1, 7, 12, 0, tzinfo=UTC)
