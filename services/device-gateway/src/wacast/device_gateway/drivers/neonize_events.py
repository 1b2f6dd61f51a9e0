"""neonize's protobuf events and results as the gateway's terms (pure functions)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from wacast.device_gateway.drivers.base import Inbound, SendError

E164 = re.compile(r"^\+[1-9]\d{6,14}$")

RECEIPT_KINDS: dict[int, Literal["delivered", "read"]] = {1: "delivered", 4: "read", 6: "read"}
"""neonize.Receipt.ReceiptType: DELIVERED, READ and PLAYED (a voice or video note opened);
the rest (SENDER, RETRY, READ_SELF...) say nothing about the recipient."""

_OFFLINE = ("client is nil", "client not found", "doesn't contain a device jid")
_BEFORE_SENDING = (
    "failed to get device list",
    "failed to send usync query",
    "failed to get user info",
    "failed to get lid",
    "no lid found",
    "failed to marshal",
    "failed to encrypt",
)
_BAD_RECIPIENT = ("unknown server", "message recipient must be")


def e164_digits(phone: str) -> str | None:
    return phone[1:] if E164.match(phone) else None


def send_error(error: str) -> SendError:
    """A `SendMessageError` from whatsmeow's SendMessage, classified by where it failed.

    Before the message node is written (no client, no socket, device list or encryption
    trouble) WhatsApp certainly has nothing. After it, whatsmeow waits for the server's ack
    and may resend the frame after a reconnect: a timeout, an interrupted wait or even a
    bare "websocket not connected" (a resend that found no socket) leave the outcome
    unknown, and the message must never be sent again.
    """
    text = error.lower()
    if any(marker in text for marker in _OFFLINE) or text.startswith(
        "failed to send message node: websocket not connected"
    ):
        return SendError("not_connected", retryable=True, accepted=False, detail=error)
    if any(marker in text for marker in _BAD_RECIPIENT):
        return SendError("bad_recipient", retryable=False, accepted=False, detail=error)
    if any(marker in text for marker in _BEFORE_SENDING):
        return SendError("send_failed", retryable=True, accepted=False, detail=error)
    if "server returned error" in text:
        return SendError("rejected", retryable=False, accepted=False, detail=error)
    return SendError("unknown", retryable=False, accepted=None, detail=error)


def upload_error(error: str) -> SendError:
    """An `UploadError` (media goes up before the message exists: nothing was sent)."""
    reason = "not_connected" if any(m in error.lower() for m in _OFFLINE) else "upload_failed"
    return SendError(reason, retryable=True, accepted=False, detail=error)


def moment(value: int) -> datetime:
    """A neonize timestamp: Unix seconds (receipts, sends) or milliseconds (messages)."""
    if value <= 0:
        return datetime.now(UTC)
    seconds = value / 1000 if value > 100_000_000_000 else value
    return datetime.fromtimestamp(seconds, UTC)


def enum_name(message: Any, field: str) -> str:
    """The lower-case name of an enum field of a protobuf event ("unknown" when unset)."""
    descriptor = message.DESCRIPTOR.fields_by_name[field].enum_type
    value = descriptor.values_by_number.get(getattr(message, field))
    return value.name.lower() if value is not None else "unknown"


def ban_until(expire_seconds: int, now: datetime) -> datetime | None:
    return now + timedelta(seconds=expire_seconds) if expire_seconds > 0 else None


MEDIA_TYPES = {
    "image": "image",
    "video": "video",
    "gif": "video",
    "ptv": "video",
    "audio": "audio",
    "ptt": "audio",
    "document": "document",
    "sticker": "sticker",
    "url": "",
}
"""whatsmeow's `MessageInfo.MediaType` as `InboundMessageReceived.media_type` ("" is text,
and so is a link with its preview); anything else (contact card, location, poll...) is
`other`."""


def media_type(kind: str) -> str:
    return MEDIA_TYPES.get(kind, "other") if kind else ""


def inbound(event: Any, extract_text: Any) -> Inbound | None:
    """A one-to-one message someone sent the device (MessageEv); None for anything else."""
    info = event.Info
    source = info.MessageSource
    if source.IsFromMe or source.IsGroup:
        return None
    sender = source.Sender
    if sender.Server == "lid" and source.SenderAlt.User:
        sender = source.SenderAlt  # a hidden-number sender: its phone JID rides along
    if sender.Server != "s.whatsapp.net" or not sender.User:
        return None
    return Inbound(
        wa_message_id=info.ID,
        sender=f"+{sender.User}",
        text=extract_text(event.Message),
        media_kind=media_type(info.MediaType),
        at=moment(info.Timestamp),
    )
