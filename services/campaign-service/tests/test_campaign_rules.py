"""Campaign rules, pure: one command in, events out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from wacast.campaign_service.domain import campaign as rules
from wacast.campaign_service.domain.errors import Refused
from wacast.contracts.base import Event
from wacast.contracts.campaigns import (
    CampaignCompleted,
    CampaignFailed,
    CampaignFinished,
    CampaignScheduled,
    CampaignTriggered,
)
from wacast.contracts.values import Audience, MessageContent, MessageCounts, Pacing, RetryPolicy

NOW = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
FACTS = rules.TriggerFacts(
    leads_seq=42, audience_size=3, connected_device=True, running=0, limit=10
)
DRAFT = rules.Draft(
    name="March sale",
    audience=Audience(),
    message=MessageContent(text="Hi {name}"),
    schedule_at=None,
    pacing=Pacing(),
    retry=RetryPolicy(),
    send_window=None,
)


def pending() -> rules.Campaign:
    return apply(
        rules.Campaign("acme", "c1"), rules.create(rules.Campaign("acme", "c1"), DRAFT, NOW)
    )


def apply(c: rules.Campaign, events: list[Event]) -> rules.Campaign:
    for event in events:
        c = rules.evolve(c, event, c.seq + 1)
    return c


def test_a_pending_campaign_triggers_once_with_its_frozen_audience_position() -> None:
    events = rules.trigger(pending(), NOW, "t1", "api", FACTS)

    assert len(events) == 1
    assert isinstance(events[0], CampaignTriggered)
    assert (events[0].leads_seq, events[0].audience_size) == (42, 3)
    triggered = apply(pending(), events)
    with pytest.raises(Refused) as refused:
        rules.trigger(triggered, NOW, "t2", "api", FACTS)
    assert (refused.value.code, refused.value.status) == ("already_triggered", 409)


def test_a_repeated_trigger_with_the_first_ones_id_decides_nothing_new() -> None:
    triggered = apply(pending(), rules.trigger(pending(), NOW, "t1", "api", FACTS))
    assert rules.trigger(triggered, NOW, "t1", "api", FACTS) == []


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        (rules.TriggerFacts(1, 3, False, 0, 10), "no_connected_device"),
        (rules.TriggerFacts(1, 0, True, 0, 10), "empty_audience"),
        (rules.TriggerFacts(1, 3, True, 0, 10, media_ok=False), "media_missing"),
    ],
)
def test_a_campaign_that_cannot_run_fails_at_once_with_its_reason(
    facts: rules.TriggerFacts, reason: str
) -> None:
    events = rules.trigger(pending(), NOW, "t1", "api", facts)
    assert [type(e) for e in events] == [CampaignFailed]
    assert isinstance(events[0], CampaignFailed)
    assert events[0].reason == reason
    failed = apply(pending(), events)
    with pytest.raises(Refused):
        rules.trigger(failed, NOW, "t2", "api", FACTS)


def test_at_the_tenants_limit_a_trigger_waits_as_pending_due_now() -> None:
    full = rules.TriggerFacts(1, 3, True, running=10, limit=10)
    events = rules.trigger(pending(), NOW, "t1", "api", full)
    assert isinstance(events[0], CampaignScheduled)
    assert (events[0].schedule_at, events[0].queued) == (NOW, True)
    waiting = apply(pending(), events)
    assert waiting.status == "pending"
    assert rules.trigger(waiting, NOW, "t2", "schedule", full) == []
    assert isinstance(rules.trigger(waiting, NOW, "t3", "schedule", FACTS)[0], CampaignTriggered)


def test_pause_resume_cancel_follow_the_status() -> None:
    running = apply(pending(), rules.trigger(pending(), NOW, "t1", "api", FACTS))
    paused = apply(running, rules.pause(running, NOW, "checking"))
    assert paused.status == "paused"
    with pytest.raises(Refused, match="already_paused"):
        rules.pause(paused, NOW, "")
    with pytest.raises(Refused, match="campaign_not_paused"):
        rules.resume(running, NOW)
    cancelled = apply(paused, rules.cancel(paused, NOW, "wrong price"))
    assert cancelled.status == "cancelled"
    with pytest.raises(Refused, match="already_cancelled"):
        rules.cancel(cancelled, NOW, "")


def test_completion_then_finish_after_the_receipt_window() -> None:
    running = apply(pending(), rules.trigger(pending(), NOW, "t1", "api", FACTS))
    done = rules.complete(running, NOW, requested=3, skipped=0)
    assert isinstance(done[0], CampaignCompleted)
    completed = apply(running, done)
    window = timedelta(hours=1)
    counts = MessageCounts(requested=3, sent=3)
    assert rules.finish(completed, NOW + timedelta(minutes=59), window, counts) == []
    assert isinstance(rules.finish(completed, NOW + window, window, counts)[0], CampaignFinished)


def test_a_schedule_needs_a_timezone_and_a_future_instant() -> None:
    with pytest.raises(Refused, match="naive_datetime"):
        rules.schedule(pending(), datetime(2030, 2, 1, 9, 0), NOW)
    with pytest.raises(Refused, match="schedule_in_past"):
        rules.schedule(pending(), NOW - timedelta(hours=1), NOW)
    assert rules.schedule(pending(), NOW + timedelta(days=1), NOW)
