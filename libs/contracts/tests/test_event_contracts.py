"""The stored-event contract: the JSON of every event type is pinned.

Stored events live forever in JetStream, so a shape change that old payloads do not fit
breaks replay. `golden/events.json` holds one example payload per event type (tag -> JSON
object) and `golden/schemas.json` the JSON schema of each stream's union. A test fails
when an event type is added without an example, or when a stored shape changes: a field
added without a default, renamed, removed or retyped.

After an intended change (a new event type, a new field with a default, a version bump
with its upcaster), regenerate and review the diff:

    WACAST_UPDATE_GOLDEN=1 .venv/bin/pytest libs/contracts -q
    git diff libs/contracts/tests/golden
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest

from wacast.contracts import campaigns as c
from wacast.contracts import devices as d
from wacast.contracts import leads as ld
from wacast.contracts import media as md
from wacast.contracts import messages as m
from wacast.contracts import sequences as s
from wacast.contracts import streams
from wacast.contracts import tenants as tn
from wacast.contracts import webhooks as wh
from wacast.contracts.base import Event, encode
from wacast.contracts.subjects import Topology
from wacast.contracts.values import (
    Audience,
    MediaRef,
    MessageContent,
    MessageCounts,
    Pacing,
    RetryPolicy,
    RowError,
    SendWindow,
    Step,
    Trigger,
)
from wacast.contracts.versioning import StreamCodec, upcaster

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("WACAST_UPDATE_GOLDEN") == "1"

T = "t_acme"
AT = datetime(2025, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
LATER = datetime(2025, 3, 5, 9, 0, tzinfo=UTC)
AT_JSON = "2025-03-04T05:06:07.890Z"
"""`AT` as stored."""
DEV = "dev_01"
LEAD = "lead_01"
CAMP = "camp_01"
SEQ = "seq_01"
ENR = "enr_01"
MSG = "msg_01"
HI = MessageContent(text="Hi {name}, our sale starts today", media_id="media_01")
RENDERED = MessageContent(text="Hi Ana, our sale starts today", media_id="media_01")
WINDOW = SendWindow(days=[0, 1, 2, 3, 4], start_hour=9, end_hour=18, timezone="")
STEPS = [
    Step(id="welcome", delay_seconds=0, message=MessageContent(text="Welcome {name}")),
    Step(id="offer", delay_seconds=86_400, message=HI, window=WINDOW),
]


def _examples() -> list[Event]:
    """One deterministic example per event type, with realistic values."""
    e: dict[str, Any] = {"tenant_id": T, "occurred_at": AT}
    dev = {**e, "device_id": DEV}
    lead = {**e, "lead_id": LEAD}
    claim = {**e, "phone_key": "p0bb479e94ffc024f4e9c9c3979c338e1", "lead_id": LEAD}
    imp = {**e, "import_id": "imp_01"}
    camp = {**e, "campaign_id": CAMP}
    lane = {**e, "device_id": DEV}
    who: dict[str, Any] = {
        "message_id": MSG,
        "lead_id": LEAD,
        "origin": "campaign",
        "origin_id": CAMP,
    }
    out = {**e, **who, "device_id": DEV}
    ctl = {**e, "scope": "campaign", "scope_id": CAMP}
    seq = {**e, "sequence_id": SEQ}
    enr = {**e, "enrollment_id": ENR, "sequence_id": SEQ}
    hook = {**e, "webhook_id": "wh_01"}
    dlv = {
        **hook,
        "delivery_id": "dlv_01",
        "source_stream": "MESSAGES",
        "source_seq": 42,
        "event_type": "message.sent",
    }
    return [
        # devices
        d.DeviceRegistered(**dev, name="Sales 1", driver="whatsapp"),
        d.DevicePairingStarted(**dev, method="code", phone="+14155550100"),
        d.DevicePairingFailed(**dev, reason="timeout", detail="no scan within 120 s"),
        d.DevicePaired(**dev, phone="+14155550100", jid="14155550100@s.whatsapp.net"),
        d.DeviceConnected(**dev),
        d.DeviceDisconnected(**dev, reason="network"),
        d.DeviceLoggedOut(**dev, reason="remote"),
        d.DeviceBanned(**dev, until=LATER, reason="spam reports"),
        d.DeviceRenamed(**dev, name="Sales 2"),
        d.DeviceLimitsChanged(**dev, daily_cap=250, warmup=True),
        d.DeviceDeleteRequested(**dev, reason="number returned"),
        d.DeviceDeleted(**dev),
        # leads
        ld.LeadCreated(
            **lead,
            phone="+5511987654321",
            name="Ana",
            device_id=DEV,
            status="prospect",
            tags=["vip", "sp"],
            attributes={"city": "São Paulo"},
            import_id="imp_01",
        ),
        ld.LeadUpdated(**lead, name="Ana Lima", attributes={"city": "Campinas"}),
        ld.LeadStatusChanged(**lead, status="customer", previous_status="prospect"),
        ld.LeadTagsChanged(**lead, tags=["vip"], added=[], removed=["sp"]),
        ld.LeadDeviceAssigned(**lead, device_id="dev_02", previous_device_id=DEV),
        ld.LeadOptedOut(**lead, reason="replied STOP", source="keyword"),
        ld.LeadOptedIn(**lead, source="api"),
        ld.LeadDeleted(**lead, reason="device_deleted"),
        ld.LeadErased(**lead),
        ld.LeadPhoneClaimed(**claim),
        ld.LeadPhoneReleased(**claim),
        ld.LeadImportStarted(
            **imp,
            filename="fair-2025.csv",
            object_name="imports/imp_01.csv",
            device_id=DEV,
            tags=["fair"],
            update_existing=True,
            total_rows=1200,
        ),
        ld.LeadImportProgressed(
            **imp, rows_done=500, created=480, updated=15, failed=5, total_rows=1200
        ),
        ld.LeadImportRowsFailed(**imp, errors=[RowError(row=17, reason="invalid phone")]),
        ld.LeadImportCompleted(**imp, rows=1200, created=1150, updated=30, failed=20),
        ld.LeadImportFailed(**imp, reason="no_phone_column", detail="columns: name, city"),
        # media
        md.MediaStored(
            **e,
            media_id="media_01",
            kind="image",
            mime="image/jpeg",
            bytes=301_122,
            filename="sale.jpg",
            sha256="9f" * 32,
            object_name="t_acme/media_01",
            width=1280,
            height=720,
            source="url",
            source_url="https://example.com/sale.png",
            original_bytes=2_048_000,
        ),
        md.MediaDeleted(**e, media_id="media_01", reason="replaced"),
        # campaigns
        c.CampaignCreated(
            **camp,
            name="March sale",
            audience=Audience(status="prospect", tags=["vip"], tag_match="any", device_ids=[DEV]),
            message=HI,
            schedule_at=LATER,
            pacing=Pacing(min_seconds=12, max_seconds=40),
            retry=RetryPolicy(max_attempts=3, backoff_seconds=60),
            send_window=WINDOW,
        ),
        c.CampaignScheduled(**camp, schedule_at=LATER, queued=True),
        c.CampaignTriggered(
            **camp, trigger_id="trg_01", source="schedule", audience_size=1150, leads_seq=90210
        ),
        c.CampaignPaused(**camp, reason="checking replies"),
        c.CampaignResumed(**camp),
        c.CampaignCancelled(**camp, reason="wrong price"),
        c.CampaignCompleted(**camp, requested=1140, skipped=10),
        c.CampaignFinished(
            **camp,
            counts=MessageCounts(
                requested=1140, sent=1100, delivered=1050, read=700, failed=30, cancelled=10
            ),
        ),
        c.CampaignFailed(**camp, reason="no_connected_device"),
        # messages
        m.MessageRequested(
            **e,
            message_id=MSG,
            device_id=DEV,
            lead_id=LEAD,
            origin="sequence",
            origin_id=ENR,
            sequence_id=SEQ,
            step_id="offer",
            to="+5511987654321",
            content=RENDERED,
            media=MediaRef(
                media_id="media_01",
                kind="image",
                mime="image/jpeg",
                object_name="t_acme/media_01",
                filename="sale.jpg",
            ),
            pacing=Pacing(min_seconds=10, max_seconds=30),
            retry=RetryPolicy(),
            window=SendWindow(days=[0, 1, 2], start_hour=8, end_hour=20, timezone="America/Bahia"),
            not_before=AT,
            not_after=LATER,
        ),
        m.LaneFenced(**lane, owner="gateway-1", epoch=7),
        m.MessageAccepted(
            **lane,
            **who,
            request_seq=4711,
            pacing=Pacing(),
            window=WINDOW,
            not_before=AT,
            not_after=LATER,
        ),
        m.MessageDispatching(**lane, message_id=MSG, attempt=2),
        m.MessageRetryScheduled(
            **lane, message_id=MSG, attempt=2, not_before=LATER, reason="connection_lost"
        ),
        m.MessageCancelled(**lane, **who, reason="campaign_cancelled"),
        m.LaneCheckpointed(
            **lane,
            lane_seq=9000,
            open_from_seq=8800,
            last_dispatch_at=AT,
            day="2025-03-04",
            sent_that_day=120,
        ),
        m.MessageSent(**out, wa_message_id="3EB0C431C2A1", attempt=1),
        m.MessageDelivered(**out),
        m.MessageRead(**out),
        m.MessageFailed(
            **out, reason="not_on_whatsapp", retryable=False, detail="no account", attempt=1
        ),
        m.MessageReplied(**out, text="STOP", wa_message_id="3EB0C431C2A2"),
        m.InboundMessageReceived(
            **e,
            inbound_id="i5f1d0c8e2b7a4c6d9e0f1a2b3c4d5e6f",
            device_id=DEV,
            lead_id=LEAD,
            contact_key="p0bb479e94ffc024f4e9c9c3979c338e1",
            sender="+14155550123",
            text="STOP",
            wa_message_id="3EB0C431C2A2",
            in_reply_to=MSG,
            origin="campaign",
            origin_id=CAMP,
        ),
        m.SendsHeld(**ctl, reason="campaign_paused"),
        m.SendsReleased(**ctl),
        m.SendsWithdrawn(**ctl, reason="campaign_cancelled"),
        m.CampaignFanoutProgressed(**camp, cursor=LEAD, requested=500, skipped=3),
        m.CampaignFanoutCompleted(**camp, requested=1140, skipped=10),
        # sequences
        s.SequenceCreated(
            **seq,
            name="Onboarding",
            steps=STEPS,
            pacing=Pacing(min_seconds=15, max_seconds=45),
            retry=RetryPolicy(max_attempts=2, backoff_seconds=120),
            triggers=[
                Trigger(on="tag_added", tag="new", device_ids=[DEV]),
                Trigger(on="status_changed", status="customer"),
            ],
            on_failure="continue",
            stop_on_reply="pause",
            status="active",
        ),
        s.SequenceStepsChanged(**seq, steps=STEPS[1:]),
        s.SequenceSettingsChanged(
            **seq,
            name="Onboarding v2",
            pacing=Pacing(),
            retry=RetryPolicy(),
            triggers=[Trigger(on="lead_created")],
            on_failure="stop",
            stop_on_reply="end",
        ),
        s.SequenceActivated(**seq),
        s.SequencePaused(**seq, reason="editing"),
        s.SequenceArchived(**seq),
        s.EnrollmentStarted(**enr, lead_id=LEAD, device_id=DEV, source="trigger", nth=2),
        s.EnrollmentStepScheduled(**enr, step_id="offer", due_at=LATER),
        s.EnrollmentStepRequested(**enr, step_id="offer", message_id=MSG, device_id=DEV),
        s.EnrollmentStepSent(**enr, step_id="offer", message_id=MSG),
        s.EnrollmentStepFailed(**enr, step_id="offer", message_id=MSG, reason="not_on_whatsapp"),
        s.EnrollmentPaused(**enr, reason="device_offline", device_id=DEV),
        s.EnrollmentResumed(**enr, reason="device_connected"),
        s.EnrollmentCompleted(**enr, reason="reply"),
        s.EnrollmentFailed(**enr, reason="no_device", step_id="offer"),
        s.EnrollmentRemoved(**enr, reason="opted_out"),
        # tenants
        tn.TenantCreated(**e, name="Acme", timezone="America/Sao_Paulo", default_region="BR"),
        tn.TenantSettingsChanged(
            **e,
            name="Acme Ltda",
            timezone="America/Sao_Paulo",
            default_region="BR",
            opt_out_keywords=["SAIR", "PARAR"],
            device_daily_cap=300,
            pacing=Pacing(min_seconds=20, max_seconds=60),
        ),
        tn.ApiKeyIssued(
            **e,
            key_id="key_01",
            key_hash="5e" * 32,
            name="CRM sync",
            prefix="wk_5e5e",
            expires_at=LATER,
        ),
        tn.ApiKeyRevoked(**e, key_id="key_01", reason="leaked"),
        # webhooks
        wh.WebhookCreated(
            **hook,
            url="https://crm.example.com/hooks/wacast",
            event_types=["message.sent", "message.failed"],
            secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            description="CRM sync",
        ),
        wh.WebhookDeleted(**hook),
        wh.WebhookDeliveryQueued(**dlv, resource=f"message:{MSG}"),
        wh.WebhookDeliveryAttempted(
            **dlv, attempt=1, status_code=503, error="", duration_ms=120, retry_at=LATER
        ),
        wh.WebhookDelivered(**dlv, attempt=2, status_code=200, duration_ms=85),
        wh.WebhookDeliveryDead(**dlv, attempts=8, status_code=0, error="timed out after 10 s"),
        wh.WebhookReplayRequested(**dlv),
    ]


def _tag(cls: type[Event]) -> str:
    return str(cls.__struct_config__.tag)


def _by_tag(events: list[Event]) -> dict[str, Event]:
    found: dict[str, Event] = {}
    for event in events:
        tag = _tag(type(event))
        assert tag not in found, f"two examples of {tag}"
        found[tag] = event
    return found


EXAMPLES = _by_tag(_examples())


def _payload(event: Event) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(encode(event))
    return data


def _golden(name: str, current: Mapping[str, Any]) -> dict[str, Any]:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(json.dumps(current, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    stored: dict[str, Any] = json.loads(path.read_text())
    return stored


def shape_violations(examples: Mapping[str, Event], golden: Mapping[str, Any]) -> list[str]:
    """How the examples' JSON differs from the pinned JSON, one line per difference."""
    problems = [
        f"{tag}: pinned but no longer produced (removed or renamed?)"
        for tag in sorted(golden.keys() - examples.keys())
    ]
    problems += [
        f"{tag}: not pinned yet (regenerate the golden file)"
        for tag in sorted(examples.keys() - golden.keys())
    ]
    for tag in sorted(examples.keys() & golden.keys()):
        now, then = _payload(examples[tag]), golden[tag]
        problems += [f"{tag}.{f}: field removed or renamed" for f in sorted(then.keys() - now)]
        problems += [f"{tag}.{f}: field added" for f in sorted(now.keys() - then.keys())]
        problems += [
            f"{tag}.{f}: {then[f]!r} became {now[f]!r}"
            for f in sorted(now.keys() & then.keys())
            if now[f] != then[f]
        ]
    return problems


def stored_payload_violations(codec: StreamCodec, golden: Mapping[str, Any]) -> list[str]:
    """Pinned payloads of the codec's event types that no longer decode as their type."""
    problems = []
    for cls in codec.event_types:
        tag = _tag(cls)
        if tag not in golden:
            continue
        try:
            event = codec.decode(json.dumps(golden[tag]).encode())
        except msgspec.ValidationError as exc:
            problems.append(f"{tag}: stored payload no longer decodes: {exc}")
            continue
        if type(event) is not cls:
            problems.append(f"{tag}: stored payload decodes as {type(event).__name__}")
    return problems


def _schemas() -> dict[str, Any]:
    """Each stream's JSON schema without prose, so that editing a docstring is free."""
    return {spec.key: _without_prose(msgspec.json.schema(spec.union)) for spec in streams.ALL}


def _without_prose(node: Any) -> Any:
    """Drop `description` and `title` of schema objects (not properties of those names)."""
    if isinstance(node, list):
        return [_without_prose(v) for v in node]
    if not isinstance(node, dict):
        return node
    return {
        key: {name: _without_prose(prop) for name, prop in value.items()}
        if key in {"properties", "$defs"}
        else _without_prose(value)
        for key, value in node.items()
        if key not in {"description", "title"}
    }


# -- the contract ----------------------------------------------------------------------


def test_every_event_type_of_every_stream_has_an_example() -> None:
    members = {_tag(cls) for spec in streams.ALL for cls in streams.codec(spec).event_types}
    assert sorted(members - EXAMPLES.keys()) == [], "event types without an example"
    assert sorted(EXAMPLES.keys() - members) == [], "examples of types no stream holds"


def test_event_tags_are_unique_across_streams() -> None:
    tags = [_tag(cls) for spec in streams.ALL for cls in streams.codec(spec).event_types]
    assert len(tags) == len(set(tags))


def test_stored_event_json_matches_the_pinned_contract() -> None:
    golden = _golden("events.json", {tag: _payload(ev) for tag, ev in EXAMPLES.items()})
    assert shape_violations(EXAMPLES, golden) == []


def test_pinned_payloads_still_decode_to_the_examples() -> None:
    golden = _golden("events.json", {tag: _payload(ev) for tag, ev in EXAMPLES.items()})
    for spec in streams.ALL:
        codec = streams.codec(spec)
        assert stored_payload_violations(codec, golden) == []
        for cls in codec.event_types:
            tag = _tag(cls)
            assert codec.decode(json.dumps(golden[tag]).encode()) == EXAMPLES[tag], tag


def test_stream_schemas_match_the_pinned_contract() -> None:
    """Catches what one example cannot: a retyped field, a changed default, a new
    optional field, a new Literal value."""
    current = _schemas()
    golden = _golden("schemas.json", current)
    for key, schema in current.items():
        assert json.loads(json.dumps(schema)) == golden[key], (
            f"stream {key}: event schema changed; if intended, regenerate (see module doc)"
        )


# -- the contract test catches changes -------------------------------------------------


class DeviceRenamed(Event, frozen=True, kw_only=True):
    """A stand-in for the real `DeviceRenamed` with its field renamed."""

    device_id: str
    title: str


class DeviceRenamedWithRequiredField(Event, frozen=True, kw_only=True, tag="DeviceRenamed"):
    """A stand-in for `DeviceRenamed` with a field added without a default."""

    device_id: str
    name: str
    color: str


class DeviceRenamedRetyped(Event, frozen=True, kw_only=True, tag="DeviceRenamed"):
    """A stand-in for `DeviceRenamed` whose `name` became a number."""

    device_id: str
    name: int


def test_changing_a_stored_event_shape_fails_the_contract() -> None:
    golden = json.loads((GOLDEN / "events.json").read_text())
    renamed = {**EXAMPLES, "DeviceRenamed": DeviceRenamed(**_ids(), title="Sales 2")}
    problems = shape_violations(renamed, golden)
    assert [p for p in problems if p.startswith("DeviceRenamed.")] == [
        "DeviceRenamed.name: field removed or renamed",
        "DeviceRenamed.title: field added",
    ]


def test_adding_a_field_without_a_default_fails_the_contract() -> None:
    golden = json.loads((GOLDEN / "events.json").read_text())
    codec = StreamCodec(DeviceRenamedWithRequiredField | d.DeviceRegistered)
    [problem] = stored_payload_violations(codec, golden)
    assert problem.startswith("DeviceRenamed: stored payload no longer decodes")
    assert "color" in problem


def test_retyping_a_field_fails_the_contract() -> None:
    golden = json.loads((GOLDEN / "events.json").read_text())
    codec = StreamCodec(DeviceRenamedRetyped | d.DeviceRegistered)
    [problem] = stored_payload_violations(codec, golden)
    assert "Expected `int`, got `str`" in problem


def test_removing_an_event_type_fails_the_contract() -> None:
    golden = json.loads((GOLDEN / "events.json").read_text())
    fewer = {tag: ev for tag, ev in EXAMPLES.items() if tag != "DeviceBanned"}
    assert "DeviceBanned: pinned but no longer produced (removed or renamed?)" in (
        shape_violations(fewer, golden)
    )


def _ids() -> dict[str, Any]:
    return {"tenant_id": T, "occurred_at": AT, "device_id": DEV}


# -- decoding --------------------------------------------------------------------------


@pytest.mark.parametrize("spec", streams.ALL, ids=lambda spec: spec.key)
def test_each_stream_decodes_its_own_events_round_trip(spec: streams.StreamSpec) -> None:
    codec = streams.codec(spec)
    for cls in codec.event_types:
        event = EXAMPLES[_tag(cls)]
        decoded = codec.decode(encode(event))
        assert decoded == event
        assert type(decoded) is cls


def test_a_stream_refuses_events_of_another_stream() -> None:
    with pytest.raises(msgspec.ValidationError):
        streams.codec(streams.DEVICES).decode(encode(EXAMPLES["LeadCreated"]))


def test_an_event_built_in_code_takes_its_class_version() -> None:
    assert EXAMPLES["DeviceRenamed"].v == 1
    assert ProbeRetitled(tenant_id=T, occurred_at=AT, probe_id="p1", title="x").v == 2


def test_an_event_needs_a_timezone_aware_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        d.DeviceConnected(tenant_id=T, occurred_at=datetime(2025, 1, 1), device_id=DEV)


def test_a_payload_with_a_too_new_version_is_refused() -> None:
    payload = {**_payload(EXAMPLES["DeviceRenamed"]), "v": 2}
    with pytest.raises(msgspec.ValidationError, match="newer than this code knows"):
        streams.codec(streams.DEVICES).decode(json.dumps(payload).encode())


def test_a_payload_with_a_malformed_version_is_refused() -> None:
    payload = {**_payload(EXAMPLES["DeviceRenamed"]), "v": "1"}
    with pytest.raises(msgspec.ValidationError):
        streams.codec(streams.DEVICES).decode(json.dumps(payload).encode())


# -- upcasting -------------------------------------------------------------------------


class ProbeRetitled(Event, frozen=True, kw_only=True):
    """v2 of a throwaway event: v1 called `title` `name` and had a `legacy` flag."""

    version: ClassVar[int] = 2

    probe_id: str
    title: str
    lang: str = "en"


class ProbeDropped(Event, frozen=True, kw_only=True):
    probe_id: str


ProbeEvent = ProbeRetitled | ProbeDropped


@upcaster("ProbeRetitled", 1)
def _name_became_title(raw: dict[str, Any]) -> dict[str, Any]:
    raw["title"] = raw.pop("name")
    raw.pop("legacy", None)
    return raw


def test_an_old_payload_is_upcast_to_the_current_version() -> None:
    v1 = {
        "type": "ProbeRetitled",
        "tenant_id": T,
        "occurred_at": AT_JSON,
        "v": 1,
        "probe_id": "p1",
        "name": "Hello",
        "legacy": True,
    }
    event = StreamCodec(ProbeEvent).decode(json.dumps(v1).encode())
    assert event == ProbeRetitled(tenant_id=T, occurred_at=AT, probe_id="p1", title="Hello")
    assert event.v == 2


def test_an_old_payload_that_fits_the_new_shape_is_upcast_too() -> None:
    """A v1 payload runs through the upcasters even when the v2 decoder would take it."""
    head = {"type": "ProbeRetitled", "tenant_id": T, "occurred_at": AT_JSON}
    payload = {**head, "v": 1, "probe_id": "p1", "name": "Hi", "title": "stale"}
    event = StreamCodec(ProbeEvent).decode(json.dumps(payload).encode())
    assert isinstance(event, ProbeRetitled)
    assert (event.title, event.v) == ("Hi", 2)


def test_a_current_payload_takes_the_typed_path() -> None:
    event = ProbeRetitled(tenant_id=T, occurred_at=AT, probe_id="p1", title="Hello", lang="pt")
    assert StreamCodec(ProbeEvent).decode(encode(event)) == event


class ProbeForgotten(Event, frozen=True, kw_only=True):
    """v2 whose author forgot the upcaster from v1."""

    version: ClassVar[int] = 2

    probe_id: str
    reason: str


def test_an_old_payload_without_an_upcaster_is_refused() -> None:
    payload: dict[str, Any] = {"type": "ProbeForgotten", "tenant_id": T, "occurred_at": AT_JSON}
    payload |= {"v": 1, "probe_id": "p1"}
    with pytest.raises(msgspec.ValidationError, match="no upcaster for ProbeForgotten v1"):
        StreamCodec(ProbeForgotten | ProbeDropped).decode(json.dumps(payload).encode())


def test_a_too_new_payload_of_an_upcast_type_is_refused() -> None:
    payload: dict[str, Any] = {"type": "ProbeRetitled", "tenant_id": T, "occurred_at": AT_JSON}
    payload |= {"v": 3, "probe_id": "p1", "title": "x"}
    with pytest.raises(msgspec.ValidationError, match="newer than this code knows"):
        StreamCodec(ProbeEvent).decode(json.dumps(payload).encode())


# -- subjects --------------------------------------------------------------------------


@pytest.mark.parametrize("tag", sorted(EXAMPLES))
def test_every_event_names_a_subject_of_its_own_kind_and_stream(tag: str) -> None:
    event = EXAMPLES[tag]
    topology = Topology("wacast")
    subject = event.subject(topology)
    kind = type(event).subject_kind
    assert subject.startswith(f"wacast.{kind}.")
    assert all(token and token not in {"*", ">"} for token in subject.split("."))
    spec = streams.BY_KIND[kind]
    assert type(event) in spec.union.__args__
