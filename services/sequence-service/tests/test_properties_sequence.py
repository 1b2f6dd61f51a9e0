"""Random commands over the sequence aggregate never break its rules: draft -> active <->
paused -> archived and nothing after archived, a command repeated on its own outcome decides
nothing (a retried command appends nothing), refusals are `Refused`, and the fold of the
events is the state decided step by step."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from wacast.contracts.base import Event
from wacast.contracts.commands import (
    ActivateSequence,
    ArchiveSequence,
    ChangeSequenceSettings,
    ChangeSequenceSteps,
    CreateSequence,
    PauseSequence,
)
from wacast.contracts.sequences import SequenceEventBase
from wacast.contracts.values import MessageContent, Pacing, Step
from wacast.sequence_service.domain.errors import Refused
from wacast.sequence_service.domain.sequence import Sequence, SequenceCommand, decide, evolve

NOW = datetime(2030, 1, 7, 9, tzinfo=UTC)
ALLOWED: dict[str, set[str]] = {
    "draft": {"active", "archived"},
    "active": {"paused", "archived"},
    "paused": {"active", "archived"},
    "archived": set(),
}
ids = {"tenant_id": st.just("acme"), "sequence_id": st.just("s1")}
step = st.builds(
    Step,
    id=st.sampled_from(["a", "b", "c"]),
    delay_seconds=st.sampled_from([0, 60, 86400]),
    message=st.just(MessageContent(text="Hi {name}")),
)
step_lists = st.lists(step, min_size=1, max_size=3, unique_by=lambda s: s.id)
commands: st.SearchStrategy[SequenceCommand] = st.one_of(
    st.builds(
        CreateSequence,
        name=st.sampled_from(["Welcome", "Nurture"]),
        steps=step_lists,
        activate=st.booleans(),
        **ids,
    ),
    st.builds(ChangeSequenceSteps, steps=step_lists, **ids),
    st.builds(
        ChangeSequenceSettings,
        name=st.sampled_from(["Welcome", "Nurture"]),
        pacing=st.sampled_from([Pacing(), Pacing(min_seconds=1, max_seconds=2)]),
        on_failure=st.sampled_from(["stop", "continue"]),
        **ids,
    ),
    st.builds(ActivateSequence, **ids),
    st.builds(PauseSequence, **ids),
    st.builds(ArchiveSequence, **ids),
)


def attempt(state: Sequence | None, command: SequenceCommand) -> list[Event] | Refused:
    try:
        return decide(state, command, NOW)
    except Refused as refused:
        return refused


def fold(state: Sequence | None, events: list[Event]) -> Sequence | None:
    for event in events:
        assert isinstance(event, SequenceEventBase)
        state = evolve(state, event)
    return state


@given(st.lists(commands, max_size=30))
def test_random_commands_keep_the_sequence_rules(script: list[SequenceCommand]) -> None:
    state: Sequence | None = None
    history: list[Event] = []
    for command in script:
        events = attempt(state, command)
        if isinstance(events, Refused):
            assert events.status in (404, 409), events
            assert events.status != 404 or state is None
            assert events.status != 409 or state is not None
            continue
        before = None if state is None else state.status
        state = fold(state, events)
        history.extend(events)
        assert state is not None
        assert before is None or state.status == before or state.status in ALLOWED[before]
        again = attempt(state, command)
        assert isinstance(again, Refused) or again == [], (command, again)

    assert fold(None, history) == state


@given(st.lists(commands, max_size=30))
def test_an_archived_sequence_changes_no_more(script: list[SequenceCommand]) -> None:
    first = Step(id="a", delay_seconds=0, message=MessageContent(text="Hi"))
    create = CreateSequence(tenant_id="acme", sequence_id="s1", name="Welcome", steps=[first])
    state = fold(None, decide(None, create, NOW))
    state = fold(state, decide(state, ArchiveSequence(tenant_id="acme", sequence_id="s1"), NOW))
    for command in script:
        events = attempt(state, command)
        assert isinstance(events, Refused) or events == [], (command, events)
