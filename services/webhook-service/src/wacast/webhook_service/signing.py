"""Standard Webhooks signatures (standardwebhooks.com).

A delivery carries `webhook-id` (the event id, the same on every try), `webhook-timestamp`
(Unix seconds of this try) and `webhook-signature: v1,<base64 HMAC-SHA256>` of
`"{id}.{timestamp}.{body}"`, keyed with the base64-decoded part of the `whsec_` secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping

PREFIX = "whsec_"
TOLERANCE_SECONDS = 300


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(PREFIX))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, msg_id, timestamp, body),
    }


def verify(secret: str, given: Mapping[str, str], body: bytes, now: int) -> bool:
    """What a receiver does: the timestamp is recent and one `v1` signature matches."""
    try:
        msg_id = given["webhook-id"]
        timestamp = int(given["webhook-timestamp"])
        signatures = given["webhook-signature"].split()
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        return False
    expected = signature(secret, msg_id, timestamp, body)
    return any(hmac.compare_digest(expected, s) for s in signatures if s.startswith("v1,"))
