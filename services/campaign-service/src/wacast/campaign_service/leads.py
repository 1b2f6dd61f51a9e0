"""Lead commands: create, update, tag, opt out and in, delete, erase.

A new lead's phone claim and its `LeadCreated` go in one atomic batch (both live in the
LEADS stream), each with expected sequence 0 (or the released claim's sequence): two
creations of one phone race, one wins, the other is told who has the phone. A claim left
without its lead (a crash between decisions cannot do that, but an erasure can) is reused
by the next lead with that phone.

Opting out (by the API, or by writing an opt-out keyword: `keywords.py`) and deleting also
withdraw what waits in the gateway's lanes for the lead (`SendsWithdrawn`, scope lead);
opting in again releases the scope. The control follows the lead's state, compared with the
last control on the lead's `sendctl` subject, so a decision whose control was lost in a
crash gets it with the next try.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal, TypedDict

from wacast.campaign_service.adapters import deadletters
from wacast.campaign_service.adapters.readmodel import NotCaughtUp
from wacast.campaign_service.context import Deps, new_id, ok, subject_items
from wacast.campaign_service.domain import lead as rules
from wacast.campaign_service.domain.errors import Refused, invalid, not_found
from wacast.campaign_service.domain.phone import InvalidPhone, normalize_phone
from wacast.contracts import commands as cmd
from wacast.contracts.base import Event, Reply
from wacast.contracts.ids import campaign_message_id, phone_key
from wacast.contracts.leads import (
    LeadCreated,
    LeadErased,
    LeadPhoneClaimed,
    LeadPhoneReleased,
    LeadUpdated,
)
from wacast.contracts.messages import SendControlEventBase, SendsReleased, SendsWithdrawn
from wacast.contracts.streams import LEADS, MESSAGES
from wacast.runtime.eventstore import MAX_BATCH, Append, retry_on_conflict

Rule = Callable[[rules.Lead, datetime], list[Event]]


class LeadCommands:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def phone(self, tenant_id: str, raw: str) -> str:
        try:
            return normalize_phone(raw, await self.deps.region(tenant_id))
        except InvalidPhone as exc:
            raise invalid("invalid_phone", "The phone number is not valid", str(exc)) from None

    async def device(self, tenant_id: str, device_id: str) -> str:
        """`device_id` checked to be the tenant's, or the least loaded device ("" if none)."""
        devices = await self.deps.reads.devices(tenant_id)
        if not device_id or device_id not in devices:
            # Shares and new devices as of now, once the tables caught up; a big import
            # holding the lead table back only makes the share less exact.
            with contextlib.suppress(NotCaughtUp):
                await self.deps.reads.caught_up("DEVICES", "LEADS", timeout=1.0)
            devices = await self.deps.reads.devices(tenant_id)
        if not device_id:
            return min(devices, key=lambda d: (devices[d], d)) if devices else ""
        if device_id not in devices:
            raise invalid("unknown_device", "The tenant has no such device", device_id)
        return device_id

    # create and update -------------------------------------------------------------------
    async def create(self, c: cmd.CreateLead) -> Reply:
        t = c.tenant_id
        contact = rules.Contact(
            phone=await self.phone(t, c.phone),
            name=c.name,
            device_id=await self.device(t, c.device_id),
            status=c.status,
            tags=rules.clean_tags(c.tags),
            attributes=rules.clean_attributes(c.attributes),
        )
        lead_id = new_id("l", t, c.idempotency_key, c.lead_id, "lead id")

        async def attempt() -> Reply:
            claim = await self.deps.claim(t, phone_key(t, contact.phone))
            target = lead_id
            if claim.lead_id:
                holder = await self.deps.lead(t, claim.lead_id)
                if holder.exists and not holder.erased:
                    if claim.lead_id == lead_id:
                        return ok(None, LEADS, lead_id, phone=contact.phone, existing=True)
                    raise Refused(
                        "lead_exists", "A lead has this phone already", 409, lead_id=claim.lead_id
                    )
                target = claim.lead_id
            elif (await self.deps.lead(t, lead_id)).exists:
                raise Refused("lead_id_taken", "A lead has this id already", 409, lead_id)
            created = rules.create(t, target, contact, self.deps.clock.now())
            items = [] if claim.lead_id else [self._claim(t, claim, target)]
            items.append(Append(created.subject(self.deps.topology), created, f"{target}.0", 0))
            done = await self.deps.store.append_batch(items)
            return ok(done, LEADS, target, phone=contact.phone, device_id=contact.device_id)

        return await retry_on_conflict(attempt)

    def _claim(self, tenant_id: str, claim: rules.Claim, lead_id: str) -> Append:
        return claim_item(self.deps, tenant_id, claim, lead_id)

    def _release(self, tenant_id: str, claim: rules.Claim) -> Append:
        return release_item(self.deps, tenant_id, claim)

    async def update(self, c: cmd.UpdateLead) -> Reply:
        t = c.tenant_id
        phone = None if c.phone is None else await self.phone(t, c.phone)
        device = c.device_id and await self.device(t, c.device_id)
        tags = None if c.tags is None else rules.clean_tags(c.tags)
        attributes = None if c.attributes is None else rules.clean_attributes(c.attributes)

        async def attempt() -> Reply:
            lead = await self.deps.lead(t, c.lead_id)
            events = rules.update(
                lead,
                self.deps.clock.now(),
                phone=phone,
                name=c.name,
                attributes=attributes,
                status=c.status,
                tags=tags,
                device_id=device,
            )
            items = await self._phone_move(lead, phone) if phone and phone != lead.phone else []
            return await self._append(lead, events, items)

        return await retry_on_conflict(attempt)

    async def _phone_move(self, lead: rules.Lead, phone: str) -> list[Append]:
        t = lead.tenant_id
        new = await self.deps.claim(t, phone_key(t, phone))
        if new.lead_id and new.lead_id != lead.lead_id:
            holder = await self.deps.lead(t, new.lead_id)
            if holder.exists and not holder.deleted:
                raise Refused(
                    "lead_exists", "A lead has this phone already", 409, lead_id=new.lead_id
                )
            new = rules.Claim(new.phone_key, new.seq)  # an orphan claim: take it over
        items = [] if new.lead_id == lead.lead_id else [self._claim(t, new, lead.lead_id)]
        old = await self.deps.claim(t, phone_key(t, lead.phone))
        if old.lead_id == lead.lead_id:
            items.append(self._release(t, old))
        return items

    async def _append(
        self, lead: rules.Lead, events: Sequence[Event], extra: Sequence[Append] = ()
    ) -> Reply:
        if not events:
            return ok(None, LEADS, lead.lead_id, changed=False)
        subject = self.deps.topology.lead(lead.tenant_id, lead.lead_id)
        items = [*extra, *subject_items(subject, events, lead.seq, f"{lead.lead_id}.{lead.seq}")]
        return ok(await self.deps.store.append_batch(items), LEADS, lead.lead_id, changed=True)

    # tags, consent, deletion ---------------------------------------------------------------
    async def tag(self, c: cmd.TagLeads) -> Reply:
        add, remove = rules.clean_tags(c.add), rules.clean_tags(c.remove)
        if not c.lead_ids or len(c.lead_ids) > MAX_BATCH:
            raise invalid("invalid_lead_ids", "Name 1 to 1000 leads", f"got {len(c.lead_ids)}")

        async def attempt() -> Reply:
            leads = await asyncio.gather(*(self.deps.lead(c.tenant_id, i) for i in c.lead_ids))
            unknown = [x.lead_id for x in leads if not x.exists or x.deleted]
            if unknown:
                raise not_found("lead", ", ".join(unknown[:20]))
            now = self.deps.clock.now()
            items: list[Append] = []
            for lead in leads:
                subject = self.deps.topology.lead(lead.tenant_id, lead.lead_id)
                events = rules.retag(lead, now, add, remove)
                items += subject_items(subject, events, lead.seq, f"{lead.lead_id}.{lead.seq}")
            if not items:
                return ok(None, LEADS, "", changed=0)
            return ok(await self.deps.store.append_batch(items), LEADS, "", changed=len(items))

        return await retry_on_conflict(attempt)

    async def opt_out(self, c: cmd.OptOutLead) -> Reply:
        reply = await self._decide(
            c.tenant_id, c.lead_id, lambda x, now: rules.opt_out(x, now, c.reason)
        )
        await self.control_sends(c.tenant_id, c.lead_id)
        return reply

    async def opt_out_by_keyword(
        self, tenant_id: str, lead_id: str, keyword: str, written_at: datetime
    ) -> Reply:
        """The lead wrote `keyword` at `written_at`: the same path as the API's opt-out."""
        reply = await self._decide(
            tenant_id,
            lead_id,
            lambda x, now: rules.opt_out_by_keyword(x, now, keyword, written_at),
        )
        await self.control_sends(tenant_id, lead_id)
        return reply

    async def opt_in(self, c: cmd.OptInLead) -> Reply:
        reply = await self._decide(c.tenant_id, c.lead_id, rules.opt_in)
        await self.control_sends(c.tenant_id, c.lead_id)
        return reply

    async def delete(self, c: cmd.DeleteLead) -> Reply:
        async def attempt() -> Reply:
            lead = await self.deps.lead(c.tenant_id, c.lead_id)
            events = rules.delete(lead, self.deps.clock.now())
            claim = await self.deps.claim(c.tenant_id, phone_key(c.tenant_id, lead.phone))
            release = [self._release(c.tenant_id, claim)] if claim.lead_id == lead.lead_id else []
            return await self._append(lead, events, release if events else [])

        reply = await retry_on_conflict(attempt)
        await self.control_sends(c.tenant_id, c.lead_id)
        return reply

    async def erase(self, c: cmd.EraseLead) -> Reply:
        """Delete, leave a bare `LeadErased`, then purge the lead's personal data: the claims
        and inbound conversations of every phone it had, its inbound conversation, its
        campaign messages, dead letters that name it, and last its subject's earlier events
        (which name its phones, so a retry after a crash half-way still finds them)."""
        t, lead_id = c.tenant_id, c.lead_id
        history = await self.deps.store.load(LEADS, self.deps.topology.lead(t, lead_id))
        lead = rules.replay(t, lead_id, ((s.seq, s.event) for s in history))
        if not lead.exists:
            raise not_found("lead", lead_id)
        phones = {
            s.event.phone
            for s in history
            if isinstance(s.event, LeadCreated | LeadUpdated) and s.event.phone
        }
        done = None
        if not lead.erased:
            await self.delete(cmd.DeleteLead(tenant_id=t, lead_id=lead_id))
            lead = await self.deps.lead(t, lead_id)
            erased = LeadErased(tenant_id=t, occurred_at=self.deps.clock.now(), lead_id=lead_id)
            done = await self.deps.store.append(
                erased.subject(self.deps.topology),
                [erased],
                msg_id=f"{lead_id}.erased",
                expected=lead.seq,
            )
        await self._purge(t, lead_id, phones)
        return ok(done, LEADS, lead_id, erased=True)

    async def _purge(self, tenant_id: str, lead_id: str, phones: set[str]) -> None:
        js, topology = self.deps.store.js, self.deps.topology
        leads, messages = LEADS.name(topology), MESSAGES.name(topology)
        tokens = {lead_id}
        for phone in sorted(phones):
            claim = await self.deps.claim(tenant_id, phone_key(tenant_id, phone))
            keep = 0 if claim.lead_id in ("", lead_id) else 1  # 1: another lead holds it now
            subject = topology.lead_phone(tenant_id, claim.phone_key)
            await js.purge_stream(leads, subject=subject, keep=keep or None)
            await js.purge_stream(messages, subject=topology.inbound(tenant_id, claim.phone_key))
            tokens.add(claim.phone_key)
        await js.purge_stream(messages, subject=topology.inbound(tenant_id, lead_id))
        for campaign_id in await self.deps.reads.campaign_ids(tenant_id):
            message_id = campaign_message_id(campaign_id, lead_id)
            for pattern in (
                f"{topology.prefix}.sendreq.*.{tenant_id}.*.{message_id}",
                topology.message(tenant_id, message_id),
            ):
                await js.purge_stream(messages, subject=pattern)
            tokens.add(message_id)
        await deadletters.forget(
            js, topology, deadletters.naming(tenant_id, tokens, phones, lead_id)
        )
        await js.purge_stream(leads, subject=topology.lead(tenant_id, lead_id), keep=1)

    async def _decide(self, tenant_id: str, lead_id: str, rule: Rule) -> Reply:
        async def attempt() -> Reply:
            lead = await self.deps.lead(tenant_id, lead_id)
            return await self._append(lead, rule(lead, self.deps.clock.now()))

        return await retry_on_conflict(attempt)

    async def control_sends(self, tenant_id: str, lead_id: str) -> None:
        """What waits in lanes for the lead follows its state: withdrawn while it is opted out
        or deleted, released once it opted in again. Nothing when the last control says so
        already, so calling it again (a retried command, a redelivered keyword) adds nothing."""

        async def attempt() -> None:
            lead = await self.deps.lead(tenant_id, lead_id)
            if not lead.exists:
                return
            subject = self.deps.topology.send_control(tenant_id, "lead", lead_id)
            seq, last = await self.deps.last(MESSAGES, subject)
            scope: _LeadScope = {
                "tenant_id": tenant_id,
                "occurred_at": self.deps.clock.now(),
                "scope": "lead",
                "scope_id": lead_id,
            }
            wanted: SendControlEventBase
            if lead.deleted or lead.opted_out:
                if isinstance(last, SendsWithdrawn):
                    return
                reason = "lead_deleted" if lead.deleted else "opted_out"
                wanted = SendsWithdrawn(**scope, reason=reason)
            elif isinstance(last, SendsWithdrawn):
                wanted = SendsReleased(**scope)
            else:
                return
            await self.deps.store.append(
                subject, [wanted], msg_id=f"{lead_id}.ctl.{lead.seq}", expected=seq
            )

        await retry_on_conflict(attempt)


class _LeadScope(TypedDict):
    tenant_id: str
    occurred_at: datetime
    scope: Literal["lead"]
    scope_id: str


def claim_item(deps: Deps, tenant_id: str, claim: rules.Claim, lead_id: str) -> Append:
    """`lead_id` takes the phone of `claim` (free, released, or orphaned)."""
    event = LeadPhoneClaimed(
        tenant_id=tenant_id,
        occurred_at=deps.clock.now(),
        phone_key=claim.phone_key,
        lead_id=lead_id,
    )
    subject = event.subject(deps.topology)
    return Append(subject, event, f"{claim.phone_key}.{claim.seq}.{lead_id}", claim.seq)


def release_item(deps: Deps, tenant_id: str, claim: rules.Claim) -> Append:
    event = LeadPhoneReleased(
        tenant_id=tenant_id,
        occurred_at=deps.clock.now(),
        phone_key=claim.phone_key,
        lead_id=claim.lead_id,
    )
    subject = event.subject(deps.topology)
    return Append(subject, event, f"{claim.phone_key}.{claim.seq}.release", claim.seq)
