"""The Device aggregate: one linked WhatsApp account, its pairing, session and ban state.

`decide` answers a command from the current state with the events to append, or refuses it
with a `Refused` that maps onto a problem reply. `evolve` folds one event into the state.
`accepts` says whether a fact reported by the network (connected, dropped, banned...)
changes the state at all, so repeated reports append nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

import phonenumbers

from wacast.contracts import devices as ev
from wacast.contracts.commands import (
    CancelPairing,
    DeleteDevice,
    DeviceCommand,
    LogoutDevice,
    RegisterDevice,
    RenameDevice,
    SetDeviceLimits,
    StartPairing,
)

Status = Literal[
    "absent",
    "registered",
    "pairing",
    "paired",
    "connected",
    "disconnected",
    "logged_out",
    "banned",
    "deleting",
    "deleted",
]
LINKED: frozenset[Status] = frozenset({"paired", "connected", "disconnected", "banned"})
"""States that hold a session: the device can come online without pairing again."""


class Refused(Exception):
    """A command the state does not allow; `status` is the HTTP status of its problem."""

    def __init__(self, code: str, title: str, status: int, detail: str = "") -> None:
        super().__init__(f"{code}: {detail or title}")
        self.code = code
        self.title = title
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    tenant_id: str = ""
    status: Status = "absent"
    name: str = ""
    driver: str = ""
    phone: str = ""
    jid: str = ""
    pairing_method: str = ""
    pairing_phone: str = ""
    since: datetime | None = None
    """When the status last changed (event time)."""
    banned_until: datetime | None = None
    daily_cap: int | None = None
    """Its own daily send cap (None: the tenant's default)."""
    warmup: bool = False
    first_paired_at: datetime | None = None
    """When it was first linked: day 0 of the warm-up ramp."""

    @property
    def linked(self) -> bool:
        return self.status in LINKED

    @property
    def gone(self) -> bool:
        return self.status in ("deleting", "deleted")


def evolve(state: Device, event: ev.DeviceEvent) -> Device:
    at = event.occurred_at
    match event:
        case ev.DeviceRegistered():
            return replace(
                state,
                tenant_id=event.tenant_id,
                status="registered",
                name=event.name,
                driver=event.driver,
                since=at,
            )
        case ev.DevicePairingStarted():
            return replace(
                state, status="pairing", pairing_method=event.method, pairing_phone=event.phone,
                since=at,
            )  # fmt: skip
        case ev.DevicePairingFailed():
            back: Status = "logged_out" if state.phone else "registered"
            return replace(state, status=back, pairing_method="", since=at)
        case ev.DevicePaired():
            return replace(
                state, status="paired", phone=event.phone, jid=event.jid, pairing_method="",
                since=at, first_paired_at=state.first_paired_at or at,
            )  # fmt: skip
        case ev.DeviceConnected():
            return replace(state, status="connected", banned_until=None, since=at)
        case ev.DeviceDisconnected():
            return replace(state, status="disconnected", since=at)
        case ev.DeviceLoggedOut():
            return replace(state, status="logged_out", since=at)
        case ev.DeviceBanned():
            return replace(state, status="banned", banned_until=event.until, since=at)
        case ev.DeviceRenamed():
            return replace(state, name=event.name)
        case ev.DeviceLimitsChanged():
            return replace(state, daily_cap=event.daily_cap, warmup=event.warmup)
        case ev.DeviceDeleteRequested():
            return replace(state, status="deleting", since=at)
        case ev.DeviceDeleted():
            return replace(state, status="deleted", since=at)


def fold(state: Device, events: list[ev.DeviceEvent]) -> Device:
    for event in events:
        state = evolve(state, event)
    return state


def decide(state: Device, command: DeviceCommand, now: datetime) -> list[ev.DeviceEvent]:
    """The events `command` leads to, or `Refused`."""
    if isinstance(command, RegisterDevice):
        if state.status != "absent":
            raise Refused("device_exists", "A device with this id exists", 409, state.device_id)
        return [
            ev.DeviceRegistered(
                tenant_id=command.tenant_id,
                occurred_at=now,
                device_id=state.device_id,
                name=_name(command.name),
                driver=command.driver,
            )
        ]
    if isinstance(command, DeleteDevice) and state.status == "deleting":
        return []
    _must_exist(state)
    base: dict[str, Any] = {
        "tenant_id": state.tenant_id,
        "occurred_at": now,
        "device_id": state.device_id,
    }
    match command:
        case StartPairing():
            if state.linked:
                raise Refused(
                    "already_paired",
                    "The device is paired already",
                    409,
                    f"{state.device_id} is {state.status}; log it out before pairing again",
                )
            phone = normalise_phone(command.phone) if command.method == "code" else ""
            return [ev.DevicePairingStarted(**base, method=command.method, phone=phone)]
        case CancelPairing():
            if state.status != "pairing":
                raise Refused("not_pairing", "The device is not pairing", 409, state.status)
            return [ev.DevicePairingFailed(**base, reason="cancelled")]
        case RenameDevice():
            name = _name(command.name)
            return [] if name == state.name else [ev.DeviceRenamed(**base, name=name)]
        case SetDeviceLimits():
            return [
                ev.DeviceLimitsChanged(**base, daily_cap=command.daily_cap, warmup=command.warmup)
            ]
        case LogoutDevice():
            if not state.linked:
                raise Refused("not_paired", "The device is not paired", 409, state.status)
            return [ev.DeviceLoggedOut(**base, reason="requested")]
        case DeleteDevice():
            return [ev.DeviceDeleteRequested(**base, reason=command.reason)]
    raise Refused("unsupported", "The gateway does not handle this command", 400)


def accepts(state: Device, fact: ev.DeviceEvent) -> bool:
    """Whether a fact reported by the network changes the device (else nothing is appended)."""
    if state.gone:
        return isinstance(fact, ev.DeviceDeleted) and state.status == "deleting"
    match fact:
        case ev.DevicePaired():
            return state.status == "pairing"
        case ev.DevicePairingFailed():
            return state.status == "pairing"
        case ev.DeviceConnected():
            return state.status in ("paired", "disconnected", "banned")
        case ev.DeviceDisconnected():
            return state.status == "connected"
        case ev.DeviceLoggedOut():
            return state.linked
        case ev.DeviceBanned():
            return state.linked and (state.status != "banned" or state.banned_until != fact.until)
    return False


def normalise_phone(raw: str) -> str:
    """E.164 (`+` and country code), or `Refused` 422."""
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException as exc:
        detail = f"{raw!r}: {exc}"
        raise Refused("invalid_phone", "The phone number is not valid", 422, detail) from None
    if not phonenumbers.is_valid_number(number):
        raise Refused(
            "invalid_phone",
            "The phone number is not valid",
            422,
            f"{raw!r} is not a valid number in E.164 form (+ and country code)",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _must_exist(state: Device) -> None:
    if state.status == "absent":
        raise Refused("device_not_found", "No such device", 404, state.device_id)
    if state.gone:
        raise Refused("device_deleted", "The device is deleted", 410, state.device_id)


def _name(raw: str) -> str:
    name = raw.strip()
    if not name or len(name) > 100:
        raise Refused("invalid_name", "A device name needs 1-100 characters", 422)
    return name
