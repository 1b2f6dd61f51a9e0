"""Completion follows from message outcomes: completed, then finished after the receipt window.

The outcomes projection counts each campaign message's final outcome once (sent, failed
or cancelled) and whether the fan-out is done; when every requested message has one, the
campaign is `CampaignCompleted`. Receipts (delivered, read) keep counting for
`receipt_window_seconds`; then `CampaignFinished` records the final counts. The loop wakes
when the projections move and at least every `completion_check_seconds`; the window is
waited with the clock (`sleep_until`), so a test moves it. Each decision is appended with
the campaign's expected sequence: replicas that decide it together append it once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

from wacast.campaign_service.adapters import outcomes
from wacast.campaign_service.campaigns import CampaignCommands
from wacast.campaign_service.context import Deps
from wacast.campaign_service.jobs import Signal, first_of
from wacast.runtime.projection import stop_if_cancelled

log = logging.getLogger("wacast.campaigns.completion")


class Completion:
    def __init__(self, deps: Deps, campaigns: CampaignCommands, *signals: Signal) -> None:
        self.deps = deps
        self.campaigns = campaigns
        self.wakes = [signal.subscribe() for signal in signals]

    async def run(self) -> None:
        window = timedelta(seconds=self.deps.settings.receipt_window_seconds)
        while True:
            stop_if_cancelled()
            for wake in self.wakes:
                wake.clear()
            await self.tick()
            next_finish = await self.deps.reads.next_finish(window)
            waits: list[Awaitable[Any]] = [w.wait() for w in self.wakes]
            waits.append(asyncio.sleep(self.deps.settings.completion_check_seconds))
            if next_finish is not None:
                waits.append(self.deps.clock.sleep_until(next_finish))
            await first_of(*waits)

    async def tick(self) -> None:
        reads = self.deps.reads
        for tenant_id, campaign_id, requested, skipped in await reads.completable():
            log.info("campaign %s completed: %d requested", campaign_id, requested)
            await self.campaigns.complete(tenant_id, campaign_id, requested, skipped)
        window = timedelta(seconds=self.deps.settings.receipt_window_seconds)
        now = self.deps.clock.now()
        if not await reads.finishable(now, window):
            return
        # Every receipt stored before the window closed counts: let the counters catch up.
        await reads.caught_up("MESSAGES", projection=outcomes.NAME)
        for tenant_id, campaign_id, counts in await reads.finishable(now, window):
            log.info("campaign %s finished", campaign_id)
            await self.campaigns.finish(tenant_id, campaign_id, counts)
