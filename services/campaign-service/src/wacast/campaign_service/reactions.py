"""What the service does when other aggregates change (durable consumers, at least once).

- A device deleted (`DeviceDeleteRequested`, then `DeviceDeleted`) deletes its leads:
  `LeadDeleted(reason="device_deleted")` and the release of each phone claim, in atomic
  batches, each lead appended with the sequence the private table last saw for it (after
  the table caught up with the LEADS stream). Repeating it finds no leads left.
- A campaign paused, resumed, cancelled or failed sets the send control of its waiting
  messages in the gateway's lanes: `SendsHeld`, `SendsReleased`, `SendsWithdrawn`. It is
  level-triggered: the campaign's current status decides, compared with the last control
  on its `sendctl` subject, so a redelivered or late event changes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal, TypedDict

from wacast.campaign_service.adapters import private
from wacast.campaign_service.context import Deps
from wacast.campaign_service.leads import release_item
from wacast.contracts import campaigns as c
from wacast.contracts import devices as d
from wacast.contracts import messages as m
from wacast.contracts.ids import phone_key
from wacast.contracts.leads import LeadDeleted
from wacast.contracts.streams import MESSAGES
from wacast.runtime.eventstore import Append, Conflict, retry_on_conflict
from wacast.runtime.projection import Envelope

log = logging.getLogger("wacast.campaigns.reactions")
PAGE = 400


class DeviceCascade:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def handle(self, envelope: Envelope) -> None:
        event = envelope.event
        if isinstance(event, d.DeviceDeleteRequested | d.DeviceDeleted):
            deleted = await self.delete_leads(event.tenant_id, event.device_id)
            if deleted:
                log.info("deleted %d leads of device %s", deleted, event.device_id)

    async def delete_leads(self, tenant_id: str, device_id: str) -> int:
        deleted = 0
        for _ in range(10_000):
            await self.deps.reads.caught_up("LEADS")
            page = await self.deps.reads.leads_of_device(tenant_id, device_id, PAGE)
            if not page:
                return deleted
            releases: list[Append] = []
            deletions: list[Append] = []
            now = self.deps.clock.now()
            claims = await self.deps.claims(
                tenant_id, [phone_key(tenant_id, p) for _, _, p in page]
            )
            for lead_id, seq, phone in page:
                event = LeadDeleted(
                    tenant_id=tenant_id, occurred_at=now, lead_id=lead_id, reason="device_deleted"
                )
                subject = event.subject(self.deps.topology)
                deletions.append(Append(subject, event, f"{lead_id}.{seq}.device_deleted", seq))
                claim = claims[phone_key(tenant_id, phone)]
                if claim.lead_id == lead_id:
                    releases.append(release_item(self.deps, tenant_id, claim))
            items = releases + deletions  # a lead event last: the lead table reaches it
            try:
                done = await self.deps.store.append_batch(items)
            except Conflict:
                continue  # a lead changed meanwhile: read the table again once it caught up
            await self.deps.reads.wait_for(private.NAME, "LEADS", done.seq)
            deleted += len(page)
        raise RuntimeError(f"leads of device {device_id} keep changing")


class _Scope(TypedDict):
    tenant_id: str
    occurred_at: datetime
    scope: Literal["campaign"]
    scope_id: str


class SendControls:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def handle(self, envelope: Envelope) -> None:
        event = envelope.event
        if isinstance(
            event, c.CampaignPaused | c.CampaignResumed | c.CampaignCancelled | c.CampaignFailed
        ):
            await retry_on_conflict(lambda: self.reconcile(event.tenant_id, event.campaign_id))

    async def reconcile(self, tenant_id: str, campaign_id: str) -> None:
        campaign = await self.deps.campaign(tenant_id, campaign_id)
        if not campaign.trigger_id:
            return  # never triggered: nothing of it waits anywhere
        subject = self.deps.topology.send_control(tenant_id, "campaign", campaign_id)
        seq, last = await self.deps.last(MESSAGES, subject)
        if isinstance(last, m.SendsWithdrawn):
            return
        base: _Scope = {
            "tenant_id": tenant_id,
            "occurred_at": self.deps.clock.now(),
            "scope": "campaign",
            "scope_id": campaign_id,
        }
        wanted: m.SendControlEventBase
        if campaign.status == "paused":
            wanted = m.SendsHeld(**base, reason="campaign_paused")
        elif campaign.status in ("cancelled", "failed"):
            wanted = m.SendsWithdrawn(**base, reason=f"campaign_{campaign.status}")
        elif isinstance(last, m.SendsHeld):
            wanted = m.SendsReleased(**base)
        else:
            return
        if type(last) is type(wanted):
            return
        await self.deps.store.append(
            subject, [wanted], msg_id=f"{campaign_id}.ctl.{campaign.seq}", expected=seq
        )
