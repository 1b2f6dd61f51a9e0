"""CSV lead imports: streamed, in atomic batches, resumable, with a per-row error report.

The caller stages the file in the media bucket as `uploads/<tenant>/<name>` (the
api-gateway from an upload, `wacast leads import` from a local file), then sends
`ImportLeads` naming it. The command appends `LeadImportStarted` and answers at once; the
import runs in the background. The file is read record by record from a temporary file
(spooled to disk), never whole in memory. Each atomic batch of the LEADS stream holds the
lead events of up to `import_batch_rows` rows (a new lead is its phone claim and
`LeadCreated`; an existing phone updates its lead when `update_existing`, else the row is
refused), the batch's `LeadImportRowsFailed` (row numbers and reasons), and closes with
`LeadImportProgressed` on the import's subject with its expected sequence: the progress
event is the resume point, so an import taken over after a crash goes on after the last
batch, and two replicas cannot both run it. New leads without a device are shared evenly
over the tenant's devices (always the one with the fewest leads). The staged file is
deleted when the import ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import logging
from collections.abc import Awaitable, Iterable
from itertools import islice
from typing import IO, TypeVar

from wacast.campaign_service.adapters import csvfile, objects
from wacast.campaign_service.context import Deps, new_id, ok, subject_items
from wacast.campaign_service.domain import lead as rules
from wacast.campaign_service.domain.errors import Refused, invalid
from wacast.campaign_service.domain.lead_row import (
    BadFile,
    Columns,
    RowDefaults,
    RowRefused,
    contact_of,
)
from wacast.campaign_service.jobs import Jobs
from wacast.campaign_service.leads import LeadCommands, claim_item
from wacast.contracts import commands as cmd
from wacast.contracts import leads as ld
from wacast.contracts.base import Reply
from wacast.contracts.ids import phone_key
from wacast.contracts.streams import LEADS
from wacast.contracts.values import RowError
from wacast.runtime.eventstore import MAX_BATCH, Append, Conflict, DuplicateInBatch

log = logging.getLogger("wacast.campaigns.imports")
T = TypeVar("T")
Row = tuple[int, rules.Contact | str]
"""(row number, the lead's details or why the row is refused)"""


Plan = tuple[list[Append], list[RowError], tuple[int, int], int]


class Stop(Exception):
    """Another replica advances this import."""


class Imports:
    def __init__(self, deps: Deps, leads: LeadCommands, jobs: Jobs) -> None:
        self.deps = deps
        self.leads = leads
        self.jobs = jobs

    async def start(self, c: cmd.ImportLeads) -> Reply:
        t = c.tenant_id
        objects.check_upload(t, c.object_name)
        if not c.filename.strip():
            raise invalid("invalid_filename", "The import needs the file's name")
        if await self.deps.objects.size(c.object_name) is None:
            raise Refused("object_not_found", "No staged file has this name", 404, c.object_name)
        device_id = await self.leads.device(t, c.device_id) if c.device_id else ""
        import_id = new_id("i", t, c.idempotency_key, c.import_id, "import id")
        event = ld.LeadImportStarted(
            tenant_id=t,
            occurred_at=self.deps.clock.now(),
            import_id=import_id,
            filename=c.filename.strip(),
            object_name=c.object_name,
            device_id=device_id,
            status=c.status,
            tags=rules.clean_tags(c.tags),
            update_existing=c.update_existing,
        )
        try:
            done = await self.deps.store.append(
                event.subject(self.deps.topology), [event], msg_id=import_id, expected=0
            )
        except Conflict:
            if c.idempotency_key and not c.import_id:
                return ok(None, LEADS, import_id)
            raise Refused(
                "import_exists", "An import with this id exists", 409, import_id
            ) from None
        self.run_later(t, import_id)
        return ok(done, LEADS, import_id)

    def run_later(self, tenant_id: str, import_id: str) -> None:
        self.jobs.start(("import", tenant_id, import_id), lambda: self.run(tenant_id, import_id))

    async def position(self, tenant_id: str, import_id: str) -> int:
        return await self.deps.store.last_seq(
            LEADS, self.deps.topology.lead_import(tenant_id, import_id)
        )

    async def run(self, tenant_id: str, import_id: str) -> None:
        subject = self.deps.topology.lead_import(tenant_id, import_id)
        history = await self.deps.store.load(LEADS, subject)
        started = history[0].event if history else None
        if not isinstance(started, ld.LeadImportStarted) or isinstance(
            history[-1].event, ld.LeadImportCompleted | ld.LeadImportFailed
        ):
            return
        progress = next(
            (s.event for s in reversed(history) if isinstance(s.event, ld.LeadImportProgressed)),
            ld.LeadImportProgressed(
                tenant_id=tenant_id,
                occurred_at=started.occurred_at,
                import_id=import_id,
                rows_done=0,
            ),
        )
        run = _Run(self.deps, started, progress, history[-1].seq)
        try:
            body = await self.deps.objects.read(started.object_name)
        except Refused:
            await run.fail("file_missing", "the staged file is gone")
            return
        try:
            await run.go(body)
        except BadFile as exc:
            await run.fail(exc.reason, exc.detail)
        except Stop:
            log.info("import %s continues elsewhere", import_id)
            return
        finally:
            body.close()
        await self.deps.objects.delete(started.object_name)


class _Run:
    """One pass of an import, from its last progress event to the end of the file."""

    def __init__(
        self,
        deps: Deps,
        started: ld.LeadImportStarted,
        progress: ld.LeadImportProgressed,
        seq: int,
    ) -> None:
        self.deps = deps
        self.started = started
        self.progress = progress
        self.seq = seq
        self.tenant_id = started.tenant_id
        self.pending: list[tuple[int, list[str]]] = []
        self.load: list[tuple[int, str]] = []

    async def go(self, body: IO[bytes]) -> None:
        t = self.tenant_id
        total = await asyncio.to_thread(csvfile.count_records, body)
        ends = await self.deps.reads.caught_up("DEVICES", "LEADS", "TENANTS")
        devices = await self.deps.reads.devices(t)
        self.load = [(n, d) for d, n in devices.items()]
        heapq.heapify(self.load)
        defaults = RowDefaults(
            region=await self.deps.region(t),
            status=self.started.status,
            tags=self.started.tags,
            device_id=self.started.device_id,
            devices=set(devices),
        )
        columns, rows = csvfile.records(body, skip=self.progress.rows_done)
        log.info("import %s: %d rows, LEADS at %d", self.started.import_id, total, ends["LEADS"])
        batch_rows = self.deps.settings.import_batch_rows
        while True:
            chunk = self.pending + list(islice(rows, batch_rows - len(self.pending)))
            self.pending = []
            if not chunk:
                break
            await self._batch(chunk, columns, defaults, total)
        await self._finish(total)

    async def _batch(
        self,
        chunk: list[tuple[int, list[str]]],
        columns: Columns,
        defaults: RowDefaults,
        total: int,
    ) -> None:
        parsed: list[Row] = []
        for row, fields in chunk:
            try:
                parsed.append((row, contact_of(fields, columns, defaults)))
            except RowRefused as exc:
                parsed.append((row, str(exc)))
        for attempt in range(3):
            items, errors, counts, used = await self._plan(parsed)
            self.pending = chunk[used:]
            progressed, tail = self._tail(used, counts, errors, total)
            subject = progressed.subject(self.deps.topology)
            msg_id = f"{self.started.import_id}.{progressed.rows_done}"
            items += subject_items(subject, tail, self.seq, msg_id)
            try:
                appended = await self.deps.store.append_batch(items)
            except (Conflict, DuplicateInBatch):
                seq, last = await self.deps.last(LEADS, subject)
                if seq == self.seq and attempt < 2:
                    continue  # a lead or phone changed meanwhile: plan again
                if seq == self.seq:
                    raise
                if not isinstance(last, ld.LeadImportProgressed):
                    raise Stop() from None
                if last.rows_done != progressed.rows_done:
                    raise Stop() from None
                self.seq, self.progress = seq, last  # ours landed; its ack was lost
                return
            self.seq, self.progress = appended.seq, progressed
            return

    def _tail(
        self, used: int, counts: tuple[int, int], errors: list[RowError], total: int
    ) -> tuple[ld.LeadImportProgressed, list[ld.LeadImportEventBase]]:
        """The events that close a batch: its row errors, then the progress (resume point)."""
        p, now, import_id = self.progress, self.deps.clock.now(), self.started.import_id
        progressed = ld.LeadImportProgressed(
            tenant_id=self.tenant_id,
            occurred_at=now,
            import_id=import_id,
            rows_done=p.rows_done + used,
            created=p.created + counts[0],
            updated=p.updated + counts[1],
            failed=p.failed + len(errors),
            total_rows=total,
        )
        if not errors:
            return progressed, [progressed]
        failed = ld.LeadImportRowsFailed(
            tenant_id=self.tenant_id, occurred_at=now, import_id=import_id, errors=errors
        )
        return progressed, [failed, progressed]

    async def _plan(self, parsed: list[Row]) -> Plan:
        """The batch's lead events, its row errors, (created, updated), and how many of the
        rows it covers (a batch ends before a repeated phone or when it is full)."""
        t = self.tenant_id
        keys = [phone_key(t, c.phone) if isinstance(c, rules.Contact) else "" for _, c in parsed]
        seen: set[str] = set()
        for used, key in enumerate(keys):
            if key and key in seen:
                parsed, keys = parsed[:used], keys[:used]
                break
            seen.add(key)
        claims = await _gather(self.deps.claim(t, k) for k in keys if k)
        by_key = {claim.phone_key: claim for claim in claims}
        holders = await _gather(self.deps.lead(t, c.lead_id) for c in claims if c.lead_id)
        by_id = {lead.lead_id: lead for lead in holders}
        items: list[Append] = []
        errors: list[RowError] = []
        created = updated = used = 0
        for (row, contact), key in zip(parsed, keys, strict=True):
            if isinstance(contact, str):
                errors.append(RowError(row=row, reason=contact))
                used += 1
                continue
            planned, outcome = self._row(row, contact, by_key[key], by_id)
            if len(items) + len(planned) > MAX_BATCH - 2:
                break
            items += planned
            used += 1
            if outcome == "created":
                created += 1
            elif outcome == "updated":
                updated += 1
            elif outcome:
                errors.append(RowError(row=row, reason=outcome))
        return items, errors, (created, updated), used

    def _row(
        self, row: int, contact: rules.Contact, claim: rules.Claim, holders: dict[str, rules.Lead]
    ) -> tuple[list[Append], str]:
        holder = holders.get(claim.lead_id)
        now = self.deps.clock.now()
        if holder is not None and holder.exists and not holder.deleted:
            if not self.started.update_existing:
                return [], f"phone exists already (lead {holder.lead_id})"
            events = rules.update(
                holder,
                now,
                name=contact.name or None,
                attributes={**holder.attributes, **contact.attributes},
                status=contact.status if contact.status != holder.status else None,
                tags=list(dict.fromkeys([*holder.tags, *contact.tags])),
                device_id=contact.device_id or None,
            )
            subject = self.deps.topology.lead(self.tenant_id, holder.lead_id)
            msg_id = f"{holder.lead_id}.{holder.seq}"
            return subject_items(subject, events, holder.seq, msg_id), "updated"
        origin = f"{self.started.import_id}\x1f{row}".encode()
        lead_id = "l" + hashlib.sha256(origin).hexdigest()[:24]
        device_id = contact.device_id or self._least_loaded()
        created = rules.create(
            self.tenant_id, lead_id, _with_device(contact, device_id), now, self.started.import_id
        )
        subject = created.subject(self.deps.topology)
        return [
            claim_item(self.deps, self.tenant_id, claim, lead_id),
            Append(subject, created, f"{lead_id}.0", 0),
        ], "created"

    def _least_loaded(self) -> str:
        if not self.load:
            return ""
        count, device_id = heapq.heappop(self.load)
        heapq.heappush(self.load, (count + 1, device_id))
        return device_id

    async def _finish(self, total: int) -> None:
        p = self.progress
        event = ld.LeadImportCompleted(
            tenant_id=self.tenant_id,
            occurred_at=self.deps.clock.now(),
            import_id=self.started.import_id,
            rows=p.rows_done,
            created=p.created,
            updated=p.updated,
            failed=p.failed,
        )
        await self._close(event)
        log.info("import %s done: %d rows of %d", self.started.import_id, p.rows_done, total)

    async def fail(self, reason: str, detail: str) -> None:
        event = ld.LeadImportFailed(
            tenant_id=self.tenant_id,
            occurred_at=self.deps.clock.now(),
            import_id=self.started.import_id,
            reason=reason,
            detail=detail,
        )
        await self._close(event)

    async def _close(self, event: ld.LeadImportEventBase) -> None:
        try:
            await self.deps.store.append(
                event.subject(self.deps.topology),
                [event],
                msg_id=f"{self.started.import_id}.end",
                expected=self.seq,
            )
        except Conflict:
            raise Stop() from None


def _with_device(contact: rules.Contact, device_id: str) -> rules.Contact:
    return rules.Contact(
        contact.phone, contact.name, device_id, contact.status, contact.tags, contact.attributes
    )


async def _gather(aws: Iterable[Awaitable[T]], limit: int = 128) -> list[T]:
    """All of `aws`, at most `limit` at a time (direct gets, not a flood of requests)."""
    semaphore = asyncio.Semaphore(limit)

    async def one(aw: Awaitable[T]) -> T:
        async with semaphore:
            return await aw

    return list(await asyncio.gather(*(one(aw) for aw in aws)))
