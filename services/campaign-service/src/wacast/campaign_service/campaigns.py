"""Campaign commands, and the decisions the service takes by itself (scheduled triggers,
failures, completion, finishing).

Every decision loads the campaign, decides with `domain.campaign`, and appends with the
sequence it loaded: a concurrent decision makes it decide again on fresh state. A trigger
reads its facts only after the private projection has every LEADS, DEVICES and CAMPAIGNS
event stored at that moment, so a lead created just before is in the audience; the LEADS
position is recorded in `CampaignTriggered.leads_seq`, where the audience is frozen.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from wacast.campaign_service.adapters.readmodel import NotCaughtUp
from wacast.campaign_service.context import Deps, new_id, ok
from wacast.campaign_service.domain import campaign as rules
from wacast.campaign_service.domain.errors import Refused
from wacast.campaign_service.domain.lead import clean_tags
from wacast.contracts import commands as cmd
from wacast.contracts.base import Event, Problem, Reply
from wacast.contracts.campaigns import CampaignFailed, CampaignScheduled, CampaignTriggered
from wacast.contracts.streams import CAMPAIGNS
from wacast.contracts.values import Audience, MessageCounts
from wacast.runtime.eventstore import Appended, retry_on_conflict

Rule = Callable[[rules.Campaign, datetime], list[Event]]
Started = Callable[[str, str], None]
"""Called with (tenant, campaign) when a campaign starts or resumes sending."""


class CampaignCommands:
    def __init__(self, deps: Deps, started: Started) -> None:
        self.deps = deps
        self.started = started

    async def decide(
        self, tenant_id: str, campaign_id: str, rule: Rule, token: str
    ) -> tuple[rules.Campaign, Appended | None, list[Event]]:
        """Load, decide, append with the loaded sequence; again when someone was first.

        `token` names the decision in the message id, so that only a retry of this very
        decision is deduplicated, never a different one based on the same sequence.
        """

        async def attempt() -> tuple[rules.Campaign, Appended | None, list[Event]]:
            c = await self.deps.campaign(tenant_id, campaign_id)
            events = rule(c, self.deps.clock.now())
            if not events:
                return c, None, []
            subject = self.deps.topology.campaign(tenant_id, campaign_id)
            appended = await self.deps.store.append(
                subject, events, msg_id=f"{campaign_id}.{c.seq}.{token}", expected=c.seq
            )
            return c, appended, events

        return await retry_on_conflict(attempt)

    # commands ------------------------------------------------------------------------
    async def create(self, c: cmd.CreateCampaign) -> Reply:
        t = c.tenant_id
        campaign_id = new_id("c", t, c.idempotency_key, c.campaign_id, "campaign id")
        existing = await self.deps.campaign(t, campaign_id)
        if existing.exists and c.idempotency_key and not c.campaign_id:
            return ok(None, CAMPAIGNS, campaign_id, status=existing.status)
        media_id = c.message.media_id
        audience = Audience(
            status=c.audience.status,
            tags=clean_tags(c.audience.tags),
            tag_match=c.audience.tag_match,
            device_ids=list(dict.fromkeys(c.audience.device_ids)),
        )
        draft = rules.Draft(
            name=c.name,
            audience=audience,
            message=c.message,
            schedule_at=c.schedule_at,
            pacing=c.pacing,
            retry=c.retry,
            send_window=c.send_window,
            media_known=not media_id or await self.deps.media(t, media_id) is not None,
            unknown_devices=await self._unknown_devices(t, audience.device_ids),
        )
        _, appended, _ = await self.decide(
            t, campaign_id, lambda x, now: rules.create(x, draft, now), "created"
        )
        return ok(appended, CAMPAIGNS, campaign_id, status="pending")

    async def _unknown_devices(self, tenant_id: str, device_ids: list[str]) -> list[str]:
        if not device_ids:
            return []
        known = await self.deps.reads.devices(tenant_id)
        if any(d not in known for d in device_ids):
            await self._caught_up("DEVICES")
            known = await self.deps.reads.devices(tenant_id)
        return [d for d in device_ids if d not in known]

    async def schedule(self, c: cmd.ScheduleCampaign) -> Reply:
        token = f"schedule-{c.schedule_at.timestamp() if c.schedule_at.tzinfo else 'naive'}"
        found, appended, _ = await self.decide(
            c.tenant_id,
            c.campaign_id,
            lambda x, now: rules.schedule(x, c.schedule_at, now),
            token,
        )
        return ok(appended, CAMPAIGNS, c.campaign_id, status=found.status)

    async def trigger(self, c: cmd.TriggerCampaign) -> Reply:
        trigger_id = c.idempotency_key or f"api-{uuid.uuid4().hex}"
        return await self._trigger(c.tenant_id, c.campaign_id, trigger_id, "api")

    async def trigger_due(self, tenant_id: str, campaign_id: str) -> Reply:
        """The scheduler's trigger: the same decision, named after the due time, so two
        replicas (or a redelivery) deciding it are one trigger."""
        found = await self.deps.campaign(tenant_id, campaign_id)
        due = found.schedule_at
        if found.status != "pending" or due is None or due > self.deps.clock.now():
            return ok(None, CAMPAIGNS, campaign_id, status=found.status)
        return await self._trigger(
            tenant_id, campaign_id, f"schedule-{due.isoformat()}", "schedule"
        )

    async def _trigger(
        self,
        tenant_id: str,
        campaign_id: str,
        trigger_id: str,
        source: Literal["api", "schedule"],
    ) -> Reply:
        async def rule_with_facts() -> tuple[rules.Campaign, Appended | None, list[Event]]:
            current = await self.deps.campaign(tenant_id, campaign_id)
            facts = await self._facts(current) if current.status == "pending" else None
            return await self.decide(
                tenant_id,
                campaign_id,
                lambda x, now: rules.trigger(x, now, trigger_id, source, facts or _NO_FACTS),
                trigger_id,
            )

        found, appended, events = await rule_with_facts()
        status = events[-1] if events else None
        if isinstance(status, CampaignTriggered):
            self.started(tenant_id, campaign_id)
            return ok(
                appended,
                CAMPAIGNS,
                campaign_id,
                status="triggered",
                audience_size=status.audience_size,
            )
        if isinstance(status, CampaignFailed):
            assert appended is not None
            return Reply(
                ok=False,
                seq=appended.seq,
                stream=CAMPAIGNS.key,
                id=campaign_id,
                data={"status": "failed", "reason": status.reason},
                problem=Problem(
                    code=status.reason,
                    title=_FAILURES[status.reason],
                    status=409,
                    detail=f"campaign {campaign_id} failed",
                ),
            )
        if isinstance(status, CampaignScheduled) or found.queued:
            return ok(appended, CAMPAIGNS, campaign_id, status="pending", queued=True)
        return ok(None, CAMPAIGNS, campaign_id, status=found.status)

    async def _facts(self, c: rules.Campaign) -> rules.TriggerFacts:
        ends = await self._caught_up("LEADS", "DEVICES", "CAMPAIGNS")
        t, media_id = c.tenant_id, c.message.media_id if c.message else ""
        return rules.TriggerFacts(
            leads_seq=ends["LEADS"],
            audience_size=await self.deps.reads.audience_size(t, c.audience, ends["LEADS"]),
            connected_device=await self.deps.reads.any_connected(t, c.audience.device_ids),
            running=await self.deps.reads.running(t),
            limit=self.deps.settings.max_running_campaigns_per_tenant,
            media_ok=not media_id or await self.deps.media(t, media_id) is not None,
        )

    async def _caught_up(self, *streams: str) -> dict[str, int]:
        try:
            return await self.deps.reads.caught_up(*streams)
        except NotCaughtUp as exc:
            raise Refused(
                "not_ready", "The service is catching up; try again", 503, str(exc)
            ) from None

    async def pause(self, c: cmd.PauseCampaign) -> Reply:
        _, appended, _ = await self.decide(
            c.tenant_id, c.campaign_id, lambda x, now: rules.pause(x, now, c.reason), "paused"
        )
        return ok(appended, CAMPAIGNS, c.campaign_id, status="paused")

    async def resume(self, c: cmd.ResumeCampaign) -> Reply:
        _, appended, _ = await self.decide(c.tenant_id, c.campaign_id, rules.resume, "resumed")
        self.started(c.tenant_id, c.campaign_id)
        return ok(appended, CAMPAIGNS, c.campaign_id, status="triggered")

    async def cancel(self, c: cmd.CancelCampaign) -> Reply:
        _, appended, _ = await self.decide(
            c.tenant_id, c.campaign_id, lambda x, now: rules.cancel(x, now, c.reason), "cancelled"
        )
        return ok(appended, CAMPAIGNS, c.campaign_id, status="cancelled")

    # decisions of the service itself ---------------------------------------------------
    async def fail(self, tenant_id: str, campaign_id: str, reason: str, detail: str = "") -> None:
        await self.decide(
            tenant_id, campaign_id, lambda x, now: rules.fail(x, now, reason, detail), "failed"
        )

    async def complete(
        self, tenant_id: str, campaign_id: str, requested: int, skipped: int
    ) -> None:
        await self.decide(
            tenant_id,
            campaign_id,
            lambda x, now: rules.complete(x, now, requested, skipped),
            "completed",
        )

    async def finish(self, tenant_id: str, campaign_id: str, counts: MessageCounts) -> None:
        window = timedelta(seconds=self.deps.settings.receipt_window_seconds)
        await self.decide(
            tenant_id, campaign_id, lambda x, now: rules.finish(x, now, window, counts), "finished"
        )


_NO_FACTS = rules.TriggerFacts(0, 0, False, 0, 1)
"""Never used for a decision: a campaign that is not pending refuses before facts count."""
_FAILURES = {
    "no_connected_device": "No device of the campaign is connected",
    "empty_audience": "No lead matches the campaign's audience",
    "media_missing": "The campaign's media is gone",
}
