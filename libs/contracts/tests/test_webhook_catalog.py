"""The public webhook event types: where their sources live, what orders them, what they carry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from wacast.contracts import messages as m
from wacast.contracts import sequences as s
from wacast.contracts import webhooks as wh
from wacast.contracts.streams import BY_KIND

AT = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


def test_every_source_event_lives_in_a_subject_the_webhook_service_reads() -> None:
    sources = set(wh.SOURCES)
    for cls in wh.EVENT_TYPES:
        assert (BY_KIND[cls.subject_kind].key, cls.subject_kind) in sources, cls.__name__


def test_an_enrollments_events_are_ordered_by_the_enrollment_not_by_its_messages() -> None:
    base: dict[str, Any] = {
        "tenant_id": "t",
        "occurred_at": AT,
        "enrollment_id": "e1",
        "sequence_id": "q1",
    }
    sent = s.EnrollmentStepSent(**base, step_id="a", message_id="m1")
    done = s.EnrollmentCompleted(**base)
    assert wh.resource_of(sent) == wh.resource_of(done) == "enrollment:e1"


def test_a_messages_outcomes_and_cancellation_share_one_resource() -> None:
    who: dict[str, Any] = {
        "tenant_id": "t",
        "occurred_at": AT,
        "message_id": "m1",
        "device_id": "d1",
    }
    sent = m.MessageSent(**who, lead_id="l1", origin="campaign", origin_id="c1", wa_message_id="w")
    cancelled = m.MessageCancelled(
        **who, lead_id="l1", origin="campaign", origin_id="c1", reason="device_offline"
    )
    assert wh.public_type(cancelled) == "message.failed"
    assert wh.resource_of(sent) == wh.resource_of(cancelled) == "message:m1"


def test_payload_data_carries_the_events_fields_without_the_envelope() -> None:
    inbound = m.InboundMessageReceived(
        tenant_id="t",
        occurred_at=AT,
        inbound_id="i1",
        device_id="d1",
        contact_key="p1",
        sender="+14155550100",
        text="hi",
    )
    data = wh.payload_data(inbound)
    assert data["sender"] == "+14155550100"
    assert data["text"] == "hi"
    assert not {"type", "tenant_id", "occurred_at", "v"} & data.keys()
    assert wh.resource_of(inbound) == "inbound:p1"


@pytest.mark.parametrize(
    ("types", "error"),
    [
        ([], "at least one"),
        (["message.teleported"], "unknown event type"),
        (["*", "message.sent"], "alone"),
    ],
)
def test_subscriptions_name_known_types_or_everything(types: list[str], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        wh.check_event_types(types)


def test_a_subscription_keeps_each_type_once() -> None:
    assert wh.check_event_types(["message.sent", "message.sent", "device.banned"]) == [
        "message.sent",
        "device.banned",
    ]
    assert wh.check_event_types(["*", "*"]) == ["*"]


@pytest.mark.parametrize(
    "url",
    ["ftp://x.example/a", "http://", "https://u:p@x.example/", "http://x.example:0/", "x" * 10],
)
def test_endpoint_urls_are_http_with_a_host_and_no_credentials(url: str) -> None:
    with pytest.raises(ValueError, match=r"url|URL"):
        wh.check_url(url)


def test_an_endpoint_url_has_at_most_2048_characters() -> None:
    assert wh.check_url("https://x.example/" + "a" * (wh.MAX_URL_LENGTH - 18))
    with pytest.raises(ValueError, match="longer than 2048"):
        wh.check_url("https://x.example/" + "a" * (wh.MAX_URL_LENGTH - 17))
