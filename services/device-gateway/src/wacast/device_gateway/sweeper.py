"""The sweeper: every few seconds, what must not wait any longer leaves the lanes.

- handed to the driver without an outcome longer than the stuck timeout (counted from the
  hand-off, so long paced lanes are not failed): failed(timeout), never resent;
- pending on a device offline longer than the offline timeout: cancelled(device_offline);
- past its `not_after`: cancelled(expired);
- waiting on a deleted device: cancelled(device_deleted);
- of a withdrawn campaign, enrollment or lead: cancelled with the withdrawal's reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from wacast.contracts.subjects import partition_of
from wacast.device_gateway import metrics
from wacast.device_gateway.controls import Controls
from wacast.device_gateway.directory import Directory
from wacast.device_gateway.domain.lane import Entry
from wacast.device_gateway.lanes import Fenced, Lanes, Slot, Stopped
from wacast.device_gateway.outcomes import Outcomes
from wacast.device_gateway.settings import Settings
from wacast.runtime.clock import Clock

log = logging.getLogger(__name__)


class Sweeper:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        lanes: Lanes,
        directory: Directory,
        controls: Controls,
        outcomes: Outcomes,
        offline_since: Callable[[str], datetime | None],
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.lanes = lanes
        self.directory = directory
        self.controls = controls
        self.outcomes = outcomes
        self.offline_since = offline_since

    async def run(self) -> None:
        while True:
            await self.clock.sleep_until(
                self.clock.now() + timedelta(seconds=self.settings.sweep_interval_seconds)
            )
            await self.sweep()

    async def sweep(self) -> None:
        now = self.clock.now()
        for slot in list(self.lanes.slots.values()):
            if slot.stopped:
                continue
            try:
                await self.sweep_lane(slot, now)
            except Fenced:
                self.lanes.on_fenced(partition_of(slot.lane.device_id))
            except Stopped:
                continue
            except Exception:
                log.exception("sweeping the lane of %s failed", slot.lane.device_id)
        pending, busy = self.lanes.depth()
        metrics.QUEUE_DEPTH.set(pending)
        metrics.LANES_BUSY.set(busy)

    async def sweep_lane(self, slot: Slot, now: datetime) -> None:
        lane = slot.lane
        flight = lane.flight
        if flight is not None and _older(
            now, flight.handed_at, self.settings.stuck_timeout_seconds
        ):
            if slot.task is not None and not slot.task.done():
                slot.task.cancel()
            await self.outcomes.fail(
                slot, flight.entry, "timeout", attempt=flight.attempt, detail="stuck"
            )
            self.lanes.wake(lane.device_id)
        if not lane.pending:
            return
        state = self.directory.state(lane.device_id)
        if state is None or state.gone:
            await self.lanes.cancel(slot, list(lane.pending.values()), "device_deleted")
            return
        by_reason: dict[str, list[Entry]] = {}
        offline = self.offline_since(lane.device_id)
        limit = self.settings.offline_timeout_seconds
        for entry in lane.pending.values():
            reason = self.controls.withdrawal(lane.tenant_id, entry)
            if reason is None and entry.not_after is not None and now >= entry.not_after:
                reason = "expired"
            if (
                reason is None
                and offline is not None
                and _older(now, max(offline, entry.accepted_at), limit)
            ):
                reason = "device_offline"
            if reason is not None:
                by_reason.setdefault(reason, []).append(entry)
        for reason, entries in by_reason.items():
            await self.lanes.cancel(slot, entries, reason)


def _older(now: datetime, since: datetime, seconds: float) -> bool:
    return (now - since).total_seconds() >= seconds
