"""Fan-out: one send request per audience lead, each exactly once, across crashes and replicas.

After the trigger, the fan-out waits until the private lead projection has reached the
trigger's `leads_seq`, then streams the audience (leads created up to there, in lead id
order) from Postgres through a server-side cursor in one read-only snapshot, so memory
stays bounded whatever the audience size. Every atomic batch of the MESSAGES stream holds
up to `fanout_batch_size` `MessageRequested`, each on its own subject with expected
sequence 0 and its message id as `Nats-Msg-Id`, and ends with `CampaignFanoutProgressed`
on the campaign's cursor subject with the cursor's expected sequence:

- a restarted fan-out goes on after the stored cursor, so nothing before it is sent twice;
- two replicas fanning out one campaign cannot both move the cursor: the loser stops;
- a batch refused because one of its messages exists already (`DuplicateInBatch`, or a
  wrong sequence on a message subject) is retried without the messages whose subject
  holds one, once the cursor is known not to have moved;
- a batch whose acknowledgement was lost is recognised by the cursor it left.
Before each batch the campaign's subject is checked: paused, cancelled or failed, the
fan-out stops (resuming starts it again from the cursor).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import asyncpg
import msgspec

from wacast.campaign_service.adapters import private
from wacast.campaign_service.adapters.readmodel import AudienceLead, ReadModel, audience_args
from wacast.campaign_service.campaigns import CampaignCommands
from wacast.campaign_service.context import Deps
from wacast.campaign_service.domain.campaign import Campaign
from wacast.campaign_service.domain.render import personalise
from wacast.contracts.ids import campaign_message_id
from wacast.contracts.messages import (
    CampaignFanoutCompleted,
    CampaignFanoutProgressed,
    MessageRequested,
)
from wacast.contracts.streams import CAMPAIGNS, MESSAGES
from wacast.contracts.values import MediaRef, SendWindow
from wacast.runtime.eventstore import Append, AppendFailed, Conflict
from wacast.runtime.projection import stop_if_cancelled

FIRST_BATCH = 25
"""Requests in a campaign's first batch: the first sends leave while full batches follow
(a full one of 999 took its own rendering, store and intake before anything was sent)."""

log = logging.getLogger("wacast.campaigns.fanout")
_attributes = msgspec.json.Decoder(dict[str, str])


class Stop(Exception):
    """Another replica moves this campaign's cursor: leave the fan-out to it."""


@dataclass(frozen=True, slots=True)
class Cursor:
    seq: int = 0
    lead_id: str = ""
    requested: int = 0
    skipped: int = 0
    done: bool = False


class Fanout:
    def __init__(self, deps: Deps, campaigns: CampaignCommands, pool: asyncpg.Pool) -> None:
        self.deps = deps
        self.campaigns = campaigns
        self.pool = pool

    async def cursor(self, tenant_id: str, campaign_id: str) -> Cursor:
        subject = self.deps.topology.fanout(tenant_id, campaign_id)
        seq, last = await self.deps.last(MESSAGES, subject)
        if isinstance(last, CampaignFanoutCompleted):
            return Cursor(seq, "", last.requested, last.skipped, done=True)
        if isinstance(last, CampaignFanoutProgressed):
            return Cursor(seq, last.cursor, last.requested, last.skipped)
        return Cursor(seq)

    async def run(self, tenant_id: str, campaign_id: str) -> None:
        c = await self.deps.campaign(tenant_id, campaign_id)
        if c.status != "triggered" or c.message is None:
            return
        await self.deps.reads.wait_for(private.NAME, "LEADS", c.leads_seq, timeout=60)
        media = None
        if c.message.media_id:
            stored = await self.deps.media(tenant_id, c.message.media_id)
            if stored is None:
                await self.campaigns.fail(tenant_id, campaign_id, "media_missing")
                return
            media = MediaRef(
                media_id=stored.media_id,
                kind=stored.kind,
                mime=stored.mime,
                object_name=stored.object_name,
                filename=stored.filename,
            )
        cursor = await self.cursor(tenant_id, campaign_id)
        if cursor.done:
            return
        try:
            last = await self._stream(c, cursor, media, await self._window(c))
        except Stop:
            log.info("fan-out of %s continues elsewhere", campaign_id)
            return
        if last is not None:
            await self._complete(c, last)

    async def _window(self, c: Campaign) -> SendWindow | None:
        window = c.send_window
        if window is None or window.timezone:
            return window
        zone = await self.deps.timezone(c.tenant_id)
        return SendWindow(
            days=window.days, start_hour=window.start_hour, end_hour=window.end_hour, timezone=zone
        )

    async def _stream(
        self, c: Campaign, cursor: Cursor, media: MediaRef | None, window: SendWindow | None
    ) -> Cursor | None:
        """Send after `cursor`; the last cursor, or None when the campaign stopped.

        While one batch is being committed the next is read and rendered: only its closing
        cursor event waits for the previous commit (it expects that commit's sequence).
        """
        full = self.deps.settings.fanout_batch_size
        size = min(full, FIRST_BATCH) if cursor.requested == 0 else full
        args = audience_args(c.tenant_id, c.audience, c.leads_seq)
        progress = _Progress(self.deps.settings.progress_report_seconds, c, cursor.requested)
        in_flight: asyncio.Task[Cursor] | None = None
        try:
            async with (
                self.pool.acquire() as conn,
                conn.transaction(isolation="repeatable_read", readonly=True),
            ):
                items: list[Append] = []
                skipped, last_id = 0, ""
                async for lead in ReadModel.audience(conn, args, cursor.lead_id, prefetch=full):
                    last_id = lead.lead_id
                    request = self._request(c, lead, media, window)
                    if request is None:
                        skipped += 1
                        continue
                    subject = request.subject(self.deps.topology)
                    items.append(Append(subject, request, request.message_id, 0))
                    if len(items) < size:
                        continue
                    stop_if_cancelled()
                    if in_flight is not None:
                        cursor = progress.report(await in_flight)
                    if not await self._running(c):
                        return None
                    in_flight = asyncio.create_task(self._send(c, cursor, items, last_id, skipped))
                    items, skipped, size = [], 0, full
                if in_flight is not None:
                    cursor, in_flight = await in_flight, None
                if items or skipped:
                    if not await self._running(c):
                        return None
                    cursor = await self._send(c, cursor, items, last_id, skipped)
            return cursor
        finally:
            if in_flight is not None and not in_flight.done():
                in_flight.cancel()
                await asyncio.gather(in_flight, return_exceptions=True)

    def _request(
        self, c: Campaign, lead: AudienceLead, media: MediaRef | None, window: SendWindow | None
    ) -> MessageRequested | None:
        assert c.message is not None
        if not lead.eligible:
            return None
        attributes = _attributes.decode(lead.attributes) if "{attr" in c.message.text else {}
        content = personalise(c.message, name=lead.name, phone=lead.phone, attributes=attributes)
        if content is None:
            return None
        return MessageRequested(
            tenant_id=c.tenant_id,
            occurred_at=self.deps.clock.now(),
            message_id=campaign_message_id(c.campaign_id, lead.lead_id),
            device_id=lead.device_id,
            lead_id=lead.lead_id,
            origin="campaign",
            origin_id=c.campaign_id,
            to=lead.phone,
            content=content,
            media=media,
            pacing=c.pacing,
            retry=c.retry,
            window=window,
        )

    async def _running(self, c: Campaign) -> bool:
        subject = self.deps.topology.campaign(c.tenant_id, c.campaign_id)
        if await self.deps.store.last_seq(CAMPAIGNS, subject) == c.seq:
            return True
        return (await self.deps.campaign(c.tenant_id, c.campaign_id)).status == "triggered"

    async def _send(
        self, c: Campaign, cursor: Cursor, items: list[Append], last_id: str, skipped: int
    ) -> Cursor:
        progressed = CampaignFanoutProgressed(
            tenant_id=c.tenant_id,
            occurred_at=self.deps.clock.now(),
            campaign_id=c.campaign_id,
            cursor=last_id,
            requested=cursor.requested + len(items),
            skipped=cursor.skipped + skipped,
        )
        subject = progressed.subject(self.deps.topology)
        close = Append(subject, progressed, f"{c.campaign_id}.fanout.{last_id}", cursor.seq)
        for attempt in range(3):
            try:
                appended = await self.deps.store.append_batch([*items, close])
            except (Conflict, AppendFailed) as exc:
                moved = await self.cursor(c.tenant_id, c.campaign_id)
                if moved.seq != cursor.seq:
                    if moved.lead_id == last_id and not moved.done:
                        return moved  # our batch landed; its acknowledgement was lost
                    raise Stop() from exc
                if attempt == 2:
                    raise
                items = await self._without_existing(items)
                continue
            return Cursor(appended.seq, last_id, progressed.requested, progressed.skipped)
        raise AssertionError("unreachable")

    async def _without_existing(self, items: list[Append]) -> list[Append]:
        """Leave out messages whose subject holds one already (sent by an earlier run)."""
        stored = await self.deps.store.last_of(MESSAGES, [item.subject for item in items])
        return [item for item in items if item.subject not in stored]

    async def _complete(self, c: Campaign, cursor: Cursor) -> None:
        event = CampaignFanoutCompleted(
            tenant_id=c.tenant_id,
            occurred_at=self.deps.clock.now(),
            campaign_id=c.campaign_id,
            requested=cursor.requested,
            skipped=cursor.skipped,
        )
        try:
            await self.deps.store.append(
                event.subject(self.deps.topology),
                [event],
                msg_id=f"{c.campaign_id}.fanout.done",
                expected=cursor.seq,
            )
        except Conflict:
            return  # another replica completed it
        log.info(
            "fan-out of %s done: %d requested, %d skipped",
            c.campaign_id,
            cursor.requested,
            cursor.skipped,
        )


class _Progress:
    """Logs a running fan-out's progress every `every` seconds."""

    def __init__(self, every: float, c: Campaign, requested: int) -> None:
        self.every = every
        self.campaign_id = c.campaign_id
        self.started = self.reported = time.monotonic()
        self.before = requested

    def report(self, cursor: Cursor) -> Cursor:
        now = time.monotonic()
        if now - self.reported >= self.every:
            self.reported = now
            rate = (cursor.requested - self.before) / (now - self.started)
            log.info(
                "fan-out of %s: %d requested (%.0f/s)", self.campaign_id, cursor.requested, rate
            )
        return cursor
