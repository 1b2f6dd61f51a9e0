"""Opt-out keywords: a lead writing STOP is opted out everywhere; only the API brings it back.

The gateway is simulated by appending `InboundMessageReceived`, as it does for every message
a contact writes to one of the tenant's devices.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from wacast.campaign_service.domain.keywords import matching
from wacast.contracts import commands as cmd
from wacast.contracts import ids
from wacast.contracts.base import Event
from wacast.contracts.leads import LeadOptedIn, LeadOptedOut
from wacast.contracts.messages import InboundMessageReceived, SendsReleased, SendsWithdrawn
from wacast.contracts.streams import LEADS, MESSAGES
from wacast.contracts.tenants import DEFAULT_OPT_OUT_KEYWORDS, TenantSettingsChanged
from wacast.contracts.values import MessageContent

from .conftest import TENANT, Harness, Replica
from .test_campaigns import fanned_out


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("STOP", "STOP"),
        ("Stop", "STOP"),
        (" stop! ", "STOP"),
        ("STÓP", "STOP"),
        ("\uff33\uff34\uff2f\uff30", "STOP"),  # full-width letters
        ('"stop."', "STOP"),
        ("¡Baja!", "BAJA"),
        ("unsubscribe\n", "UNSUBSCRIBE"),
        ("stop sending me ads", None),
        ("please stop", None),
        ("s t o p", None),
        ("stopp", None),
        ("", None),
        ("!!!", None),
        ("stop " * 100, None),
    ],
)
def test_a_keyword_matches_the_whole_message_whatever_its_case_accents_or_punctuation(
    text: str, keyword: str | None
) -> None:
    assert matching(text, DEFAULT_OPT_OUT_KEYWORDS) == keyword


def test_the_tenants_keywords_are_normalised_like_the_text() -> None:
    assert matching("no mas", ["Parar", "No más"]) == "No más"
    assert matching("PARAR.", ["Parar", "No más"]) == "Parar"
    assert matching("stop", ["Parar", "No más"]) is None


def written(lead_id: str, text: str, at: datetime, phone: str = "+14155550001") -> Event:
    return InboundMessageReceived(
        tenant_id=TENANT,
        occurred_at=at,
        inbound_id=ids.inbound_id("d1", uuid.uuid4().hex),
        device_id="d1",
        lead_id=lead_id,
        contact_key=ids.phone_key(TENANT, phone),
        sender=phone,
        text=text,
    )


async def handled(harness: Harness) -> None:
    """Every inbound message stored so far was handled by the keyword consumer."""
    js = harness.nc.jetstream()
    stream = MESSAGES.name(harness.topology)

    async def drained() -> bool:
        info = await js.consumer_info(stream, "campaigns-opt-out-keywords")
        return not info.num_pending and not info.num_ack_pending

    await harness.eventually(drained)


async def consent(harness: Harness, lead_id: str) -> list[Event]:
    events = await harness.events(LEADS, harness.topology.lead(TENANT, lead_id))
    return [e for e in events if isinstance(e, LeadOptedOut | LeadOptedIn)]


async def controls(harness: Harness, lead_id: str) -> list[Event]:
    return await harness.events(MESSAGES, harness.topology.send_control(TENANT, "lead", lead_id))


async def run_campaign(harness: Harness, replica: Replica, name: str) -> str:
    created = await replica.send(
        cmd.CreateCampaign(tenant_id=TENANT, name=name, message=MessageContent(text="Hi {name}"))
    )
    assert created.ok, created.problem
    triggered = await replica.send(cmd.TriggerCampaign(tenant_id=TENANT, campaign_id=created.id))
    assert triggered.ok, triggered.problem
    await harness.eventually(lambda: fanned_out(harness, created.id))
    return created.id


async def test_a_stop_reply_opts_the_lead_out_of_every_later_campaign_until_the_api_opts_it_in(
    harness: Harness,
) -> None:
    replica = await harness.start()
    await harness.tenant()
    await harness.device("d1")
    stays, stopper, chatty = await harness.seed(3, ["d1"])
    before = await run_campaign(harness, replica, "before")

    await harness.advance(timedelta(minutes=1))
    stop_at = harness.clock.now()
    await harness.append(written(stopper, " Stóp! ", stop_at))
    await harness.append(written(chatty, "stop sending me ads", stop_at))
    await harness.append(written("", "STOP", stop_at, phone="+14155559999"))
    await harness.append(written(stopper, "STOP", stop_at + timedelta(seconds=1)))
    await handled(harness)

    [opted_out] = await consent(harness, stopper)
    assert isinstance(opted_out, LeadOptedOut)
    assert (opted_out.source, opted_out.reason) == ("keyword", "STOP")
    [withdrawn] = await controls(harness, stopper)
    assert isinstance(withdrawn, SendsWithdrawn)
    assert withdrawn.reason == "opted_out"
    pending = ids.campaign_message_id(before, stopper)
    assert pending in {r.message_id for r in await harness.request_events()}, (
        "the campaign fanned out before holds a message the lead withdrawal cancels"
    )
    assert await consent(harness, chatty) == []
    assert await consent(harness, stays) == []

    after = await run_campaign(harness, replica, "after")
    done = await fanned_out(harness, after)
    assert done is not None
    assert (done.requested, done.skipped) == (2, 1)
    requested = {r.message_id for r in await harness.request_events()}
    assert ids.campaign_message_id(after, stopper) not in requested

    await harness.advance(timedelta(minutes=1))
    opted_in = await replica.send(cmd.OptInLead(tenant_id=TENANT, lead_id=stopper))
    assert opted_in.ok, opted_in.problem
    await harness.append(written(stopper, "STOP", stop_at))  # the old message, delivered again
    await handled(harness)
    assert [type(e) for e in await consent(harness, stopper)] == [LeadOptedOut, LeadOptedIn]
    assert [type(e) for e in await controls(harness, stopper)] == [SendsWithdrawn, SendsReleased]

    again = await run_campaign(harness, replica, "again")
    done = await fanned_out(harness, again)
    assert done is not None
    assert (done.requested, done.skipped) == (3, 0)
    requested = {r.message_id for r in await harness.request_events()}
    assert ids.campaign_message_id(again, stopper) in requested

    await harness.advance(timedelta(minutes=1))
    await harness.append(written(stopper, "unsubscribe", harness.clock.now()))
    await harness.eventually(lambda: _withdrawn_again(harness, stopper))
    assert [type(e) for e in await consent(harness, stopper)] == [
        LeadOptedOut,
        LeadOptedIn,
        LeadOptedOut,
    ]


async def _withdrawn_again(harness: Harness, lead_id: str) -> bool:
    found = [type(e) for e in await controls(harness, lead_id)]
    return found == [SendsWithdrawn, SendsReleased, SendsWithdrawn]


async def test_the_tenants_own_keywords_replace_the_defaults(harness: Harness) -> None:
    await harness.start()
    await harness.tenant()
    await harness.device("d1")
    one, two = await harness.seed(2, ["d1"])
    await harness.append(
        TenantSettingsChanged(
            tenant_id=TENANT,
            occurred_at=harness.clock.now(),
            name=TENANT,
            opt_out_keywords=["Parar", "No más"],
        )
    )

    await harness.append(written(one, "STOP", harness.clock.now()))
    await harness.append(written(two, "no mas!", harness.clock.now()))
    await handled(harness)

    assert await consent(harness, one) == []
    [opted_out] = await consent(harness, two)
    assert isinstance(opted_out, LeadOptedOut)
    assert opted_out.reason == "No más"


async def test_an_unreadable_inbound_message_is_dead_lettered_and_the_next_one_counts(
    harness: Harness,
) -> None:
    await harness.start()
    await harness.tenant()
    await harness.device("d1")
    [lead] = await harness.seed(1, ["d1"])
    js = harness.nc.jetstream()

    await js.publish(harness.topology.inbound(TENANT, lead), b"{not json")
    await harness.append(written(lead, "stop", harness.clock.now()))

    await harness.eventually(lambda: consent(harness, lead))
    dlq = harness.topology.dead_letter(
        MESSAGES.name(harness.topology), "campaigns-opt-out-keywords"
    )
    info = await js.stream_info(harness.dead_letters.stream, subjects_filter=dlq)
    assert info.state.messages == 1
