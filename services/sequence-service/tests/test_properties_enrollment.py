"""An enrollment driven by random timers, outcomes (late and repeated ones too), step edits,
device and lead changes, pauses, removals and replies never breaks its rules: a step is
requested at most once and only when no other is in play, its message id is the step's, an
ended enrollment stays ended and requests nothing, a step's record only moves from
requested to sent or failed, the counters match the records, and the fold of the events is
the state decided step by step (`domain/enrollment.py` and `domain/steps.py`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from wacast.contracts import ids
from wacast.contracts.messages import MessageRequested, SendsHeld, SendsReleased, SendsWithdrawn
from wacast.contracts.sequences import (
    EnrollmentCompleted,
    EnrollmentEventBase,
    EnrollmentPaused,
    EnrollmentRemoved,
    EnrollmentResumed,
    EnrollmentStepRequested,
)
from wacast.contracts.values import MediaRef, MessageContent, Pacing, RetryPolicy, SendWindow, Step
from wacast.sequence_service.domain import enrollment as en
from wacast.sequence_service.domain import steps
from wacast.sequence_service.domain.sequence import Sequence
from wacast.sequence_service.domain.views import DeviceView, LeadView

START = datetime(2030, 1, 7, 8, tzinfo=UTC)
TZ = "Europe/Lisbon"
FINAL = ("completed", "failed", "removed")
MEDIA = {"img": MediaRef(media_id="img", kind="image", mime="image/jpeg", object_name="o")}

step = st.builds(
    Step,
    id=st.sampled_from(["a", "b", "c", "d"]),
    delay_seconds=st.sampled_from([0, 30, 3600]),
    message=st.sampled_from(
        [
            MessageContent(text="Hi {name}"),
            MessageContent(text="Look", media_id="img"),
            MessageContent(text="Gone", media_id="lost"),
        ]
    ),
    window=st.sampled_from([None, SendWindow(days=[0, 2, 4], start_hour=9, end_hour=12)]),
)
step_lists = st.lists(step, min_size=1, max_size=4, unique_by=lambda s: s.id)
BY_KIND: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "fire": st.tuples(
        st.just("fire"),
        st.sampled_from(["ok"] * 20 + ["no_device", "opted_out", "deleted"]),
        st.sampled_from(["online"] * 12 + ["offline"] * 3 + ["deleted", "unknown"]),
    ),
    "outcome": st.tuples(st.just("outcome"), st.booleans()),
    "wait": st.tuples(st.just("wait"), st.integers(1, 200_000)),
    "late_outcome": st.tuples(st.just("late_outcome"), st.integers(0, 5), st.booleans()),
    "edit": st.tuples(st.just("edit"), step_lists),
    "pause": st.tuples(st.just("pause")),
    "resume": st.tuples(st.just("resume")),
    "end": st.one_of(
        st.tuples(st.just("remove"), st.sampled_from(["requested", "opted_out", "device_deleted"])),
        st.tuples(st.just("replied")),
    ),
}
WEIGHTS = {"fire": 10, "outcome": 8, "wait": 2, "late_outcome": 2, "edit": 2, "pause": 1,
           "resume": 2, "end": 1}  # fmt: skip
"""Timers firing and outcomes come most often; what ends an enrollment least."""
operations = st.sampled_from([k for k, n in WEIGHTS.items() for _ in range(n)]).flatmap(
    BY_KIND.__getitem__
)
"""Timers firing and outcomes come most often; what ends an enrollment comes least."""


@dataclass
class Run:
    sequence: Sequence
    state: en.Enrollment
    history: list[EnrollmentEventBase]
    now: datetime = START
    requests: list[MessageRequested] = field(default_factory=list)
    held: bool = False
    """What waits in the lane for this enrollment is held (`SendsHeld` without release)."""

    def decide(self, op: tuple[Any, ...]) -> en.Decision:
        s, seq, now = self.state, self.sequence, self.now
        match op:
            case ("wait", seconds):
                self.now += timedelta(seconds=seconds)
                return en.NOTHING
            case ("fire", lead_is, device_is):
                if s.due_at is not None:  # the timer fires at the due time, or late
                    self.now = now = max(now, s.due_at)
                lead = LeadView(
                    tenant_id="acme",
                    lead_id="l1",
                    device_id="" if lead_is == "no_device" else "d1",
                    opted_out=lead_is == "opted_out",
                    deleted=lead_is == "deleted",
                    phone="+14155550100",
                    name="Ada",
                )
                device = None if device_is == "unknown" else DeviceView(
                    online=device_is == "online", deleted=device_is == "deleted"
                )  # fmt: skip
                around = steps.Surroundings(seq, lead, device, TZ, MEDIA, now)
                return steps.fire(s, around)
            case ("outcome", sent):
                if not s.message_id:
                    return en.NOTHING
                return steps.outcome(
                    s, seq, message_id=s.message_id, sent=sent, reason="rejected", at=now,
                    timezone=TZ,
                )  # fmt: skip
            case ("late_outcome", nth, sent):
                if not self.requests:  # only what was requested can have an outcome
                    return en.NOTHING
                message_id = self.requests[nth % len(self.requests)].message_id
                return steps.outcome(
                    s, seq, message_id=message_id, sent=sent, reason="timeout", at=now,
                    timezone=TZ,
                )  # fmt: skip
            case ("edit", new_steps):
                self.sequence = msgspec.structs.replace(seq, steps=new_steps)
                return steps.replan(s, self.sequence, now, TZ)
            case ("pause",):
                return en.pause(s, "requested", now)
            case ("resume",):
                return en.resume(s, "requested", now)
            case ("remove", reason):
                return en.remove(s, reason, now)
            case ("replied",):
                return en.replied(s, seq, now)
        raise AssertionError(op)

    def apply(self, decision: en.Decision) -> None:
        before = self.state
        if decision.request is not None:
            request = decision.request
            assert before.status == "active"
            assert not before.message_id, "a second step in play"
            assert request.origin_id == before.enrollment_id
            assert request.message_id == ids.step_message_id(before.enrollment_id, request.step_id)
            self.requests.append(request)
        control = decision.control
        if isinstance(control, SendsWithdrawn):
            assert any(
                isinstance(e, EnrollmentRemoved | EnrollmentCompleted) for e in decision.events
            )
        if isinstance(control, SendsHeld):
            assert not self.held, "held twice"
            assert any(isinstance(e, EnrollmentPaused) for e in decision.events)
            self.held = True
        if isinstance(control, SendsReleased):
            assert self.held, "released what was not held"
            assert any(isinstance(e, EnrollmentResumed) for e in decision.events)
            self.held = False
        for event in decision.events:
            assert isinstance(event, EnrollmentEventBase)
            assert event.enrollment_id == before.enrollment_id
            after = en.evolve(self.state, event)
            assert after is not None
            self.state = after
            self.history.append(event)
        if before.status in FINAL:
            assert self.state.status == before.status, "an ended enrollment moved on"
            assert decision.request is None
            assert self.state.due_at is None
        for step_id, record in before.done.items():
            now_record = self.state.done[step_id]
            assert record == now_record or (record, now_record) in (
                ("requested", "sent"),
                ("requested", "failed"),
            ), (step_id, record, now_record)


def started(steps_: list[Step], on_failure: str, on_reply: str) -> Run:
    sequence = Sequence(
        tenant_id="acme",
        sequence_id="s1",
        name="Welcome",
        steps=steps_,
        pacing=Pacing(),
        retry=RetryPolicy(),
        triggers=[],
        on_failure=on_failure,  # type: ignore[arg-type]
        stop_on_reply=on_reply,  # type: ignore[arg-type]
        status="active",
    )
    events = en.start(
        sequence, lead_id="l1", device_id="d1", nth=1, source="api", now=START, timezone=TZ
    )
    history = [e for e in events if isinstance(e, EnrollmentEventBase)]
    state = en.replay(history)
    assert state is not None
    return Run(sequence, state, history)


@given(
    step_lists,
    st.sampled_from(["stop", "continue"]),
    st.sampled_from(["end", "pause", "ignore"]),
    st.lists(operations, min_size=10, max_size=40),
)
def test_an_enrollment_keeps_its_rules_whatever_happens(
    steps_: list[Step], on_failure: str, on_reply: str, script: list[tuple[Any, ...]]
) -> None:
    run = started(steps_, on_failure, on_reply)
    for op in script:
        run.apply(run.decide(op))

    requested = [r.message_id for r in run.requests]
    assert len(requested) == len(set(requested)), "a step was requested twice"
    recorded = [e.step_id for e in run.history if isinstance(e, EnrollmentStepRequested)]
    assert len(recorded) == len(set(recorded))
    assert run.state.sent == sum(1 for r in run.state.done.values() if r == "sent")
    assert run.state.failed == sum(1 for r in run.state.done.values() if r == "failed")
    assert en.replay(run.history) == run.state
