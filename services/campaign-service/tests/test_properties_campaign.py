"""Random command sequences over the campaign aggregate never break its rules: it triggers
at most once, its status moves only along the allowed transitions and never leaves an end,
a refusal is always a `Refused`, and the state rebuilt from its events is the state folded
as they were decided."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from wacast.campaign_service.domain import campaign as c
from wacast.campaign_service.domain.errors import Refused
from wacast.contracts.base import Event
from wacast.contracts.campaigns import CampaignTriggered
from wacast.contracts.values import (
    Audience,
    MessageContent,
    MessageCounts,
    Pacing,
    RetryPolicy,
)

START = datetime(2030, 1, 7, 9, tzinfo=UTC)
WINDOW = timedelta(hours=1)
ALLOWED: dict[str, set[str]] = {
    "pending": {"triggered", "failed", "cancelled"},
    "triggered": {"paused", "completed", "failed", "cancelled"},
    "paused": {"triggered", "failed", "cancelled"},
    "completed": {"finished"},
    "finished": set(),
    "failed": set(),
    "cancelled": set(),
}

facts = st.builds(
    c.TriggerFacts,
    leads_seq=st.integers(0, 50),
    audience_size=st.integers(0, 3),
    connected_device=st.booleans(),
    running=st.integers(0, 3),
    limit=st.integers(1, 3),
    media_ok=st.booleans(),
)
commands = st.one_of(
    st.tuples(st.just("create"), st.sampled_from(["Spring", "  ", "x" * 201]), st.booleans()),
    st.tuples(st.just("schedule"), st.integers(-120, 3600)),
    st.tuples(
        st.just("trigger"),
        st.sampled_from(["", "t1", "t2"]),
        st.sampled_from(["api", "schedule"]),
        facts,
    ),
    st.tuples(st.just("pause")),
    st.tuples(st.just("resume")),
    st.tuples(st.just("cancel")),
    st.tuples(st.just("fail"), st.sampled_from(["media_missing", "no_connected_device"])),
    st.tuples(st.just("complete"), st.integers(0, 5)),
    st.tuples(st.just("finish")),
    st.tuples(st.just("wait"), st.integers(1, 7200)),
)


def draft(name: str, scheduled: bool, now: datetime) -> c.Draft:
    return c.Draft(
        name=name,
        audience=Audience(),
        message=MessageContent(text="Hi {name}"),
        schedule_at=now + timedelta(hours=1) if scheduled else None,
        pacing=Pacing(),
        retry=RetryPolicy(),
        send_window=None,
    )


@dataclass
class Run:
    state: c.Campaign = field(default_factory=lambda: c.Campaign("acme", "spring"))
    history: list[tuple[int, Event]] = field(default_factory=list)
    now: datetime = START

    def decide(self, command: tuple[Any, ...]) -> list[Event]:
        s, now = self.state, self.now
        match command:
            case ("create", name, scheduled):
                return c.create(s, draft(name, scheduled, now), now)
            case ("schedule", seconds):
                return c.schedule(s, now + timedelta(seconds=seconds), now)
            case ("trigger", trigger_id, source, found):
                return c.trigger(s, now, trigger_id, source, found)
            case ("pause",):
                return c.pause(s, now, "requested")
            case ("resume",):
                return c.resume(s, now)
            case ("cancel",):
                return c.cancel(s, now, "requested")
            case ("fail", reason):
                return c.fail(s, now, reason)
            case ("complete", requested):
                return c.complete(s, now, requested, 0)
            case ("finish",):
                return c.finish(s, now, WINDOW, MessageCounts())
            case ("wait", seconds):
                self.now += timedelta(seconds=seconds)
                return []
        raise AssertionError(command)

    def attempt(self, command: tuple[Any, ...]) -> list[Event] | Refused:
        try:
            return self.decide(command)
        except Refused as refused:
            return refused

    def apply(self, events: list[Event]) -> None:
        for event in events:
            before = self.state.status
            seq = len(self.history) + 1
            self.state = c.evolve(self.state, event, seq)
            self.history.append((seq, event))
            after = self.state.status
            assert after == before or after in ALLOWED[before], (before, after, event)


@given(st.lists(commands, max_size=40))
def test_random_commands_keep_the_campaign_rules(script: list[tuple[Any, ...]]) -> None:
    run = Run()
    for command in script:
        events = run.attempt(command)
        if isinstance(events, Refused):
            assert events.status in (404, 409, 422), events
            assert command[0] != "create" or run.state.exists or events.status == 422
            continue
        for event in events:
            assert (event.tenant_id, event.campaign_id) == ("acme", "spring")  # type: ignore[attr-defined]
        run.apply(events)

    triggers = [e for _, e in run.history if isinstance(e, CampaignTriggered)]
    assert len(triggers) <= 1
    assert c.replay("acme", "spring", run.history) == run.state
    if triggers:
        assert run.state.status != "pending"
        assert all(t.audience_size > 0 for t in triggers)


@given(st.lists(commands, max_size=30), st.sampled_from(["t1", "t2"]), facts)
def test_a_trigger_repeated_with_its_id_decides_nothing_new(
    script: list[tuple[Any, ...]], trigger_id: str, found: c.TriggerFacts
) -> None:
    run = Run()
    for command in script:
        events = run.attempt(command)
        run.apply([] if isinstance(events, Refused) else events)
    first = run.attempt(("trigger", trigger_id, "api", found))
    if isinstance(first, Refused):
        return
    run.apply(first)
    if run.state.status == "triggered" and run.state.trigger_id == trigger_id:
        assert c.trigger(run.state, run.now, trigger_id, "api", found) == []
