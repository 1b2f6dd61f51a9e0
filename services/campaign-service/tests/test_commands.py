"""Bad input to every command gets a clear problem: its code and status say what is wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from wacast.contracts import commands as cmd
from wacast.contracts.base import Command
from wacast.contracts.values import Audience, MessageContent
from wacast.runtime.commands import Requester

from .conftest import TENANT, Harness

T = TENANT
HI = MessageContent(text="Hi {name}")
LATER = datetime(2031, 1, 1, tzinfo=UTC)
CASES: list[tuple[Command, str, int]] = [
    (cmd.CreateLead(tenant_id=T, phone="12"), "invalid_phone", 422),
    (cmd.CreateLead(tenant_id=T, phone="+14155550100", device_id="nope"), "unknown_device", 422),
    (cmd.CreateLead(tenant_id=T, phone="+14155550100", lead_id="a.b"), "invalid_id", 422),
    (
        cmd.CreateLead(tenant_id=T, phone="+14155550100", attributes={"a{b": "x"}),
        "invalid_attribute",
        422,
    ),
    (cmd.CreateLead(tenant_id="no tenant", phone="+14155550100"), "invalid_id", 422),
    (cmd.UpdateLead(tenant_id=T, lead_id="missing", name="x"), "lead_not_found", 404),
    (cmd.TagLeads(tenant_id=T, lead_ids=[]), "invalid_lead_ids", 422),
    (cmd.TagLeads(tenant_id=T, lead_ids=["missing"], add=["x"]), "lead_not_found", 404),
    (cmd.OptOutLead(tenant_id=T, lead_id="missing"), "lead_not_found", 404),
    (cmd.OptInLead(tenant_id=T, lead_id="missing"), "lead_not_found", 404),
    (cmd.DeleteLead(tenant_id=T, lead_id="missing"), "lead_not_found", 404),
    (cmd.EraseLead(tenant_id=T, lead_id="missing"), "lead_not_found", 404),
    (
        cmd.ImportLeads(tenant_id=T, filename="x.csv", object_name="uploads/other/x.csv"),
        "forbidden_object",
        403,
    ),
    (
        cmd.ImportLeads(tenant_id=T, filename="x.csv", object_name=f"uploads/{T}/x.csv"),
        "object_not_found",
        404,
    ),
    (cmd.IngestMedia(tenant_id=T, staged_object="media/other/m1"), "forbidden_object", 403),
    (cmd.IngestMedia(tenant_id=T, url="ftp://example.com/a.png"), "url_not_allowed", 422),
    (cmd.IngestMedia(tenant_id=T, url="http://127.0.0.1/a.png"), "url_not_allowed", 422),
    (
        cmd.StoreMedia(
            tenant_id=T,
            kind="image",
            mime="image/jpeg",
            bytes=1,
            filename="a.jpg",
            sha256="0" * 64,
            object_name=f"media/{T}/gone",
        ),
        "object_not_found",
        404,
    ),
    (cmd.DeleteMedia(tenant_id=T, media_id="missing"), "media_not_found", 404),
    (cmd.CreateCampaign(tenant_id=T, name=" ", message=HI), "invalid_name", 422),
    (
        cmd.CreateCampaign(tenant_id=T, name="x", message=MessageContent(media_id="gone")),
        "unknown_media",
        422,
    ),
    (
        cmd.CreateCampaign(
            tenant_id=T, name="x", message=HI, audience=Audience(device_ids=["nope"])
        ),
        "unknown_device",
        422,
    ),
    (
        cmd.CreateCampaign(tenant_id=T, name="x", message=HI, schedule_at=datetime(2031, 1, 1)),
        "naive_datetime",
        422,
    ),
    (
        cmd.CreateCampaign(
            tenant_id=T, name="x", message=HI, schedule_at=datetime(2020, 1, 1, tzinfo=UTC)
        ),
        "schedule_in_past",
        422,
    ),
    (
        cmd.ScheduleCampaign(tenant_id=T, campaign_id="missing", schedule_at=LATER),
        "campaign_not_found",
        404,
    ),
    (cmd.TriggerCampaign(tenant_id=T, campaign_id="missing"), "campaign_not_found", 404),
    (cmd.PauseCampaign(tenant_id=T, campaign_id="missing"), "campaign_not_found", 404),
    (cmd.ResumeCampaign(tenant_id=T, campaign_id="missing"), "campaign_not_found", 404),
    (cmd.CancelCampaign(tenant_id=T, campaign_id="missing"), "campaign_not_found", 404),
]


async def test_every_bad_command_gets_a_problem_with_its_code_and_status(harness: Harness) -> None:
    replica = await harness.start()
    await harness.device("d1")
    covered = {type(c) for c, _, _ in CASES}
    assert covered >= set(cmd.CampaignCommand.__args__)

    answers = [(c, await replica.send(c)) for c, _, _ in CASES]

    wrong = [
        (type(c).__name__, code, status, reply.problem)
        for (c, reply), (_, code, status) in zip(answers, CASES, strict=True)
        if reply.problem is None or (reply.problem.code, reply.problem.status) != (code, status)
    ]
    assert wrong == []
    assert all(reply.problem and reply.problem.detail for _, reply in answers)


async def test_commands_in_the_wrong_state_are_refused_with_409(harness: Harness) -> None:
    replica = await harness.start()
    await harness.device("d1")
    await harness.seed(2, ["d1"])
    created = await replica.send(cmd.CreateCampaign(tenant_id=T, name="x", message=HI))
    campaign_id = created.id

    paused_early = await replica.send(cmd.PauseCampaign(tenant_id=T, campaign_id=campaign_id))
    resumed_early = await replica.send(cmd.ResumeCampaign(tenant_id=T, campaign_id=campaign_id))
    assert (await replica.send(cmd.TriggerCampaign(tenant_id=T, campaign_id=campaign_id))).ok
    again = await replica.send(cmd.TriggerCampaign(tenant_id=T, campaign_id=campaign_id))
    moved = await replica.send(
        cmd.ScheduleCampaign(tenant_id=T, campaign_id=campaign_id, schedule_at=LATER)
    )
    twice = await replica.send(
        cmd.CreateCampaign(tenant_id=T, name="x", message=HI, campaign_id=campaign_id)
    )

    codes = [
        r.problem and (r.problem.code, r.problem.status)
        for r in (paused_early, resumed_early, again, moved, twice)
    ]
    assert codes == [
        ("campaign_not_running", 409),
        ("campaign_not_paused", 409),
        ("already_triggered", 409),
        ("campaign_not_pending", 409),
        ("campaign_exists", 409),
    ]


@pytest.mark.parametrize(
    "payload",
    [
        b"{",
        b'{"type": "CreateCampaign", "tenant_id": "acme", "name": "x", "message": {"text": "hi"},'
        b' "pacing": {"min_seconds": 30, "max_seconds": 10}}',
        b'{"type": "CreateCampaign", "tenant_id": "acme", "name": "x", "message": {"text": " "}}',
        b'{"type": "TriggerCampaign", "tenant_id": "acme"}',
    ],
)
async def test_a_malformed_command_over_nats_is_answered_422(
    harness: Harness, payload: bytes
) -> None:
    await harness.start()

    reply = await Requester(harness.nc, harness.topology, timeout=10)._request(
        harness.topology.command("campaigns", "CreateCampaign"), payload
    )

    assert isinstance(reply, bytes)
    assert b'"invalid_request"' in reply
    assert b'"status":422' in reply


async def test_a_command_over_nats_gets_the_services_reply(harness: Harness) -> None:
    await harness.start()
    requester = Requester(harness.nc, harness.topology, timeout=10)

    reply = await requester.send(cmd.CreateLead(tenant_id=T, phone="+1 415 555 0100"))
    later = await requester.send(
        cmd.ScheduleCampaign(tenant_id=T, campaign_id="nope", schedule_at=LATER + timedelta(days=1))
    )

    assert reply.ok
    assert (reply.stream, reply.seq > 0) == ("LEADS", True)
    assert later.problem is not None
    assert later.problem.status == 404
