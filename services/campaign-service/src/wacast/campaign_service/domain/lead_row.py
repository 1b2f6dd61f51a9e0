"""One CSV row as a lead's details, or the reason it cannot be one.

Columns: `phone` (required), `name`, `status` (prospect or customer; empty takes the
import's), `tags` (separated by `;`, `|` or `,`; added to the import's tags), `device` (a
device id of the tenant; empty takes the import's, or an even share later), and any other
column as a free attribute named after its header. Reasons never repeat the row's data.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from wacast.campaign_service.domain.errors import Refused
from wacast.campaign_service.domain.lead import MAX_VALUE, Contact, clean_tags
from wacast.campaign_service.domain.phone import InvalidPhone, normalize_phone
from wacast.contracts.values import LeadStatus

_TAG_SEPARATORS = re.compile(r"[;|,]")
_NOT_KEY = re.compile(r"[^a-z0-9_\- ]+")


class BadFile(Exception):
    """The file cannot be read as a CSV of leads; `reason` is a short code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Columns:
    """Where each known field is (-1: absent) and which columns are free attributes."""

    phone: int
    name: int = -1
    status: int = -1
    tags: int = -1
    device: int = -1
    attributes: tuple[tuple[int, str], ...] = ()


_ALIASES = {
    "phone": (
        "phone",
        "phone number",
        "phone_number",
        "mobile",
        "whatsapp",
        "number",
        "telefone",
        "celular",
        "telefono",
    ),
    "name": ("name", "full name", "full_name", "nome", "nombre"),
    "status": ("status",),
    "tags": ("tags", "tag"),
    "device": ("device", "device_id", "device id"),
}


def attribute_key(header: str) -> str:
    """A header as a template-safe attribute name: lower case, other characters as `_`."""
    return _NOT_KEY.sub("_", header.strip().lower()).strip("_ ")[:64]


def columns_of(header: list[str]) -> Columns:
    found: dict[str, int] = {}
    attributes: list[tuple[int, str]] = []
    for i, raw in enumerate(header):
        label = raw.strip().lower()
        field = next((f for f, names in _ALIASES.items() if label in names), None)
        if field is not None and field not in found:
            found[field] = i
        elif key := attribute_key(raw):
            attributes.append((i, key))
    if "phone" not in found:  # the header is not shown: a file without one starts with a lead
        names = ", ".join(_ALIASES["phone"][:4])
        raise BadFile(
            "no_phone_column",
            f"none of the {len(header)} columns of the first row is a phone column ({names}...)",
        )
    return Columns(attributes=tuple(attributes), **found)


@dataclass(frozen=True)
class RowDefaults:
    region: str
    status: LeadStatus
    tags: Sequence[str]
    device_id: str
    devices: Collection[str]
    """The tenant's devices: a row naming another device is refused."""


class RowRefused(ValueError):
    pass


def _cell(fields: list[str], index: int) -> str:
    return fields[index].strip() if 0 <= index < len(fields) else ""


def contact_of(fields: list[str], columns: Columns, defaults: RowDefaults) -> Contact:
    raw_phone = _cell(fields, columns.phone)
    if not raw_phone:
        raise RowRefused("phone is empty")
    try:
        phone = normalize_phone(raw_phone, defaults.region)
    except InvalidPhone as exc:
        raise RowRefused(str(exc)) from None
    status_text = _cell(fields, columns.status).lower()
    if status_text not in ("", "prospect", "customer"):
        raise RowRefused("status must be prospect or customer")
    status: LeadStatus = "customer" if status_text == "customer" else defaults.status
    if status_text == "prospect":
        status = "prospect"
    device_id = _cell(fields, columns.device) or defaults.device_id
    if device_id and device_id not in defaults.devices:
        raise RowRefused("unknown device")
    try:
        tags = clean_tags([*defaults.tags, *_TAG_SEPARATORS.split(_cell(fields, columns.tags))])
    except Refused as exc:
        raise RowRefused(exc.detail) from None
    attributes = {}
    for index, key in columns.attributes:
        value = _cell(fields, index)
        if len(value) > MAX_VALUE:
            raise RowRefused(f"{key} is longer than {MAX_VALUE} characters")
        if value:
            attributes[key] = value
    name = _cell(fields, columns.name)
    if len(name) > MAX_VALUE:
        raise RowRefused(f"name is longer than {MAX_VALUE} characters")
    return Contact(phone, name, device_id, status, tags, attributes)
