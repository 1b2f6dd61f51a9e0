"""Ids that must come out the same in every process, language and restart.

A message id is derived from what it is for (campaign + lead, or enrollment + step id), so
a redelivered or replayed decision produces the same id, and the send request subject of
that id (appended with expected sequence 0) can exist only once: a lead never gets the
same campaign or sequence step twice. Derived ids are hashes: short, subject-safe, and
free of the personal data or long ids they come from.
"""

from __future__ import annotations

import hashlib


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def campaign_message_id(campaign_id: str, lead_id: str) -> str:
    return "m" + _digest("campaign", campaign_id, lead_id)


def step_message_id(enrollment_id: str, step_id: str) -> str:
    return "m" + _digest("step", enrollment_id, step_id)


def enrollment_id(sequence_id: str, lead_id: str, nth: int = 1) -> str:
    """One enrollment per lead and sequence; `nth` > 1 enrolls a lead again on purpose."""
    return "e" + _digest("enrollment", sequence_id, lead_id, str(nth))


def phone_key(tenant_id: str, phone: str) -> str:
    """Key of a tenant's phone claim subject.

    Not a secret: a hash of a phone number can be reversed by trying every number, so
    erasing a lead purges its claim subject too.
    """
    return "p" + _digest("phone", tenant_id, phone)


def inbound_id(device_id: str, wa_message_id: str) -> str:
    """An inbound message reported twice by the network is recorded once."""
    return "i" + _digest("inbound", device_id, wa_message_id)
