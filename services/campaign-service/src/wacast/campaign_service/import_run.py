"""One pass of a CSV import, from its last progress event to the end of the file.

Rows are read in chunks, parsed (`domain.lead_row`), planned against the phone claims and
leads they touch (read directly from the stream, so nothing lags), and appended as one
atomic batch that ends with the row errors and the progress event (the resume point). A
batch ends early before a phone the batch holds already, or when it is full.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import logging
import time
from collections.abc import Awaitable, Iterable
from itertools import islice
from typing import IO, TypeVar

from wacast.campaign_service.adapters import csvfile
from wacast.campaign_service.context import Deps, subject_items
from wacast.campaign_service.domain import lead as rules
from wacast.campaign_service.domain.lead_row import Columns, RowDefaults, RowRefused, contact_of
from wacast.campaign_service.leads import claim_item
from wacast.contracts import leads as ld
from wacast.contracts.ids import phone_key
from wacast.contracts.streams import LEADS
from wacast.contracts.values import RowError
from wacast.runtime.eventstore import Append, Conflict, DuplicateInBatch
from wacast.runtime.projection import stop_if_cancelled

log = logging.getLogger("wacast.campaigns.imports")
T = TypeVar("T")
Row = tuple[int, rules.Contact | str]
"""(row number, the lead's details or why the row is refused)"""
Plan = tuple[list[Append], list[RowError], tuple[int, int], int]


class Stop(Exception):
    """Another replica advances this import."""


class ImportRun:
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
        self.reported = time.monotonic()
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
        self.reported = time.monotonic()
        in_flight: asyncio.Task[None] | None = None
        try:
            while True:
                stop_if_cancelled()
                chunk = self.pending + list(islice(rows, batch_rows - len(self.pending)))
                if not chunk:
                    break
                # Read and plan the next batch while the previous one is being appended.
                parsed = _parse(chunk, columns, defaults)
                plan = await self._plan(parsed)
                parsed, self.pending = parsed[: plan[3]], chunk[plan[3] :]
                if in_flight is not None:
                    await in_flight
                in_flight = asyncio.create_task(self._commit(parsed, plan, total))
            if in_flight is not None:
                await in_flight
        finally:
            if in_flight is not None and not in_flight.done():
                in_flight.cancel()
                await asyncio.gather(in_flight, return_exceptions=True)
        await self._finish(total)

    async def _commit(self, parsed: list[Row], plan: Plan, total: int) -> None:
        """Append one planned batch; planned again (same rows) when a lead or phone it
        touches changed meanwhile, e.g. by the batch before it."""
        for attempt in range(3):
            items, errors, counts, used = plan
            progressed, tail = self._tail(used, counts, errors, total)
            subject = progressed.subject(self.deps.topology)
            msg_id = f"{self.started.import_id}.{progressed.rows_done}"
            try:
                appended = await self.deps.store.append_batch(
                    [*items, *subject_items(subject, tail, self.seq, msg_id)]
                )
            except (Conflict, DuplicateInBatch):
                seq, last = await self.deps.last(LEADS, subject)
                if seq == self.seq and attempt < 2:
                    plan = await self._plan(parsed)
                    continue
                if seq == self.seq:
                    raise
                if not isinstance(last, ld.LeadImportProgressed):
                    raise Stop() from None
                if last.rows_done != progressed.rows_done:
                    raise Stop() from None
                self.seq, self.progress = seq, last  # ours landed; its ack was lost
                return
            self.seq, self.progress = appended.seq, progressed
            self._report(total)
            return

    def _report(self, total: int) -> None:
        if time.monotonic() - self.reported >= self.deps.settings.progress_report_seconds:
            self.reported = time.monotonic()
            p = self.progress
            log.info("import %s: %d of %d rows", self.started.import_id, p.rows_done, total)

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
        rows it covers (a batch ends before a phone it holds already). A row takes at most
        four events, so `import_batch_rows` (at most 240) always fits one atomic batch."""
        t = self.tenant_id
        keys = [phone_key(t, c.phone) if isinstance(c, rules.Contact) else "" for _, c in parsed]
        seen: set[str] = set()
        for used, key in enumerate(keys):
            if key and key in seen:
                parsed, keys = parsed[:used], keys[:used]
                break
            seen.add(key)
        by_key = await self.deps.claims(t, [k for k in keys if k])
        holders = await _gather(self.deps.lead(t, c.lead_id) for c in by_key.values() if c.lead_id)
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


def _parse(
    chunk: list[tuple[int, list[str]]], columns: Columns, defaults: RowDefaults
) -> list[Row]:
    parsed: list[Row] = []
    for row, fields in chunk:
        try:
            parsed.append((row, contact_of(fields, columns, defaults)))
        except RowRefused as exc:
            parsed.append((row, str(exc)))
    return parsed


def _with_device(contact: rules.Contact, device_id: str) -> rules.Contact:
    return rules.Contact(
        contact.phone, contact.name, device_id, contact.status, contact.tags, contact.attributes
    )


async def _gather(aws: Iterable[Awaitable[T]], limit: int = 512) -> list[T]:
    """All of `aws`, at most `limit` at a time (direct gets, not a flood of requests)."""
    semaphore = asyncio.Semaphore(limit)

    async def one(aw: Awaitable[T]) -> T:
        async with semaphore:
            return await aw

    return list(await asyncio.gather(*(one(aw) for aw in aws)))
