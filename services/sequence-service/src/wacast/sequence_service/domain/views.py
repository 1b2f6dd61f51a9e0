"""What the service knows of things it does not own: leads, devices, tenants.

Folds of other services' events into small views (kept in the private tables), so that a
decision needs no call to their owners. A lead's view holds what rendering a step needs
(phone, name, attributes) and is dropped when the lead is erased.
"""

from __future__ import annotations

import msgspec

from wacast.contracts.base import Event
from wacast.contracts.devices import (
    DeviceBanned,
    DeviceConnected,
    DeviceDeleted,
    DeviceDeleteRequested,
    DeviceDisconnected,
    DeviceLoggedOut,
    DeviceRegistered,
)
from wacast.contracts.leads import (
    LeadCreated,
    LeadDeleted,
    LeadDeviceAssigned,
    LeadOptedIn,
    LeadOptedOut,
    LeadStatusChanged,
    LeadTagsChanged,
    LeadUpdated,
)
from wacast.contracts.values import Audience, LeadStatus


class LeadView(msgspec.Struct, frozen=True, kw_only=True):
    tenant_id: str
    lead_id: str
    device_id: str = ""
    status: LeadStatus = "prospect"
    tags: list[str] = msgspec.field(default_factory=list)
    opted_out: bool = False
    deleted: bool = False
    phone: str = ""
    name: str = ""
    attributes: dict[str, str] = msgspec.field(default_factory=dict)

    @property
    def reachable(self) -> bool:
        return not (self.opted_out or self.deleted)

    def matches(self, audience: Audience) -> bool:
        if not self.reachable:
            return False
        if audience.status != "all" and audience.status != self.status:
            return False
        if audience.device_ids and self.device_id not in audience.device_ids:
            return False
        if not audience.tags:
            return True
        wanted = set(audience.tags)
        have = wanted & set(self.tags)
        return bool(have) if audience.tag_match == "any" else have == wanted


def evolve_lead(view: LeadView | None, event: Event) -> LeadView | None:
    """The lead's view after `event`; LeadErased is handled by dropping the view."""
    replace = msgspec.structs.replace
    if isinstance(event, LeadCreated):
        return LeadView(
            tenant_id=event.tenant_id,
            lead_id=event.lead_id,
            device_id=event.device_id,
            status=event.status,
            tags=list(event.tags),
            phone=event.phone,
            name=event.name,
            attributes=dict(event.attributes),
        )
    if view is None:
        return None
    if isinstance(event, LeadUpdated):
        return replace(
            view,
            phone=view.phone if event.phone is None else event.phone,
            name=view.name if event.name is None else event.name,
            attributes=view.attributes if event.attributes is None else dict(event.attributes),
        )
    if isinstance(event, LeadStatusChanged):
        return replace(view, status=event.status)
    if isinstance(event, LeadTagsChanged):
        return replace(view, tags=list(event.tags))
    if isinstance(event, LeadDeviceAssigned):
        return replace(view, device_id=event.device_id)
    if isinstance(event, LeadOptedOut | LeadOptedIn):
        return replace(view, opted_out=isinstance(event, LeadOptedOut))
    if isinstance(event, LeadDeleted):
        return replace(view, deleted=True)
    return view


class DeviceView(msgspec.Struct, frozen=True, kw_only=True):
    online: bool = False
    deleted: bool = False


def evolve_device(view: DeviceView | None, event: Event) -> DeviceView | None:
    current = view or DeviceView()
    if isinstance(event, DeviceRegistered):
        return current
    if isinstance(event, DeviceConnected):
        return msgspec.structs.replace(current, online=not current.deleted)
    if isinstance(event, DeviceDisconnected | DeviceLoggedOut | DeviceBanned):
        return msgspec.structs.replace(current, online=False)
    if isinstance(event, DeviceDeleteRequested | DeviceDeleted):
        return DeviceView(online=False, deleted=True)
    return view
