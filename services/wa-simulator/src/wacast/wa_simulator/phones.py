"""Phone numbers, JIDs and the simulator's deterministic 'who is on WhatsApp' rule."""

from __future__ import annotations

import re
import zlib

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def is_e164(phone: str) -> bool:
    return E164.match(phone) is not None


def jid_of(phone: str) -> str:
    return f"{phone.lstrip('+')}@s.whatsapp.net"


def fake_phone(device_id: str, attempt: int = 0) -> str:
    """A deterministic E.164 number for a device linked without a phone of its own.

    `+1 555 01xx xxxx`-style: country 1, the fictional 555 exchange, then 8 digits from
    crc32 (never Python's salted `hash()`); `attempt` salts it when two devices collide.
    The last four digits never read 0000, so a device is always 'on WhatsApp'.
    """
    digest = zlib.crc32(f"{device_id}#{attempt}".encode()) % 100_000_000
    if digest % 10_000 == 0:
        digest += 1
    return f"+1555{digest:08d}"


def on_whatsapp_by_rule(phone: str) -> bool:
    """Numbers whose last four digits are 0000 are not on WhatsApp."""
    return not phone.endswith("0000")
