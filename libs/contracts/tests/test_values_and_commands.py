"""Value objects refuse bad values at the edge; commands route to their owners; derived
ids never change."""

from __future__ import annotations

import msgspec
import pytest

from wacast.contracts import commands, ids
from wacast.contracts.base import Command
from wacast.contracts.subjects import Topology, check_token
from wacast.contracts.values import (
    MessageContent,
    Pacing,
    RetryPolicy,
    SendWindow,
    Step,
    Trigger,
)


def test_pacing_defaults_to_ten_to_thirty_seconds() -> None:
    assert Pacing() == Pacing(min_seconds=10, max_seconds=30)


@pytest.mark.parametrize(
    ("low", "high", "message"),
    [
        (-1, 5, "0 <= min_seconds <= max_seconds"),
        (30, 10, "0 <= min_seconds <= max_seconds"),
        (0, 86_401, "at most 86400"),
    ],
)
def test_pacing_refuses_impossible_gaps(low: float, high: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Pacing(min_seconds=low, max_seconds=high)


def test_a_bad_value_in_a_payload_is_a_validation_error() -> None:
    with pytest.raises(msgspec.ValidationError, match="min_seconds"):
        msgspec.json.decode(b'{"min_seconds": 40, "max_seconds": 10}', type=Pacing)


def test_retry_policy_needs_at_least_one_attempt() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


@pytest.mark.parametrize(
    ("days", "start", "end", "message"),
    [
        ([], 9, 18, "at least one day"),
        ([7], 9, 18, "0 \\(Monday\\) to 6 \\(Sunday\\)"),
        ([1, 1], 9, 18, "must not repeat"),
        ([1], 18, 9, "start_hour < end_hour"),
        ([1], 9, 25, "start_hour < end_hour"),
    ],
)
def test_send_window_refuses_bad_days_and_hours(
    days: list[int], start: int, end: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SendWindow(days=days, start_hour=start, end_hour=end)


def test_send_window_accepts_a_whole_week_all_day() -> None:
    window = SendWindow(days=list(range(7)), start_hour=0, end_hour=24)
    assert window.timezone == ""


def test_a_message_needs_text_or_media() -> None:
    with pytest.raises(ValueError, match="text, media or both"):
        MessageContent(text="  ")
    assert MessageContent(media_id="media_01").text == ""


def test_a_step_needs_an_id_and_no_negative_delay() -> None:
    with pytest.raises(ValueError, match="step id"):
        Step(id="", delay_seconds=0, message=MessageContent(text="hi"))
    with pytest.raises(ValueError, match="delay_seconds"):
        Step(id="s1", delay_seconds=-1, message=MessageContent(text="hi"))


def test_a_tag_trigger_needs_its_tag() -> None:
    with pytest.raises(ValueError, match="needs a tag"):
        Trigger(on="tag_added")
    with pytest.raises(ValueError, match="needs a status"):
        Trigger(on="status_changed")


def test_a_sequence_command_refuses_repeated_step_ids() -> None:
    payload = {
        "type": "CreateSequence",
        "tenant_id": "t1",
        "name": "Onboarding",
        "steps": [
            {"id": "a", "delay_seconds": 0, "message": {"text": "one"}},
            {"id": "a", "delay_seconds": 60, "message": {"text": "two"}},
        ],
    }
    with pytest.raises(msgspec.ValidationError, match="repeated: a"):
        msgspec.json.decode(msgspec.json.encode(payload), type=commands.SequenceCommand)


def test_commands_decode_with_their_owners_union() -> None:
    raw = b'{"type":"TriggerCampaign","tenant_id":"t1","campaign_id":"c1","idempotency_key":"k"}'
    command = msgspec.json.decode(raw, type=commands.CampaignCommand)
    assert command == commands.TriggerCampaign(
        tenant_id="t1", campaign_id="c1", idempotency_key="k"
    )
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(raw, type=commands.DeviceCommand)


def test_every_command_has_exactly_one_owner_and_a_subject() -> None:
    members = [cls for union in commands.OWNERS.values() for cls in union.__args__]
    assert len(members) == len(set(members))
    names = {cls.__name__ for cls in members}
    defined = {
        name
        for name, value in vars(commands).items()
        if isinstance(value, type) and issubclass(value, Command) and value is not Command
    }
    assert names == defined, "a command class belongs to no owner"
    topology = Topology("wacast")
    assert (
        commands.command_subject(topology, commands.TriggerCampaign)
        == "wacast.cmd.campaigns.TriggerCampaign"
    )
    assert commands.command_subject(topology, commands.IssueApiKey) == (
        "wacast.cmd.tenants.IssueApiKey"
    )


def test_derived_ids_are_pinned_and_subject_safe() -> None:
    pinned = {
        ids.campaign_message_id("c1", "l1"): "ma9ec12914ce9f12d760daf3984fe076c",
        ids.step_message_id("e1", "s1"): "m0eccc274e1e31702dbf19821f4a4a997",
        ids.enrollment_id("s1", "l1"): "ef3548fe5cc0c9088b20a496067982453",
        ids.phone_key("t1", "+14155550100"): "p0bb479e94ffc024f4e9c9c3979c338e1",
    }
    for derived, expected in pinned.items():
        assert derived == expected
        assert check_token(derived) == derived


def test_derived_ids_do_not_collide_across_purposes() -> None:
    assert ids.campaign_message_id("a", "b") != ids.step_message_id("a", "b")
    assert ids.campaign_message_id("a.b", "c") != ids.campaign_message_id("a", "b.c")
    assert ids.enrollment_id("s1", "l1") != ids.enrollment_id("s1", "l1", nth=2)
