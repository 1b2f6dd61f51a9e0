"""Lead rules: phones in E.164, clean tags and attributes, what each change emits.

A lead's state is folded from its own subject's events. One lead per tenant and phone is
kept by a separate claim subject (`Claim`), appended with the expected sequence that this
module's callers read: a phone is free when its claim subject is empty or released.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TypedDict

from wacast.campaign_service.domain.errors import Refused, invalid, not_found
from wacast.contracts.base import Event
from wacast.contracts.leads import (
    LeadCreated,
    LeadDeleted,
    LeadDeviceAssigned,
    LeadErased,
    LeadOptedIn,
    LeadOptedOut,
    LeadPhoneClaimed,
    LeadStatusChanged,
    LeadTagsChanged,
    LeadUpdated,
)
from wacast.contracts.values import LeadStatus

MAX_TAG = 64
MAX_VALUE = 1000
ATTRIBUTE_KEY = re.compile(r"[A-Za-z0-9_\- ]{1,64}")
"""Keys a template can name (`{attributes.<key>}`)."""


@dataclass(frozen=True, slots=True)
class Lead:
    tenant_id: str
    lead_id: str
    seq: int = 0
    """Last sequence of the lead's subject: what the next append expects (0: none yet)."""
    exists: bool = False
    deleted: bool = False
    erased: bool = False
    phone: str = ""
    name: str = ""
    device_id: str = ""
    status: LeadStatus = "prospect"
    tags: tuple[str, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)
    opted_out: bool = False
    opted_in_at: datetime | None = None
    """When it last opted in again: an opt-out keyword written before then does not count."""


def evolve(lead: Lead, event: Event, seq: int) -> Lead:
    lead = replace(lead, seq=seq)
    match event:
        case LeadCreated():
            return replace(
                lead,
                exists=True,
                phone=event.phone,
                name=event.name,
                device_id=event.device_id,
                status=event.status,
                tags=tuple(event.tags),
                attributes=dict(event.attributes),
            )
        case LeadUpdated():
            return replace(
                lead,
                phone=lead.phone if event.phone is None else event.phone,
                name=lead.name if event.name is None else event.name,
                attributes=lead.attributes if event.attributes is None else event.attributes,
            )
        case LeadStatusChanged():
            return replace(lead, status=event.status)
        case LeadTagsChanged():
            return replace(lead, tags=tuple(event.tags))
        case LeadDeviceAssigned():
            return replace(lead, device_id=event.device_id)
        case LeadOptedOut():
            return replace(lead, opted_out=True)
        case LeadOptedIn():
            return replace(lead, opted_out=False, opted_in_at=event.occurred_at)
        case LeadDeleted():
            return replace(lead, deleted=True)
        case LeadErased():
            return replace(lead, exists=True, deleted=True, erased=True, phone="", name="")
    return lead


def replay(tenant_id: str, lead_id: str, history: Iterable[tuple[int, Event]]) -> Lead:
    lead = Lead(tenant_id, lead_id)
    for seq, event in history:
        lead = evolve(lead, event, seq)
    return lead


@dataclass(frozen=True, slots=True)
class Claim:
    """Who holds a phone: `lead_id` ("" when free) as of the claim subject's `seq`."""

    phone_key: str
    seq: int = 0
    lead_id: str = ""


def claim_of(phone_key: str, last: Event | None, seq: int) -> Claim:
    if isinstance(last, LeadPhoneClaimed):
        return Claim(phone_key, seq, last.lead_id)
    return Claim(phone_key, seq)


def clean_tags(tags: Iterable[str]) -> list[str]:
    """Stripped, without repeats, in the order given."""
    seen: list[str] = []
    for raw in tags:
        tag = raw.strip()
        if not tag:
            continue
        if len(tag) > MAX_TAG:
            raise invalid("invalid_tag", "A tag is too long", f"tags are at most {MAX_TAG} chars")
        if tag not in seen:
            seen.append(tag)
    return seen


def clean_attributes(attributes: Mapping[str, str]) -> dict[str, str]:
    cleaned: dict[str, str] = {}
    for raw_key, value in attributes.items():
        key = raw_key.strip()
        if not ATTRIBUTE_KEY.fullmatch(key):
            raise invalid(
                "invalid_attribute",
                "An attribute name is not usable",
                f"attribute names are 1-64 of A-Z, a-z, 0-9, _, - or space; got {key!r}",
            )
        if len(value) > MAX_VALUE:
            raise invalid(
                "invalid_attribute", "An attribute is too long", f"{key} exceeds {MAX_VALUE} chars"
            )
        cleaned[key] = value
    return cleaned


@dataclass(frozen=True, slots=True)
class Contact:
    """A lead's details as a create or an import row gives them (phone already E.164)."""

    phone: str
    name: str = ""
    device_id: str = ""
    status: LeadStatus = "prospect"
    tags: Sequence[str] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)


class _Ids(TypedDict):
    tenant_id: str
    occurred_at: datetime
    lead_id: str


def _base(lead: Lead, now: datetime) -> _Ids:
    return {"tenant_id": lead.tenant_id, "occurred_at": now, "lead_id": lead.lead_id}


def create(
    tenant_id: str, lead_id: str, contact: Contact, now: datetime, import_id: str = ""
) -> LeadCreated:
    return LeadCreated(
        tenant_id=tenant_id,
        occurred_at=now,
        lead_id=lead_id,
        phone=contact.phone,
        name=contact.name.strip(),
        device_id=contact.device_id,
        status=contact.status,
        tags=list(contact.tags),
        attributes=dict(contact.attributes),
        import_id=import_id,
    )


def require_live(lead: Lead) -> None:
    if not lead.exists:
        raise not_found("lead", lead.lead_id)
    if lead.deleted:
        raise Refused("lead_deleted", "The lead is deleted", 409, f"lead {lead.lead_id}")


def update(
    lead: Lead,
    now: datetime,
    *,
    phone: str | None = None,
    name: str | None = None,
    attributes: Mapping[str, str] | None = None,
    status: LeadStatus | None = None,
    tags: Sequence[str] | None = None,
    device_id: str | None = None,
) -> list[Event]:
    """What changes; nothing when every given value is the current one."""
    require_live(lead)
    base = _base(lead, now)
    events: list[Event] = []
    new_phone = phone if phone is not None and phone != lead.phone else None
    new_name = name.strip() if name is not None and name.strip() != lead.name else None
    new_attributes = (
        dict(attributes) if attributes is not None and dict(attributes) != lead.attributes else None
    )
    if (new_phone, new_name, new_attributes) != (None, None, None):
        events.append(
            LeadUpdated(**base, phone=new_phone, name=new_name, attributes=new_attributes)
        )
    if status is not None and status != lead.status:
        events.append(LeadStatusChanged(**base, status=status, previous_status=lead.status))
    if tags is not None and list(tags) != list(lead.tags):
        added = [t for t in tags if t not in lead.tags]
        removed = [t for t in lead.tags if t not in tags]
        events.append(LeadTagsChanged(**base, tags=list(tags), added=added, removed=removed))
    if device_id is not None and device_id != lead.device_id:
        events.append(
            LeadDeviceAssigned(**base, device_id=device_id, previous_device_id=lead.device_id)
        )
    return events


def retag(lead: Lead, now: datetime, add: Sequence[str], remove: Sequence[str]) -> list[Event]:
    tags = [t for t in lead.tags if t not in remove] + [
        t for t in add if t not in lead.tags and t not in remove
    ]
    return update(lead, now, tags=tags)


def opt_out(lead: Lead, now: datetime, reason: str) -> list[Event]:
    require_live(lead)
    if lead.opted_out:
        return []
    return [
        LeadOptedOut(tenant_id=lead.tenant_id, occurred_at=now, lead_id=lead.lead_id, reason=reason)
    ]


def opt_out_by_keyword(
    lead: Lead, now: datetime, keyword: str, written_at: datetime
) -> list[Event]:
    """The lead wrote an opt-out keyword at `written_at`. Nothing for a lead that is gone or
    opted out already, nor for a message written before its latest opt-in: only an explicit
    opt-in brings a lead back, and an old message delivered again must not undo it."""
    if not lead.exists or lead.deleted or lead.opted_out:
        return []
    if lead.opted_in_at is not None and written_at <= lead.opted_in_at:
        return []
    return [
        LeadOptedOut(
            tenant_id=lead.tenant_id,
            occurred_at=now,
            lead_id=lead.lead_id,
            reason=keyword,
            source="keyword",
        )
    ]


def opt_in(lead: Lead, now: datetime) -> list[Event]:
    require_live(lead)
    if not lead.opted_out:
        return []
    return [LeadOptedIn(**_base(lead, now))]


def delete(lead: Lead, now: datetime, reason: str = "requested") -> list[Event]:
    """Nothing when it is deleted already: deleting is idempotent."""
    if not lead.exists:
        raise not_found("lead", lead.lead_id)
    if lead.deleted:
        return []
    return [LeadDeleted(**_base(lead, now), reason=reason)]
