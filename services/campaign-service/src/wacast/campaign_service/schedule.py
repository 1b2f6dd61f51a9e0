"""Scheduled campaigns trigger by themselves when the clock reaches their `schedule_at`.

Due times are not held anywhere but in the events: the private `campaigns` table (a
projection of CAMPAIGNS) answers which pending campaign is due next, so after a restart the
schedule is simply read again. The wait is `clock.sleep_until`, which the controlled test
clock moves too; new or moved schedules wake it early. A due campaign whose tenant runs
its maximum of campaigns stays pending and is tried again whenever campaigns change. Every
replica runs this loop: the trigger decision is named after the due time and appended with
the campaign's expected sequence, so it happens once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from wacast.campaign_service.campaigns import CampaignCommands
from wacast.campaign_service.context import Deps
from wacast.campaign_service.domain.errors import Refused
from wacast.campaign_service.jobs import Signal, first_of
from wacast.runtime.projection import stop_if_cancelled

log = logging.getLogger("wacast.campaigns.schedule")


class Scheduler:
    def __init__(self, deps: Deps, campaigns: CampaignCommands, changed: Signal) -> None:
        self.deps = deps
        self.campaigns = campaigns
        self.changed = changed.subscribe()

    async def run(self) -> None:
        while True:
            stop_if_cancelled()
            self.changed.clear()
            await self.tick()
            next_due = await self.deps.reads.next_due(self.deps.clock.now())
            waits: list[Awaitable[Any]] = [
                self.changed.wait(),
                asyncio.sleep(self.deps.settings.completion_check_seconds),
            ]
            if next_due is not None:
                waits.append(self.deps.clock.sleep_until(next_due))
            await first_of(*waits)

    async def tick(self) -> None:
        """Trigger every campaign due now (those over their tenant's limit stay pending)."""
        for tenant_id, campaign_id in await self.deps.reads.due(self.deps.clock.now()):
            try:
                await self.campaigns.trigger_due(tenant_id, campaign_id)
            except Refused as exc:
                log.info("scheduled trigger of %s not taken: %s", campaign_id, exc)
