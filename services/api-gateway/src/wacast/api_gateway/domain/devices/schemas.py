"""Request and response shapes of `/api/v1/devices`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from wacast.contracts import queries as q

Name = Annotated[str, Meta(min_length=1, max_length=100)]
Phone = Annotated[str, Meta(max_length=32)]


class DeviceCreate(msgspec.Struct, frozen=True, kw_only=True):
    name: Name
    driver: Literal["sim", "whatsapp"] = "whatsapp"


class DeviceUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """Change what is given: `name`, or the sending limits (`daily_cap` null: no cap)."""

    name: Name | UnsetType = UNSET
    daily_cap: Annotated[int, Meta(ge=0, le=1_000_000)] | UnsetType | None = UNSET
    warmup: bool | UnsetType = UNSET


class PairingCreate(msgspec.Struct, frozen=True, kw_only=True):
    """`qr`: scan the code from `GET /devices/{id}/qr` (or the live socket); `code`: type
    the returned code on the phone whose number is `phone`."""

    method: Literal["qr", "code"] = "qr"
    phone: Phone = ""


class Pairing(msgspec.Struct, frozen=True, kw_only=True):
    """Pairing started; `code` is the code to type on the phone (method `code` only)."""

    device_id: str
    method: Literal["qr", "code"]
    code: str | None = None
    seq: int
    stream: str


class PairingPrompt(msgspec.Struct, frozen=True, kw_only=True):
    """What the phone needs now: the QR content to scan (`method` "qr"; the image is at
    `/devices/{id}/qr`) or the code to type (`method` "code"). It rotates; `at` is when."""

    device_id: str
    method: Literal["qr", "code"]
    code: str
    at: datetime


class DeviceResult(q.Device, frozen=True, kw_only=True):
    """The device after a write, with the write's `seq` and `stream`."""

    seq: int
    stream: str
