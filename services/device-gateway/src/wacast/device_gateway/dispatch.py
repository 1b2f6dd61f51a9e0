"""Handing one message to the driver, exactly once, and recording what became of it.

Order of a send: fetch the request, show 'typing…', append `MessageDispatching` to the lane
(fenced: a replica that lost the device appends nothing and sends nothing), call the driver,
append the outcome on the message's subject expecting it empty (so a takeover's `unknown`
and a late `sent` cannot both be recorded). Known-not-sent transient failures go back to the
lane for a later attempt; an outcome nobody knows is failed as `unknown`, never resent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta

from nats.js.errors import NotFoundError

from wacast.contracts import messages as m
from wacast.contracts.streams import MESSAGES, codec
from wacast.device_gateway import metrics
from wacast.device_gateway.directory import Directory
from wacast.device_gateway.domain.lane import Entry, Plan
from wacast.device_gateway.domain.pacing import retry_delay, typing_seconds
from wacast.device_gateway.drivers.base import Driver, DriverError, Outbound, SendError
from wacast.device_gateway.drivers.registry import Drivers
from wacast.device_gateway.lanes import Lanes, Slot
from wacast.device_gateway.media import MediaCache
from wacast.device_gateway.outcomes import Outcomes
from wacast.device_gateway.settings import Settings
from wacast.runtime.clock import Clock
from wacast.runtime.eventstore import EventStore

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        store: EventStore,
        clock: Clock,
        lanes: Lanes,
        directory: Directory,
        drivers: Drivers,
        media: MediaCache,
        outcomes: Outcomes,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.lanes = lanes
        self.directory = directory
        self.drivers = drivers
        self.media = media
        self.outcomes = outcomes
        self._decoder = codec(MESSAGES)
        self.gate = asyncio.Semaphore(settings.dispatch_concurrency)
        """Lanes fetching requests or handing messages over at once (a start-up with
        thousands of lanes due must not drown the bus in requests)."""

    async def dispatch(self, slot: Slot, plan: Plan) -> None:
        entry, due = plan.entry, plan.due
        assert entry is not None
        assert due is not None
        lane = slot.lane
        async with self.gate:
            request = await self.request(entry)
        if request is None:
            await self.lanes.cancel(slot, [entry], "request_missing")
            return
        typing = typing_seconds(
            request.content.text,
            entry.pacing,
            plan.gap,
            self.settings.typing_seconds_per_char,
            self.settings.typing_max_seconds,
        )
        media = None
        if request.media is not None:
            media = await self.media.get(request.media.object_name)
            if media is None:
                await self.lanes.cancel(slot, [entry], "media_missing")
                return
        state = self.directory.state(lane.device_id)
        driver = await self.drivers.get(state.driver if state else "sim")
        prepare = self.settings.prepare_seconds if entry.pacing.max_seconds > 0 else 0.0
        typist = asyncio.create_task(
            self._type(driver, lane.device_id, request.to, typing, due - timedelta(seconds=typing))
        )
        try:
            await self.clock.sleep_until(due - timedelta(seconds=prepare))
            async with self.gate:
                await self._hand_over(slot, plan, request, driver, media)
        finally:
            typist.cancel()

    async def _type(
        self, driver: Driver, device_id: str, to: str, seconds: float, at: datetime
    ) -> None:
        """'typing…' from `at` until the send (alongside: it never delays the send)."""
        if seconds <= 0:
            return
        await self.clock.sleep_until(at)
        try:
            await driver.typing(device_id, to, seconds)
        except (DriverError, SendError) as exc:
            log.info("typing failed on %s: %s", device_id, exc)

    async def _hand_over(
        self,
        slot: Slot,
        plan: Plan,
        request: m.MessageRequested,
        driver: Driver,
        media: bytes | None,
    ) -> None:
        """Record the hand-off (fenced), then call the driver when the send is due."""
        entry, due = plan.entry, plan.due
        assert entry is not None
        assert due is not None
        lane = slot.lane
        async with slot.lock:
            now = self.clock.now()
            cap = self.lanes.cap_of(lane, now)
            if not (
                self.lanes.sendable(lane.device_id)
                and lane.eligible(entry, now, self.lanes.held(slot), cap)
            ):
                return
            attempt = entry.attempt
            handed = m.MessageDispatching(
                tenant_id=lane.tenant_id,
                occurred_at=self.clock.now(),
                device_id=lane.device_id,
                message_id=entry.message_id,
                attempt=attempt,
            )
            await self.lanes.append_locked(slot, [handed])
        await self.clock.sleep_until(due)
        outbound = Outbound(
            to=request.to,
            text=request.content.text,
            media=media,
            media_kind=request.media.kind if request.media else None,
            mime=request.media.mime if request.media else "",
            filename=request.media.filename if request.media else "",
            origin_message_id=entry.message_id,
            campaign_id=request.origin_id if request.origin == "campaign" else "",
        )
        called = self.clock.now()
        if lane.last_send_at is not None:
            metrics.GAP_SECONDS.observe((called - lane.last_send_at).total_seconds())
        lane.sent_at(called)
        budget = self.settings.stuck_timeout_seconds - (called - handed.occurred_at).total_seconds()
        started = time.monotonic()
        try:
            try:
                sent = await asyncio.wait_for(
                    driver.send(lane.device_id, outbound), max(0.001, budget)
                )
            finally:
                # The next gap counts from the result: the network took the message no
                # later than that, so however long it was on its way, the gap it sees is
                # never short.
                lane.sent_at(self.clock.now())
        except SendError as exc:
            await self._refused(
                slot, entry, request, attempt, exc.reason, exc.accepted, exc.retryable, exc.detail
            )
        except DriverError as exc:
            await self._refused(slot, entry, request, attempt, exc.code, False, True, exc.detail)
        except TimeoutError:
            await self.outcomes.fail(
                slot, entry, "timeout", attempt=attempt, detail="no result before the stuck timeout"
            )
        except Exception as exc:
            log.exception("send on %s failed unexpectedly", lane.device_id)
            await self.outcomes.fail(
                slot, entry, "unknown", attempt=attempt, detail=repr(exc)[:200]
            )
        else:
            metrics.SEND_SECONDS.observe(time.monotonic() - started)
            await self.outcomes.sent(slot, entry, sent.wa_message_id, attempt, request.to)

    async def _refused(
        self,
        slot: Slot,
        entry: Entry,
        request: m.MessageRequested,
        attempt: int,
        reason: str,
        accepted: bool | None,
        retryable: bool,
        detail: str,
    ) -> None:
        if accepted is None:
            await self.outcomes.fail(
                slot, entry, "unknown", attempt=attempt, detail=f"{reason}: {detail}".strip(": ")
            )
            return
        if not retryable:
            final = reason if reason in ("not_on_whatsapp", "banned") else "rejected"
            await self.outcomes.fail(
                slot, entry, final, attempt=attempt, detail=f"{reason}: {detail}".strip(": ")
            )
            return
        if attempt >= request.retry.max_attempts:
            final = "banned" if reason == "banned" else "transient_exhausted"
            await self.outcomes.fail(
                slot, entry, final, attempt=attempt, retryable=True, detail=reason
            )
            return
        now = self.clock.now()
        retry = m.MessageRetryScheduled(
            tenant_id=slot.lane.tenant_id,
            occurred_at=now,
            device_id=slot.lane.device_id,
            message_id=entry.message_id,
            attempt=attempt + 1,
            not_before=now + timedelta(seconds=retry_delay(request.retry, attempt + 1)),
            reason=reason,
            detail=detail,
        )
        await self.lanes.append(slot, [retry])
        metrics.SENDS.labels("retry", reason).inc()
        self.lanes.wake(slot.lane.device_id, retry.not_before)

    async def request(self, entry: Entry) -> m.MessageRequested | None:
        """The send request behind a lane entry (None when it was purged)."""
        try:
            raw = await self.store.js.get_msg(
                MESSAGES.name(self.store.topology), seq=entry.request_seq, direct=True
            )
        except NotFoundError:
            return None
        event = self._decoder.decode(raw.data or b"")
        if not isinstance(event, m.MessageRequested) or event.message_id != entry.message_id:
            return None
        return event
