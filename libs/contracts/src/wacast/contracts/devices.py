"""Device events: one linked WhatsApp account, owned by the device-gateway.

Subject `device.<tenant>.<device_id>`. QR codes rotate every few seconds and mean nothing
after a minute: they travel on the ephemeral live subject, never as events.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

import msgspec

from wacast.contracts.base import Event
from wacast.contracts.subjects import Topology


class DeviceEventBase(Event, frozen=True, kw_only=True):
    subject_kind: ClassVar[str] = "device"

    device_id: str

    def subject(self, topology: Topology) -> str:
        return topology.device(self.tenant_id, self.device_id)


class DeviceRegistered(DeviceEventBase, frozen=True, kw_only=True):
    """A device slot exists; it sends nothing until paired and connected."""

    name: str
    driver: Literal["sim", "whatsapp"]


class DevicePairingStarted(DeviceEventBase, frozen=True, kw_only=True):
    """Linking began: by QR scan, or by a code typed on the phone with number `phone`."""

    method: Literal["qr", "code"]
    phone: str = ""


class DevicePairingFailed(DeviceEventBase, frozen=True, kw_only=True):
    """Linking ended without a link: `timeout`, `cancelled`, `rejected` or `error`."""

    reason: str
    detail: str = ""


class DevicePaired(DeviceEventBase, frozen=True, kw_only=True):
    """The account is linked: `phone` (E.164) and WhatsApp `jid` of the device itself."""

    phone: str
    jid: str
    push_name: str = ""


class DeviceConnected(DeviceEventBase, frozen=True, kw_only=True):
    """The session is online: its lane may send."""


class DeviceDisconnected(DeviceEventBase, frozen=True, kw_only=True):
    """The session dropped but is still linked; the gateway reconnects by itself.

    `reason`: `network`, `stream_replaced`, `shutdown`, `takeover` (another replica took
    the device's partition) or `error`.
    """

    reason: str


class DeviceLoggedOut(DeviceEventBase, frozen=True, kw_only=True):
    """The link is gone (logged out on the phone, or by us); pairing is needed again.

    `reason`: `remote` (from the phone), `requested`, `deleted` or `session_lost`.
    """

    reason: str


class DeviceBanned(DeviceEventBase, frozen=True, kw_only=True):
    """WhatsApp refused the account: until `until`, or for good when it is None."""

    until: datetime | None = None
    reason: str = ""


class DeviceRenamed(DeviceEventBase, frozen=True, kw_only=True):
    name: str


WARMUP_RAMP: tuple[int, ...] = (20, 40, 80, 150, 250, 400)
"""Daily sends allowed to a device with `warmup` on its first, second, ... local day since
it was first paired; from the day after the ramp on only its daily cap applies."""


class DeviceLimitsChanged(DeviceEventBase, frozen=True, kw_only=True):
    """Sending limits: at most `daily_cap` sends per local day in the tenant's timezone
    (None: the tenant's `device_daily_cap`; 0 sends nothing); `warmup` holds a newly paired
    number to `WARMUP_RAMP` over its first days (the lower of ramp and cap applies)."""

    daily_cap: int | None = None
    warmup: bool = False


class DeviceDeleteRequested(DeviceEventBase, frozen=True, kw_only=True):
    """Deletion is decided: the gateway logs the session out and fails what waits in the
    lane (`device_deleted`); the campaign service deletes the device's leads."""

    reason: str = ""


class DeviceDeleted(DeviceEventBase, frozen=True, kw_only=True):
    """The device is gone for good: session removed, lane closed."""


DeviceEvent = (
    DeviceRegistered
    | DevicePairingStarted
    | DevicePairingFailed
    | DevicePaired
    | DeviceConnected
    | DeviceDisconnected
    | DeviceLoggedOut
    | DeviceBanned
    | DeviceRenamed
    | DeviceLimitsChanged
    | DeviceDeleteRequested
    | DeviceDeleted
)


# -- queries ---------------------------------------------------------------------------

DEVICE_QR_QUERY = "device.qr"
"""Query name (`Topology.query`) answered by the replica that serves the device."""


class DeviceQrQuery(msgspec.Struct, frozen=True, kw_only=True):
    """The current linking prompt of a device that is pairing."""

    tenant_id: str
    device_id: str


class DeviceQr(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="device.qr"):
    """A device's latest linking prompt: the content of a QR to scan (`method` "qr", also
    rendered as a PNG in base64 and as SVG) or the 8-character code to type on the phone
    (`method` "code"). The answer to `DeviceQrQuery`, and published on the tenant's live
    subject at each rotation. Never stored: it means nothing a minute later."""

    tenant_id: str
    device_id: str
    method: Literal["qr", "code"]
    code: str
    at: datetime
    png_base64: str = ""
    svg: str = ""
