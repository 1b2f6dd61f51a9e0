"""What people write to the tenant's devices, as `InboundMessageReceived`.

The sender's phone (E.164) names the tenant's lead through the lead's phone claim
(`leadphone.<tenant>.<phone key>`, the same key the campaign service claims with): the
lead whose claim was last `LeadPhoneClaimed`; a released or missing claim is an unknown
contact. The message answers the latest one the device sent that lead (or that phone);
then `MessageReplied` goes on that message's subject in the same atomic batch. The inbound
id is the message id, so a message the network reports twice is stored once.
"""

from __future__ import annotations

import asyncio
import logging

import phonenumbers
from nats.js.errors import NotFoundError

from wacast.contracts import messages as m
from wacast.contracts.ids import inbound_id, phone_key
from wacast.contracts.leads import LeadPhoneClaimed
from wacast.contracts.streams import LEADS, codec
from wacast.device_gateway.directory import Directory
from wacast.device_gateway.drivers.base import Inbound
from wacast.device_gateway.outcomes import TRANSIENT
from wacast.device_gateway.receipts import Receipts
from wacast.runtime.clock import Clock
from wacast.runtime.coalescer import Coalescer
from wacast.runtime.eventstore import Append, DuplicateInBatch

log = logging.getLogger(__name__)

APPEND_PATIENCE_SECONDS = 30.0
"""A busy or restarting bus gets about this long before an inbound message is given up."""

RECOVERY_WAIT_SECONDS = 30.0
"""An inbound message arriving while recent sends are still read back at start-up waits
this long at most for them, so a reply to a send made before the restart is attributed."""


class Inbox:
    def __init__(
        self, appender: Coalescer, clock: Clock, directory: Directory, receipts: Receipts
    ) -> None:
        self.appender = appender
        self.store = appender.store
        self.topology = appender.store.topology
        self.clock = clock
        self.directory = directory
        self.receipts = receipts
        self._claims = codec(LEADS)

    async def received(self, device_id: str, message: Inbound) -> None:
        device = self.directory.state(device_id)
        if device is None or not device.tenant_id:
            log.warning("inbound message for unknown device %s dropped", device_id)
            return
        tenant_id = device.tenant_id
        sender = e164(message.sender)
        key = phone_key(tenant_id, sender)
        lead_id = await self.lead_of(tenant_id, key)
        if not await self.receipts.recovered(device_id, RECOVERY_WAIT_SECONDS):
            log.warning("recent sends of %s not read back yet: attributed without", device_id)
        ref = self.receipts.latest(device_id, lead_id, sender)
        # Recorded on our clock, not the network's: stop-on-reply compares it with when
        # an enrollment started, and a phone's clock (or a test's controlled clock) differs.
        at = self.clock.now()
        iid = inbound_id(device_id, message.wa_message_id)
        event = m.InboundMessageReceived(
            tenant_id=tenant_id,
            occurred_at=at,
            inbound_id=iid,
            device_id=device_id,
            lead_id=lead_id,
            contact_key=key,
            sender=sender,
            text=message.text,
            media_type=message.media_kind,
            wa_message_id=message.wa_message_id,
            in_reply_to=ref.message_id if ref else "",
            origin=ref.origin if ref else None,
            origin_id=ref.origin_id if ref else "",
        )
        items = [Append(event.subject(self.topology), event, iid)]
        if ref is not None:
            reply = m.MessageReplied(
                **ref.fields(), occurred_at=at, text=message.text,
                wa_message_id=message.wa_message_id,
            )  # fmt: skip
            items.append(Append(reply.subject(self.topology), reply, f"reply:{iid}"))
        delay = 0.5
        while True:
            try:
                await self._append(items)
                return
            except TRANSIENT as exc:
                if delay > APPEND_PATIENCE_SECONDS:
                    raise
                log.warning("recording inbound %s failed (%s); retrying", iid, exc)
                await asyncio.sleep(delay)
                delay *= 2

    async def _append(self, items: list[Append]) -> None:
        try:
            await self.appender.append_group(items)
        except DuplicateInBatch:  # reported twice: single appends answer `duplicate`
            for item in items:
                await self.appender.append(item)

    async def lead_of(self, tenant_id: str, key: str) -> str:
        """The lead holding the phone behind `key` ("" when none does)."""
        subject = self.topology.lead_phone(tenant_id, key)
        try:
            msg = await self.store.js.get_last_msg(LEADS.name(self.topology), subject, direct=True)
        except NotFoundError:
            return ""
        claim = self._claims.decode(msg.data or b"")
        return claim.lead_id if isinstance(claim, LeadPhoneClaimed) else ""


def e164(phone: str) -> str:
    """`phone` in E.164 as the campaign service writes leads' phones (left as it is when it
    does not parse: such a sender is no lead's)."""
    try:
        number = phonenumbers.parse(phone if phone.startswith("+") else f"+{phone}", None)
    except phonenumbers.NumberParseException:
        return phone
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
