"""The read models: status flow, reports, deletions, isolation, read-your-writes, rebuild."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import msgspec
from nats.aio.client import Client

from wacast.contracts import campaigns as c
from wacast.contracts import devices as d
from wacast.contracts import leads as ld
from wacast.contracts import messages as m
from wacast.contracts import queries as q
from wacast.contracts import sequences as s
from wacast.contracts.subjects import Topology
from wacast.contracts.values import MessageCounts, RowError
from wacast.report_service.projections import SCHEMA, Reports
from wacast.runtime.deadletter import DeadLetters
from wacast.runtime.projection import rebuild

from .conftest import History, LiveReports, dump


async def sent_campaign(history: History) -> None:
    """Campaign c1 over two devices: a1 has 3 leads, b1 has 2; outcomes of every kind."""
    await history.tenant_created()
    await history.device("a1")
    await history.device("b1")
    await history.leads("a1", 3, prefix="a")
    await history.leads("b1", 2, prefix="b")
    await history.campaign("c1")
    h = history
    await h.add(
        *[h.request("c1", f"a{i}", "a1") for i in range(3)],
        *[h.request("c1", f"b{i}", "b1") for i in range(2)],
        h.dispatching("c1", "a0", "a1"),
        h.outcome(m.MessageSent, "c1", "a0", "a1", wa_message_id="w0"),
        h.outcome(m.MessageRead, "c1", "a0", "a1"),
        h.outcome(m.MessageDelivered, "c1", "a0", "a1"),  # late: stays read
        h.dispatching("c1", "a1", "a1"),
        h.outcome(m.MessageFailed, "c1", "a1", "a1", reason="not_on_whatsapp"),
        h.outcome(m.MessageSent, "c1", "a1", "a1", wa_message_id="w1"),  # after failed: stays
        h.dispatching("c1", "a2", "a1"),
        h.cancelled("c1", "b0", "b1", reason="device_offline"),
        h.dispatching("c1", "b1", "b1"),
        h.outcome(m.MessageSent, "c1", "b1", "b1", wa_message_id="w2"),
    )


async def test_message_status_only_moves_forward_and_the_report_counts_per_device(
    history: History, reports: LiveReports
) -> None:
    await sent_campaign(history)
    seq = history.last["MESSAGES"]
    t = history.tenant
    await reports.caught_up(history)

    report = await reports.ask(
        q.CAMPAIGN_REPORT, q.GetOne(tenant_id=t, id="c1", after_seq=seq), q.CampaignReport
    )
    page = await reports.ask(
        q.CAMPAIGN_MESSAGES, q.ListCampaignMessages(tenant_id=t, campaign_id="c1"), q.MessagePage
    )

    by_lead = {row.lead_id: row for row in page.items}
    assert {k: v.status for k, v in by_lead.items()} == {
        "a0": "read",
        "a1": "failed",
        "a2": "queued",
        "b0": "failed",
        "b1": "sent",
    }
    assert by_lead["a0"].delivered_at is not None
    assert by_lead["b0"].reason == "device_offline"
    assert by_lead["a0"].lead_name == "Lead a0"
    assert by_lead["a0"].device_name == "Phone a1"
    assert [(r.device_id, r.total, r.pending, r.success, r.failed) for r in report.devices] == [
        ("a1", 3, 1, 1, 1),
        ("b1", 2, 0, 1, 1),
    ]
    assert report.totals == q.ReportTotals(total=5, pending=1, success=2, failed=2)


async def test_the_message_list_filters_by_group_precise_status_and_device_and_pages(
    history: History, reports: LiveReports
) -> None:
    await sent_campaign(history)
    t = history.tenant
    await reports.caught_up(history)

    async def ids(**kw: object) -> list[str]:
        page = await reports.ask(
            q.CAMPAIGN_MESSAGES,
            q.ListCampaignMessages(tenant_id=t, campaign_id="c1", **kw),  # type: ignore[arg-type]
            q.MessagePage,
        )
        return [r.lead_id for r in page.items]

    assert await ids(status="success") == ["a0", "b1"]
    assert await ids(status="failed") == ["a1", "b0"]
    assert await ids(status="pending") == ["a2"]
    assert await ids(status="read") == ["a0"]
    assert await ids(status="failed", device_id="b1") == ["b0"]
    assert await ids(device_id="a1") == ["a0", "a1", "a2"]
    seen: list[str] = []
    cursor = ""
    while True:
        page = await reports.ask(
            q.CAMPAIGN_MESSAGES,
            q.ListCampaignMessages(tenant_id=t, campaign_id="c1", limit=2, cursor=cursor),
            q.MessagePage,
        )
        seen += [r.lead_id for r in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ["a0", "a1", "a2", "b0", "b1"]
    bad = await reports.problem(
        q.CAMPAIGN_MESSAGES,
        q.ListCampaignMessages(tenant_id=t, campaign_id="c1", cursor="nonsense"),
        q.MessagePage,
    )
    assert bad.problem is not None
    assert bad.problem.status == 422


async def test_campaign_summary_counts_failures_by_reason_and_reaches_finished(
    history: History, reports: LiveReports
) -> None:
    await sent_campaign(history)
    t = history.tenant
    await reports.caught_up(history)

    running = await reports.ask(q.CAMPAIGN, q.GetOne(tenant_id=t, id="c1"), q.Campaign)
    await history.add(c.CampaignCompleted(**history.base(), campaign_id="c1", requested=5))
    done = await reports.ask(
        q.CAMPAIGN,
        q.GetOne(tenant_id=t, id="c1", after_seq=history.last["CAMPAIGNS"]),
        q.Campaign,
    )
    await history.add(
        c.CampaignFinished(**history.base(), campaign_id="c1", counts=MessageCounts())
    )
    await reports.caught_up(history)
    reports.clock._now = history.now + timedelta(hours=2)
    final = await reports.ask(q.CAMPAIGN, q.GetOne(tenant_id=t, id="c1"), q.Campaign)

    assert running.status == "triggered"
    assert running.counts.total == 5
    assert running.counts.failed_by_reason == {"device_offline": 1, "not_on_whatsapp": 1}
    assert running.counts.success == 2
    assert running.percent == 80.0
    assert running.eta is not None
    assert done.status == "completed"
    assert final.status == "finished"
    assert final.finished_at is not None


async def test_deleting_a_device_removes_its_leads_and_messages_everywhere(
    history: History, reports: LiveReports
) -> None:
    await sent_campaign(history)
    t = history.tenant
    await reports.caught_up(history)
    impact = await reports.ask(q.DEVICE_IMPACT, q.GetOne(tenant_id=t, id="a1"), q.DeletionImpact)

    seq = await history.add(d.DeviceDeleteRequested(**history.base(), device_id="a1"))
    # Late events of the deleted device must not bring anything back.
    await history.add(
        history.outcome(m.MessageSent, "c1", "a2", "a1", wa_message_id="late"),
        history.request("c1", "a9", "a1"),
    )
    await history.add(
        ld.LeadCreated(**history.base(), lead_id="late", phone="+15559999999", device_id="a1")
    )
    await reports.caught_up(history)

    device = await reports.problem(
        q.DEVICE, q.GetOne(tenant_id=t, id="a1", after_seq=seq), q.Device
    )
    leads = await reports.ask(q.LEADS, q.ListLeads(tenant_id=t), q.LeadPage)
    report = await reports.ask(q.CAMPAIGN_REPORT, q.GetOne(tenant_id=t, id="c1"), q.CampaignReport)
    lead = await reports.problem(q.LEAD, q.GetOne(tenant_id=t, id="a0"), q.LeadDetail)

    assert impact == q.DeletionImpact(device_id="a1", leads=3, messages=3)
    assert device.problem is not None
    assert device.problem.status == 404
    assert sorted(lead.id for lead in leads.items) == ["b0", "b1"]
    assert [r.device_id for r in report.devices] == ["b1"]
    assert report.totals.total == 2
    assert lead.problem is not None


async def test_an_erased_lead_leaves_no_row_and_its_counts_go(
    history: History, reports: LiveReports
) -> None:
    await sent_campaign(history)
    t = history.tenant
    await history.add(ld.LeadErased(**history.base(), lead_id="b1"))
    await reports.caught_up(history)

    report = await reports.ask(q.CAMPAIGN_REPORT, q.GetOne(tenant_id=t, id="c1"), q.CampaignReport)
    async with reports.pool.acquire() as conn:
        rows = await conn.fetchval(
            "SELECT count(*) FROM messages WHERE lead_id = 'b1'"
        ) + await conn.fetchval("SELECT count(*) FROM leads WHERE lead_id = 'b1'")

    assert rows == 0
    assert report.totals == q.ReportTotals(total=4, pending=1, success=1, failed=2)


async def test_queries_never_show_another_tenants_objects(
    history: History, reports: LiveReports
) -> None:
    await sent_campaign(history)
    await history.tenant_created("other")
    await history.device("z1", tenant="other")
    await reports.caught_up(history)
    other = "other"
    lookups: list[tuple[str, msgspec.Struct, type[msgspec.Struct]]] = [
        (q.DEVICE, q.GetOne(tenant_id=other, id="a1"), q.Device),
        (q.DEVICE_IMPACT, q.GetOne(tenant_id=other, id="a1"), q.DeletionImpact),
        (q.LEAD, q.GetOne(tenant_id=other, id="a0"), q.LeadDetail),
        (q.CAMPAIGN, q.GetOne(tenant_id=other, id="c1"), q.Campaign),
        (q.CAMPAIGN_REPORT, q.GetOne(tenant_id=other, id="c1"), q.CampaignReport),
        (
            q.CAMPAIGN_MESSAGES,
            q.ListCampaignMessages(tenant_id=other, campaign_id="c1"),
            q.MessagePage,
        ),
    ]

    for name, query, response in lookups:
        refused = await reports.problem(name, query, response)
        assert refused.problem is not None
        assert refused.problem.status == 404, name
    devices = await reports.ask(q.DEVICES, q.ListDevices(tenant_id=other), q.DevicePage)
    leads = await reports.ask(q.LEADS, q.ListLeads(tenant_id=other), q.LeadPage)
    campaigns = await reports.ask(q.CAMPAIGNS, q.ListCampaigns(tenant_id=other), q.CampaignPage)
    assert [x.id for x in devices.items] == ["z1"]
    assert leads.items == []
    assert campaigns.items == []


async def test_a_query_with_after_seq_reads_its_own_write(
    history: History, reports: LiveReports
) -> None:
    await history.tenant_created()
    for i in range(20):
        seq = await history.device(f"d{i}", connected=False)
        found = await reports.ask(
            q.DEVICE, q.GetOne(tenant_id=history.tenant, id=f"d{i}", after_seq=seq), q.Device
        )
        assert found.status == "unpaired"


async def test_the_device_board_shows_status_leads_and_sends_today(
    history: History, reports: LiveReports
) -> None:
    await sent_campaign(history)
    await history.add(
        d.DeviceBanned(**history.base(), device_id="b1", reason="spam"),
        d.DeviceRenamed(**history.base(), device_id="b1", name="Sales"),
    )
    await reports.caught_up(history)

    board = await reports.ask(q.DEVICES, q.ListDevices(tenant_id=history.tenant), q.DevicePage)
    banned = await reports.ask(
        q.DEVICES, q.ListDevices(tenant_id=history.tenant, status="banned"), q.DevicePage
    )

    by_id = {x.id: x for x in board.items}
    assert by_id["a1"].status == "connected"
    assert by_id["a1"].leads == 3
    assert by_id["a1"].sends_today == 1
    assert by_id["a1"].phone == "+15550001111"
    assert by_id["a1"].last_seen_at is not None
    assert by_id["b1"].status == "banned"
    assert by_id["b1"].name == "Sales"
    assert by_id["b1"].sends_today == 1
    assert [x.id for x in banned.items] == ["b1"]


async def test_leads_filter_and_the_lead_detail_lists_its_messages_and_enrollments(
    history: History, reports: LiveReports
) -> None:
    await sent_campaign(history)
    t = history.tenant
    await history.add(
        ld.LeadTagsChanged(**history.base(), lead_id="a0", tags=["vip"], added=["vip"]),
        ld.LeadStatusChanged(
            **history.base(), lead_id="a1", status="customer", previous_status="prospect"
        ),
        ld.LeadOptedOut(**history.base(), lead_id="b0"),
        ld.LeadDeleted(**history.base(), lead_id="b1"),
    )
    await history.sequence("s1")
    await history.add(
        s.EnrollmentStarted(
            **history.base(), enrollment_id="e1", sequence_id="s1", lead_id="a0", device_id="a1"
        ),
        s.EnrollmentStepSent(
            **history.base(), enrollment_id="e1", sequence_id="s1", step_id="s0", message_id="x"
        ),
    )
    await reports.caught_up(history)

    async def ids(**kw: object) -> list[str]:
        page = await reports.ask(q.LEADS, q.ListLeads(tenant_id=t, **kw), q.LeadPage)  # type: ignore[arg-type]
        return sorted(x.id for x in page.items)

    detail = await reports.ask(q.LEAD, q.GetOne(tenant_id=t, id="a0"), q.LeadDetail)
    progress = await reports.ask(q.SEQUENCE, q.GetOne(tenant_id=t, id="s1"), q.Sequence)

    assert await ids() == ["a0", "a1", "a2", "b0"]
    assert await ids(tag="vip") == ["a0"]
    assert await ids(status="customer") == ["a1"]
    assert await ids(opted_out=True) == ["b0"]
    assert await ids(device_id="b1") == ["b0"]
    assert await ids(search="lead a") == ["a0", "a1", "a2"]
    assert [x.status for x in detail.messages] == ["read"]
    assert [e.sequence_name for e in detail.enrollments] == ["Drip s1"]
    assert progress.progress.enrolled == 1
    assert progress.progress.active == 1


async def test_rebuild_from_zero_equals_the_live_tables(
    history: History,
    reports: LiveReports,
    pool: asyncpg.Pool,
    nc: Client,
    streams: Topology,
) -> None:
    await sent_campaign(history)
    await history.leads("b1", 2, prefix="x")
    await history.add(
        ld.LeadDeviceAssigned(
            **history.base(), lead_id="a2", device_id="b1", previous_device_id="a1"
        )
    )
    await history.add(d.DeviceDeleteRequested(**history.base(), device_id="a1"))
    await history.add(
        ld.LeadErased(**history.base(), lead_id="x0"),
        ld.LeadImportStarted(**history.base(), import_id="i1", filename="f.csv"),
        ld.LeadImportRowsFailed(
            **history.base(), import_id="i1", errors=[RowError(row=3, reason="bad phone")]
        ),
    )
    await history.add(
        history.outcome(m.MessageDelivered, "c1", "b1", "b1"),
        history.request("c1", "x1", "b1"),
    )
    await reports.caught_up(history)
    live = await dump(pool, SCHEMA)

    await rebuild(
        Reports(),
        pool=pool,
        nc=nc,
        topology=streams,
        schema=SCHEMA,
        dead_letters=DeadLetters(nc, streams),
    )

    rebuilt = await dump(pool, SCHEMA)
    assert rebuilt == live
    assert any(row[1] == "a2" for row in live["leads"])  # moved off the deleted device: kept
    assert live["lead_import_errors"]


async def test_live_progress_is_published_for_campaigns_that_moved(
    history: History, reports: LiveReports, nc: Client, streams: Topology
) -> None:
    from wacast.report_service.live import publish_progress

    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def got(msg: object) -> None:
        await received.put(msg.data)  # type: ignore[attr-defined]

    await nc.subscribe(streams.live(history.tenant), cb=got)
    await sent_campaign(history)
    await reports.caught_up(history)
    projection = reports.runner.projection
    assert isinstance(projection, Reports)

    await publish_progress(nc, streams, reports.pool, projection, reports.clock, timedelta(hours=1))

    update = msgspec.json.decode(await asyncio.wait_for(received.get(), 2), type=q.LiveUpdate)
    assert isinstance(update, q.LiveCampaignProgress)
    assert update.counts.total == 5
