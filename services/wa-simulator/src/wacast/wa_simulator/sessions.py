"""Session tokens: what a linked device keeps to come back without pairing again.

A token is `base64url(json claims).hmac`, signed with `WACAST_SIM_SESSION_KEY`, so a
restarted simulator (which keeps no state) still recognises the devices it linked. The
claims carry the device, its phone and the link generation; a logout bumps the
generation, which voids every older token of that device while the simulator runs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

import msgspec


class Claims(msgspec.Struct, frozen=True, array_like=True):
    device_id: str
    phone: str
    generation: int
    nonce: str


class SessionKey:
    def __init__(self, key: str) -> None:
        self._key = key.encode()

    def _sign(self, payload: bytes) -> str:
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()[:32]

    def issue(self, claims: Claims) -> str:
        payload = base64.urlsafe_b64encode(msgspec.json.encode(claims)).rstrip(b"=")
        return f"{payload.decode()}.{self._sign(payload)}"

    def verify(self, token: str) -> Claims | None:
        """The token's claims, or None when it is malformed or not signed by this key."""
        payload_text, _, signature = token.partition(".")
        payload = payload_text.encode()
        if not signature or not hmac.compare_digest(self._sign(payload), signature):
            return None
        try:
            raw = base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4))
            return msgspec.json.decode(raw, type=Claims)
        except (binascii.Error, ValueError, msgspec.DecodeError):
            return None
