"""CSV imports: good rows become leads, bad rows are reported, a second import updates."""

from __future__ import annotations

from collections import Counter

from wacast.campaign_service.adapters.objects import MediaObjects
from wacast.contracts import commands as cmd
from wacast.contracts import leads as ld
from wacast.contracts.base import Event
from wacast.contracts.streams import LEADS

from .conftest import TENANT, Harness, Replica

GOOD_AND_BAD = """name,phone,status,tags,city
Ana,(415) 555-0101,customer,vip;sp,Campinas
Bruno,not a phone,,,
Carla,+1 415 555 0103,prospect,,Recife
Dan,+1 415 555 0101,,,
Eve,+1 415 555 0105,banana,,
"Frank, Jr.",415 555 0106,,"a,b",Rio
"""


async def run_import(
    harness: Harness,
    replica: Replica,
    csv: str,
    name: str = "leads.csv",
    *,
    tags: list[str] | None = None,
    update_existing: bool = False,
) -> list[Event]:
    """The events on the import's subject once it completed or failed."""
    objects = MediaObjects(harness.nc.jetstream(), harness.topology)
    await objects.put(f"uploads/{TENANT}/{name}", csv.encode())
    reply = await replica.send(
        cmd.ImportLeads(
            tenant_id=TENANT,
            filename=name,
            object_name=f"uploads/{TENANT}/{name}",
            tags=tags or [],
            update_existing=update_existing,
        )
    )
    assert reply.ok, reply.problem
    subject = harness.topology.lead_import(TENANT, reply.id)

    async def ended() -> list[Event]:
        events = await harness.events(LEADS, subject)
        done = events and isinstance(events[-1], ld.LeadImportCompleted | ld.LeadImportFailed)
        return events if done else []

    events = await harness.eventually(ended)

    async def staged_file_gone() -> bool:
        return await objects.size(f"uploads/{TENANT}/{name}") is None

    await harness.eventually(staged_file_gone)
    return events


async def created_leads(harness: Harness) -> list[ld.LeadCreated]:
    subjects = await harness.subjects(LEADS, f"{harness.topology.prefix}.lead.{TENANT}.*")
    found = []
    for subject in subjects:
        found += [e for e in await harness.events(LEADS, subject) if isinstance(e, ld.LeadCreated)]
    return found


async def test_a_csv_with_bad_rows_imports_the_good_ones_and_reports_the_rest(
    harness: Harness,
) -> None:
    replica = await harness.start()
    await harness.device("d1")

    events = await run_import(harness, replica, GOOD_AND_BAD)

    completed = events[-1]
    assert isinstance(completed, ld.LeadImportCompleted)
    assert (completed.rows, completed.created, completed.failed) == (6, 3, 3)
    errors = [e for ev in events if isinstance(ev, ld.LeadImportRowsFailed) for e in ev.errors]
    assert [(e.row, e.reason) for e in errors] == [
        (3, "invalid phone: not a phone number"),
        (5, "phone exists already (lead " + errors[1].reason.split("lead ")[1]),
        (6, "status must be prospect or customer"),
    ]
    # No personal data in the reasons: no phone of the file, in any of its spellings (a
    # lead id is random hex, so a short digit run like "415" can appear in one by chance).
    reasons = " ".join(e.reason for e in errors)
    assert not any(fragment in reasons for fragment in ("555010", "555 01", "555-01", "(415)"))
    leads = {lead.name: lead for lead in await created_leads(harness)}
    assert set(leads) == {"Ana", "Carla", "Frank, Jr."}
    assert (leads["Ana"].phone, leads["Ana"].status, leads["Ana"].tags) == (
        "+14155550101",
        "customer",
        ["vip", "sp"],
    )
    assert leads["Ana"].attributes == {"city": "Campinas"}
    assert leads["Frank, Jr."].tags == ["a", "b"]
    progressed = [e for e in events if isinstance(e, ld.LeadImportProgressed)]
    assert progressed[-1].total_rows == 6


async def test_a_second_import_updates_the_leads_and_never_duplicates_them(
    harness: Harness,
) -> None:
    replica = await harness.start()
    await harness.device("d1")
    await run_import(harness, replica, "phone,name\n+14155550101,Ana\n+14155550102,Bia\n")

    events = await run_import(
        harness,
        replica,
        "phone;name;city\n415 555 0101;Ana Lima;Rio\n415 555 0103;Caio;\n",
        name="again.csv",
        update_existing=True,
        tags=["fair"],
    )

    completed = events[-1]
    assert isinstance(completed, ld.LeadImportCompleted)
    assert (completed.created, completed.updated, completed.failed) == (1, 1, 0)
    leads = await created_leads(harness)
    assert Counter(lead.phone for lead in leads) == {
        "+14155550101": 1,
        "+14155550102": 1,
        "+14155550103": 1,
    }
    [ana] = [lead for lead in leads if lead.phone == "+14155550101"]
    history = await harness.events(LEADS, harness.topology.lead(TENANT, ana.lead_id))
    updated = [e for e in history if isinstance(e, ld.LeadUpdated)]
    assert (updated[0].name, updated[0].attributes) == ("Ana Lima", {"city": "Rio"})
    assert any(isinstance(e, ld.LeadTagsChanged) and e.tags == ["fair"] for e in history)


async def test_imported_leads_without_a_device_are_spread_evenly(harness: Harness) -> None:
    replica = await harness.start(import_batch_rows=7)
    for device_id in ("d1", "d2", "d3"):
        await harness.device(device_id)
    await harness.seed(4, ["d1"])
    rows = "".join(f"+1415555{n:04d}\n" for n in range(100, 130))

    await run_import(harness, replica, "phone\n" + rows)

    imported = [lead for lead in await created_leads(harness) if lead.import_id]
    per_device = Counter(lead.device_id for lead in imported)
    assert sum(per_device.values()) == 30
    assert Counter({"d1": 4}) + per_device == {"d1": 12, "d2": 11, "d3": 11}


async def test_a_file_without_a_phone_column_fails_the_import(harness: Harness) -> None:
    replica = await harness.start()

    events = await run_import(harness, replica, "name,email\nAna,ana@example.com\n")

    failed = events[-1]
    assert isinstance(failed, ld.LeadImportFailed)
    assert failed.reason == "no_phone_column"
