"""Random changes to a lead never break its rules: a change to what it already is emits
nothing (a retried command appends nothing), a deleted lead refuses every change, an erased
one keeps no personal data, refusals are `Refused`, and the rebuilt state equals the fold."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from wacast.campaign_service.domain import lead as ld
from wacast.campaign_service.domain.errors import Refused
from wacast.contracts.base import Event
from wacast.contracts.leads import LeadErased

NOW = datetime(2030, 1, 7, 9, tzinfo=UTC)
tags = st.lists(st.sampled_from(["vip", "new", " vip ", "", "x" * 65, "b2b"]), max_size=4)
attributes = st.dictionaries(
    st.sampled_from(["city", "plan", "bad key!", " city "]),
    st.sampled_from(["", "Lisbon", "x" * 1001]),
    max_size=3,
)
changes = st.fixed_dictionaries(
    {},
    optional={
        "phone": st.sampled_from(["+14155550100", "+14155550101"]),
        "name": st.sampled_from(["Ada", " Ada ", "Grace"]),
        "attributes": attributes,
        "status": st.sampled_from(["prospect", "customer", "lost"]),
        "tags": tags,
        "device_id": st.sampled_from(["", "d1", "d2"]),
    },
)
commands = st.one_of(
    st.tuples(st.just("update"), changes),
    st.tuples(st.just("retag"), tags, tags),
    st.tuples(st.just("opt_out")),
    st.tuples(st.just("opt_in")),
    st.tuples(st.just("delete")),
    st.tuples(st.just("erase")),
)


def decide(lead: ld.Lead, command: tuple[Any, ...]) -> list[Event]:
    match command:
        case ("update", given_):
            values = dict(given_)
            if "tags" in values:
                values["tags"] = ld.clean_tags(values["tags"])
            if "attributes" in values:
                values["attributes"] = ld.clean_attributes(values["attributes"])
            return ld.update(lead, NOW, **values)
        case ("retag", add, remove):
            return ld.retag(lead, NOW, ld.clean_tags(add), ld.clean_tags(remove))
        case ("opt_out",):
            return ld.opt_out(lead, NOW, "keyword")
        case ("opt_in",):
            return ld.opt_in(lead, NOW)
        case ("delete",):
            return ld.delete(lead, NOW)
        case ("erase",):
            return [LeadErased(tenant_id=lead.tenant_id, occurred_at=NOW, lead_id=lead.lead_id)]
    raise AssertionError(command)


def attempt(lead: ld.Lead, command: tuple[Any, ...]) -> list[Event] | Refused:
    try:
        return decide(lead, command)
    except Refused as refused:
        return refused


@given(st.lists(commands, max_size=30))
def test_random_changes_keep_the_lead_rules(script: list[tuple[Any, ...]]) -> None:
    contact = ld.Contact(phone="+14155550100", name=" Ada ", tags=["vip"])
    history: list[tuple[int, Event]] = [(1, ld.create("acme", "l1", contact, NOW))]
    lead = ld.replay("acme", "l1", history)
    assert lead.name == "Ada"
    for command in script:
        events = attempt(lead, command)
        if isinstance(events, Refused):
            assert events.status in (409, 422), events
            assert events.status == 422 or lead.deleted
            continue
        for event in events:
            history.append((len(history) + 1, event))
            lead = ld.evolve(lead, event, len(history))
        again = attempt(lead, command)
        if command[0] not in ("erase", "retag") and not isinstance(again, Refused):
            assert again == [], (command, again)
        assert len(set(lead.tags)) == len(lead.tags)
        if lead.erased:
            assert (lead.phone, lead.name, lead.deleted) == ("", "", True)

    assert ld.replay("acme", "l1", history) == lead
    assert lead.seq == len(history)


@given(tags)
def test_clean_tags_are_stripped_unique_and_stable(raw: list[str]) -> None:
    try:
        cleaned = ld.clean_tags(raw)
    except Refused as refused:
        assert refused.status == 422  # noqa: PT017
        assert any(len(t.strip()) > ld.MAX_TAG for t in raw)
        return
    assert all(t and t == t.strip() for t in cleaned)
    assert len(set(cleaned)) == len(cleaned)
    assert ld.clean_tags(cleaned) == cleaned
