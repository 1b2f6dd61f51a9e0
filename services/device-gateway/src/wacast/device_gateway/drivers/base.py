"""The `Driver` protocol: everything the gateway needs from a WhatsApp connection.

One driver instance serves many devices. The gateway calls it; the driver reports what
happens on the network through `DriverListener` callbacks. Both implementations pass the
same contract tests (tests/driver_contract.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

MediaKind = Literal["image", "video", "document"]


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message to send: text, and optionally one media attachment."""

    to: str
    """Recipient phone in E.164."""
    text: str = ""
    media: bytes | None = None
    media_kind: MediaKind | None = None
    mime: str = ""
    filename: str = ""
    origin_message_id: str = ""
    """wacast's message id; the simulator's ledger uses it to count duplicates."""
    campaign_id: str = ""


@dataclass(frozen=True, slots=True)
class Sent:
    wa_message_id: str
    at: datetime


class SendError(Exception):
    """A send that did not go through.

    `accepted` False means WhatsApp certainly did not take the message (safe to retry when
    `retryable`); None means nobody knows (never resend: it may have been delivered).
    """

    def __init__(
        self, reason: str, *, retryable: bool, accepted: bool | None = False, detail: str = ""
    ) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.retryable = retryable
        self.accepted = accepted
        self.detail = detail


class DriverError(Exception):
    """A command the driver cannot carry out (unknown device, not linked, bad phone...)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Inbound:
    wa_message_id: str
    sender: str
    """Sender phone in E.164."""
    text: str
    media_kind: str = ""
    """"" for text, else `image`, `video`, `audio`, `document`, `sticker` or `other`."""
    at: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)


class DriverListener(Protocol):
    """What the network tells the gateway. Called from the driver's tasks; must not block."""

    async def on_qr(self, device_id: str, code: str) -> None: ...

    async def on_paired(self, device_id: str, phone: str, jid: str) -> None: ...

    async def on_session(self, device_id: str, session: bytes) -> None:
        """The device's session changed: persist it (it cannot be rebuilt from events)."""

    async def on_connected(self, device_id: str) -> None: ...

    async def on_disconnected(self, device_id: str, reason: str) -> None: ...

    async def on_logged_out(self, device_id: str, reason: str) -> None: ...

    async def on_banned(self, device_id: str, until: datetime | None, reason: str) -> None: ...

    async def on_receipt(
        self, device_id: str, wa_message_id: str, kind: Literal["delivered", "read"], at: datetime
    ) -> None: ...

    async def on_inbound(self, device_id: str, message: Inbound) -> None: ...


class Driver(Protocol):
    name: str

    async def start(self, listener: DriverListener) -> None:
        """Open the driver's own connections; events flow to `listener` from now on."""

    async def close(self) -> None: ...

    async def connect(self, device_id: str, session: bytes | None) -> None:
        """Bring a linked device online from its stored session (reconnects are reported)."""

    async def pair_qr(self, device_id: str) -> None:
        """Start linking by QR; codes arrive through `on_qr` as they rotate."""

    async def pair_code(self, device_id: str, phone: str) -> str:
        """Start linking by phone code; returns the 8-character code to type on the phone."""

    async def typing(self, device_id: str, to: str, seconds: float) -> None:
        """Show 'typing…' to `to` for about `seconds` (returns when done)."""

    async def send(self, device_id: str, message: Outbound) -> Sent: ...

    async def disconnect(self, device_id: str) -> None: ...

    async def logout(self, device_id: str) -> None:
        """Unlink the device from the account; its session is void afterwards."""
