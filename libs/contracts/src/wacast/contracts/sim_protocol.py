"""The wa-simulator's driver protocol: msgspec-JSON frames over one WebSocket per driver.

The simulator serves it and the gateway's `sim` driver speaks it; both import this one
schema. Every WebSocket message is a JSON array of frames (a batch); each frame is an object whose
`type` names it. One connection carries the frames of every device its driver serves.
See PROTOCOL.md for the semantics; this module is the schema.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

# ---- driver -> simulator ------------------------------------------------------------------


class Command(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", omit_defaults=True):
    req_id: str = ""
    """Echoed in the reply (`ok`, `error`, `pair_code`, `send_result`); empty: no reply wanted."""


class Connect(Command, frozen=True, tag="connect"):
    device_id: str
    session: str


class PairQr(Command, frozen=True, tag="pair_qr"):
    device_id: str


class PairCode(Command, frozen=True, tag="pair_code"):
    device_id: str
    phone: str


class Typing(Command, frozen=True, tag="typing"):
    device_id: str
    to: str
    seconds: float = 0.0


class Send(Command, frozen=True, tag="send"):
    device_id: str
    to: str
    text: str = ""
    media_kind: Literal["image", "video", "document"] | None = None
    media_len: int = 0
    """Size of the attachment in bytes (the bytes themselves never cross the wire)."""
    media_sha256: str = ""
    """Hex SHA-256 of the attachment: the ledger's content identity for media."""
    mime: str = ""
    filename: str = ""
    origin_message_id: str = ""
    campaign_id: str = ""


class Disconnect(Command, frozen=True, tag="disconnect"):
    device_id: str


class Logout(Command, frozen=True, tag="logout"):
    device_id: str


DriverFrame = Connect | PairQr | PairCode | Typing | Send | Disconnect | Logout

# ---- simulator -> driver ------------------------------------------------------------------


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", omit_defaults=True):
    pass


class Ok(Event, frozen=True, tag="ok"):
    req_id: str


class Error(Event, frozen=True, tag="error"):
    code: str
    detail: str = ""
    req_id: str = ""
    device_id: str = ""


class PairCodeIssued(Event, frozen=True, tag="pair_code"):
    req_id: str
    device_id: str
    code: str


class Qr(Event, frozen=True, tag="qr"):
    device_id: str
    code: str


class Paired(Event, frozen=True, tag="paired"):
    device_id: str
    phone: str
    jid: str
    session: str


class Connected(Event, frozen=True, tag="connected"):
    device_id: str


class Disconnected(Event, frozen=True, tag="disconnected"):
    device_id: str
    reason: str


class LoggedOut(Event, frozen=True, tag="logged_out"):
    device_id: str
    reason: str


class Banned(Event, frozen=True, tag="banned"):
    device_id: str
    until: datetime
    reason: str


class SendResult(Event, frozen=True, tag="send_result"):
    req_id: str
    device_id: str
    ok: bool
    wa_message_id: str = ""
    at: datetime | None = None
    reason: str = ""
    retryable: bool = False
    accepted: bool | None = False
    """True: WhatsApp took it; False: it certainly did not; None: unknown."""


class Receipt(Event, frozen=True, tag="receipt"):
    device_id: str
    wa_message_id: str
    kind: Literal["delivered", "read"]
    at: datetime


class Inbound(Event, frozen=True, tag="inbound"):
    device_id: str
    sender: str = msgspec.field(name="from")
    text: str
    wa_message_id: str
    at: datetime


SimFrame = (
    Ok
    | Error
    | PairCodeIssued
    | Qr
    | Paired
    | Connected
    | Disconnected
    | LoggedOut
    | Banned
    | SendResult
    | Receipt
    | Inbound
)

batch_decoder = msgspec.json.Decoder(list[msgspec.Raw])
"""Splits a message into its frames; each is decoded on its own, so one bad frame
(or a frame type this side does not know yet) spoils only itself, not the batch."""
driver_frame_decoder = msgspec.json.Decoder(DriverFrame)
sim_frame_decoder = msgspec.json.Decoder(SimFrame)
sim_batch_decoder = msgspec.json.Decoder(list[SimFrame])
encoder = msgspec.json.Encoder()
