"""The enrollment's decisions: state and one happening in, events out; no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal, TypedDict

from msgspec.structs import replace

from wacast.contracts import ids
from wacast.contracts.base import Event
from wacast.contracts.leads import LeadCreated, LeadStatusChanged, LeadTagsChanged
from wacast.contracts.messages import SendsHeld, SendsReleased, SendsWithdrawn
from wacast.contracts.sequences import (
    EnrollmentCompleted,
    EnrollmentEventBase,
    EnrollmentFailed,
    EnrollmentPaused,
    EnrollmentRemoved,
    EnrollmentStepFailed,
    EnrollmentStepRequested,
    EnrollmentStepScheduled,
    EnrollmentStepSent,
)
from wacast.contracts.values import MessageContent, Pacing, RetryPolicy, SendWindow, Step, Trigger
from wacast.sequence_service.domain import enrollment as rules
from wacast.sequence_service.domain.enrollment import Decision, Enrollment, replay
from wacast.sequence_service.domain.sequence import Sequence
from wacast.sequence_service.domain.steps import Surroundings, fire, outcome, replan
from wacast.sequence_service.domain.triggers import fires
from wacast.sequence_service.domain.views import DeviceView, LeadView

T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


class LeadStamp(TypedDict):
    """The fields every lead event starts with."""

    tenant_id: str
    lead_id: str
    occurred_at: datetime


ONLINE = DeviceView(online=True)
LEAD = LeadView(tenant_id="t", lead_id="l1", device_id="d1", phone="+1415", name="Ana")


def step(step_id: str, delay: int = 3600, text: str = "Hi {name}", **kw: object) -> Step:
    return Step(id=step_id, delay_seconds=delay, message=MessageContent(text=text), **kw)  # type: ignore[arg-type]


def drip(*steps: Step, on_failure: Literal["stop", "continue"] = "stop") -> Sequence:
    return Sequence(
        tenant_id="t",
        sequence_id="s1",
        name="Drip",
        steps=list(steps),
        pacing=Pacing(min_seconds=5, max_seconds=9),
        retry=RetryPolicy(),
        triggers=[],
        on_failure=on_failure,
        stop_on_reply="end",
        status="active",
        activated_at=T0,
    )


def enrolled(seq: Sequence, at: datetime = T0) -> Enrollment:
    events = rules.start(
        seq, lead_id="l1", device_id="d1", nth=1, source="api", now=at, timezone="UTC"
    )
    return apply(None, events)


def apply(state: Enrollment | None, events: list[Event]) -> Enrollment:
    for event in events:
        assert isinstance(event, EnrollmentEventBase)
        state = rules.evolve(state, event)
    assert state is not None
    return state


def around(seq: Sequence, now: datetime, **kw: object) -> Surroundings:
    fields: dict[str, object] = {"lead": LEAD, "device": ONLINE, "timezone": "UTC", "media": {}}
    fields.update(kw)
    return Surroundings(sequence=seq, now=now, **fields)  # type: ignore[arg-type]


def types(decision: Decision) -> list[str]:
    return [type(e).__name__ for e in decision.events]


def test_enrolling_schedules_the_first_step_its_delay_after_enrollment() -> None:
    state = enrolled(drip(step("a", delay=600), step("b")))
    assert (state.step_id, state.due_at) == ("a", T0 + timedelta(seconds=600))


def test_a_due_step_is_requested_through_the_leads_device_with_the_sequence_pacing() -> None:
    seq = drip(step("a"), step("b"))
    decision = fire(enrolled(seq), around(seq, T0 + HOUR))
    request = decision.request
    assert request is not None
    assert types(decision) == ["EnrollmentStepRequested"]
    assert request.message_id == ids.step_message_id(ids.enrollment_id("s1", "l1"), "a")
    assert (request.device_id, request.to, request.content.text) == ("d1", "+1415", "Hi Ana")
    assert request.pacing == Pacing(min_seconds=5, max_seconds=9)
    assert (request.origin, request.sequence_id, request.step_id) == ("sequence", "s1", "a")


def test_nothing_fires_before_the_due_time() -> None:
    seq = drip(step("a"))
    assert not fire(enrolled(seq), around(seq, T0 + HOUR - timedelta(seconds=1)))


def test_an_offline_device_pauses_the_enrollment_instead_of_sending() -> None:
    seq = drip(step("a"))
    decision = fire(enrolled(seq), around(seq, T0 + HOUR, device=DeviceView(online=False)))
    assert decision.request is None
    paused = decision.events[0]
    assert isinstance(paused, EnrollmentPaused)
    assert (paused.reason, paused.device_id) == ("device_offline", "d1")


def test_a_deleted_device_or_an_opted_out_lead_removes_and_withdraws() -> None:
    seq = drip(step("a"))
    gone = fire(enrolled(seq), around(seq, T0 + HOUR, device=DeviceView(deleted=True)))
    opted = fire(
        enrolled(seq),
        around(
            seq,
            T0 + HOUR,
            lead=LeadView(tenant_id="t", lead_id="l1", device_id="d1", opted_out=True),
        ),
    )
    for decision, reason in ((gone, "device_deleted"), (opted, "opted_out")):
        removed = decision.events[0]
        assert isinstance(removed, EnrollmentRemoved)
        assert removed.reason == reason
        assert isinstance(decision.control, SendsWithdrawn)
        assert decision.control.scope == "enrollment"
        assert decision.control.reason == reason


def test_a_step_due_outside_its_window_waits_for_the_opening() -> None:
    window = SendWindow(days=[0], start_hour=9, end_hour=10)
    seq = drip(step("a", delay=0, window=window))
    state = enrolled(seq)
    assert state.due_at == T0
    monday_noon = T0 + 3 * HOUR  # e.g. resumed after the device was offline
    decision = fire(state, around(seq, monday_noon))
    scheduled = decision.events[0]
    assert isinstance(scheduled, EnrollmentStepScheduled)
    assert scheduled.due_at == T0 + timedelta(days=7)


def test_the_next_step_is_scheduled_from_when_the_previous_was_sent() -> None:
    seq = drip(step("a"), step("b", delay=7200))
    state = enrolled(seq)
    decision = fire(state, around(seq, T0 + HOUR))
    state = apply(state, decision.events)
    assert decision.request is not None
    sent_at = T0 + 2 * HOUR  # the lane paced it for an hour
    after = outcome(
        state,
        seq,
        message_id=decision.request.message_id,
        sent=True,
        reason="",
        at=sent_at,
        timezone="UTC",
    )
    assert types(after) == ["EnrollmentStepSent", "EnrollmentStepScheduled"]
    scheduled = after.events[1]
    assert isinstance(scheduled, EnrollmentStepScheduled)
    assert (scheduled.step_id, scheduled.due_at) == ("b", sent_at + timedelta(seconds=7200))
    again = outcome(
        apply(state, after.events),
        seq,
        message_id=decision.request.message_id,
        sent=True,
        reason="",
        at=sent_at,
        timezone="UTC",
    )
    assert not again, "a redelivered outcome changes nothing"


def test_the_last_step_sent_completes_the_enrollment() -> None:
    seq = drip(step("a"))
    state = enrolled(seq)
    decision = fire(state, around(seq, T0 + HOUR))
    assert decision.request is not None
    state = apply(state, decision.events)
    done = outcome(
        state,
        seq,
        message_id=decision.request.message_id,
        sent=True,
        reason="",
        at=T0 + HOUR,
        timezone="UTC",
    )
    assert types(done) == ["EnrollmentStepSent", "EnrollmentCompleted"]


def test_a_failed_step_stops_or_continues_as_the_sequence_says() -> None:
    for policy, expected in (
        ("stop", ["EnrollmentStepFailed", "EnrollmentFailed"]),
        ("continue", ["EnrollmentStepFailed", "EnrollmentStepScheduled"]),
    ):
        seq = drip(step("a"), step("b"), on_failure=policy)  # type: ignore[arg-type]
        state = enrolled(seq)
        decision = fire(state, around(seq, T0 + HOUR))
        assert decision.request is not None
        state = apply(state, decision.events)
        failed = outcome(
            state,
            seq,
            message_id=decision.request.message_id,
            sent=False,
            reason="not_on_whatsapp",
            at=T0 + HOUR,
            timezone="UTC",
        )
        assert types(failed) == expected
        first = failed.events[0]
        assert isinstance(first, EnrollmentStepFailed)
        assert first.reason == "not_on_whatsapp"
        if policy == "stop":
            last = failed.events[1]
            assert isinstance(last, EnrollmentFailed)
            assert last.step_id == "a"


def test_edited_steps_go_on_by_id_never_repeating_a_step() -> None:
    seq = drip(step("a"), step("b"), step("c"))
    state = enrolled(seq)
    decision = fire(state, around(seq, T0 + HOUR))
    assert decision.request is not None
    state = apply(state, decision.events)
    edited = drip(step("c", delay=60), step("a"), step("n", delay=60))  # b removed, reordered
    after = outcome(
        state,
        edited,
        message_id=decision.request.message_id,
        sent=True,
        reason="",
        at=T0 + HOUR,
        timezone="UTC",
    )
    state = apply(state, after.events)
    assert state.step_id == "c"
    assert "a" in state.done


def test_a_shorter_delay_moves_a_waiting_step_earlier() -> None:
    state = enrolled(drip(step("a", delay=86_400)))
    moved = replan(state, drip(step("a", delay=600)), T0, "UTC")
    scheduled = moved.events[0]
    assert isinstance(scheduled, EnrollmentStepScheduled)
    assert scheduled.due_at == T0 + timedelta(seconds=600)
    assert not replan(state, drip(step("a", delay=86_400, text="new text")), T0, "UTC")


def test_removing_a_removed_enrollment_changes_nothing() -> None:
    seq = drip(step("a"))
    state = apply(enrolled(seq), rules.remove(enrolled(seq), "requested", T0).events)
    assert state.status == "removed"
    assert not rules.remove(state, "requested", T0)
    assert not fire(state, around(seq, T0 + HOUR))


def test_a_missing_media_fails_the_step_without_a_request() -> None:
    seq = drip(Step(id="a", delay_seconds=0, message=MessageContent(text="x", media_id="m1")))
    decision = fire(enrolled(seq), around(seq, T0))
    assert decision.request is None
    assert types(decision) == ["EnrollmentStepFailed", "EnrollmentFailed"]


def test_replay_of_stored_events_gives_the_same_state() -> None:
    seq = drip(step("a"), step("b"))
    events = rules.start(
        seq, lead_id="l1", device_id="d1", nth=1, source="api", now=T0, timezone="UTC"
    )
    state = apply(None, events)
    fired = fire(state, around(seq, T0 + HOUR))
    events += fired.events
    assert replay([e for e in events if isinstance(e, EnrollmentEventBase)]) == apply(
        state, fired.events
    )
    assert isinstance(events[-1], EnrollmentStepRequested)
    assert not isinstance(events[-1], EnrollmentStepSent | EnrollmentCompleted)


def test_a_reply_ends_or_pauses_the_enrollment_as_the_sequence_says() -> None:
    seq = drip(step("a"))
    ended = rules.replied(enrolled(seq), seq, T0)
    paused = rules.replied(enrolled(seq), replace(seq, stop_on_reply="pause"), T0)
    ignored = rules.replied(enrolled(seq), replace(seq, stop_on_reply="ignore"), T0)
    assert types(ended) == ["EnrollmentCompleted"]
    assert isinstance(ended.control, SendsWithdrawn)
    assert ended.control.reason == "lead_replied"
    assert types(paused) == ["EnrollmentPaused"]
    assert isinstance(paused.control, SendsHeld)
    assert not ignored
    resumed = rules.resume(apply(enrolled(seq), paused.events), "requested", T0 + HOUR)
    assert types(resumed) == ["EnrollmentResumed"]
    assert isinstance(resumed.control, SendsReleased)


def test_a_device_offline_pause_holds_nothing_the_lane_holds_it_already() -> None:
    seq = drip(step("a"))
    paused = rules.pause(enrolled(seq), "device_offline", T0, "d1")
    assert types(paused) == ["EnrollmentPaused"]
    assert paused.control is None
    resumed = rules.resume(apply(enrolled(seq), paused.events), "device_connected", T0 + HOUR)
    assert resumed.control is None


def test_triggers_fire_for_their_event_device_and_only_while_the_sequence_is_active() -> None:
    seq = replace(
        drip(step("a")),
        triggers=[
            Trigger(on="tag_added", tag="hot"),
            Trigger(on="status_changed", status="customer", device_ids=["d1"]),
        ],
    )
    base: LeadStamp = {"tenant_id": "t", "lead_id": "l1", "occurred_at": T0 + HOUR}
    created_hot = LeadCreated(**base, phone="+1", tags=["hot"])
    tagged = LeadTagsChanged(**base, tags=["hot", "x"], added=["hot"])
    untagged = LeadTagsChanged(**base, tags=["x"], added=["x"], removed=["hot"])
    became = LeadStatusChanged(**base, status="customer", previous_status="prospect")
    assert fires(seq, created_hot, "d9")
    assert fires(seq, tagged, "d9")
    assert not fires(seq, untagged, "d9")
    assert fires(seq, became, "d1")
    assert not fires(seq, became, "d2"), "the status trigger is for device d1 only"
    assert not fires(replace(seq, status="paused"), tagged, "d9")
    before: LeadStamp = {**base, "occurred_at": T0 - HOUR}
    old = LeadTagsChanged(**before, tags=["hot"], added=["hot"])
    assert not fires(seq, old, "d9"), "events from before activation never enroll"
