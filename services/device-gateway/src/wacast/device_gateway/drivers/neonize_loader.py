"""Importing neonize on demand, without inheriting its side effects.

Importing neonize 0.5.2 loads its Go library and calls `logging.basicConfig(INFO)`, which
would hand the gateway a second root handler; the root logger is put back as it was. When
the bundled library is missing, neonize downloads one at import: refused here.

`NEONIZE_BOT_TAG`: neonize's Go side appends `<bot biz_bot="1"/>` to every one-to-one
message unless the variable reads `off`; recipients' apps then label the message as sent by
an AI/business bot. wacast sends operator-written messages from the operator's own account,
as WhatsApp Web does, so the label would be false: the driver wants it off. The Go runtime
copies the environment the process was *launched* with (setting a new variable from Python,
even before the import, is not seen), so the gateway must be started with
`NEONIZE_BOT_TAG=off`; `bot_tag_problem` explains a mismatch.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from wacast.device_gateway.drivers.base import DriverError

BOT_TAG_VAR = "NEONIZE_BOT_TAG"
_OFF_VALUES = frozenset({"off", "none", "false", "0"})
"""What neonize's Go `shouldAddBotNode` reads as off (anything else keeps the tag)."""

BotTag = Literal["off", "on"]


@dataclass(frozen=True, slots=True)
class NeonizeApi:
    """The parts of neonize 0.5.2 the driver uses (untyped: neonize ships no stubs)."""

    NewAClient: Any
    events: Any
    """`neonize.aioze.events`: the event classes and the loop events are dispatched to."""
    Message: Any
    JID: Any
    build_jid: Any
    jid_to_string: Any
    extract_text: Any
    ChatPresence: Any
    ChatPresenceMedia: Any
    SendMessageError: type[Exception]
    UploadError: type[Exception]
    list_devices: Any
    """`ClientFactory.get_all_devices_from_db(name)`: the devices a session store holds."""


_loaded: NeonizeApi | None = None


def load_neonize() -> NeonizeApi:
    global _loaded
    if _loaded is None:
        _loaded = _import_neonize()
    return _loaded


def _import_neonize() -> NeonizeApi:
    _require_bundled_library()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        from neonize.aioze import events
        from neonize.aioze.client import ClientFactory, NewAClient
        from neonize.exc import SendMessageError, UploadError
        from neonize.proto.Neonize_pb2 import JID
        from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message
        from neonize.utils.enum import ChatPresence, ChatPresenceMedia
        from neonize.utils.jid import Jid2String, build_jid
        from neonize.utils.message import extract_text
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return NeonizeApi(
        NewAClient=NewAClient,
        events=events,
        Message=Message,
        JID=JID,
        build_jid=build_jid,
        jid_to_string=Jid2String,
        extract_text=extract_text,
        ChatPresence=ChatPresence,
        ChatPresenceMedia=ChatPresenceMedia,
        SendMessageError=SendMessageError,
        UploadError=UploadError,
        list_devices=ClientFactory.get_all_devices_from_db,
    )


def _require_bundled_library() -> None:
    spec = importlib.util.find_spec("neonize")
    if spec is None or spec.origin is None:
        raise DriverError("neonize_unavailable", "the neonize package is not installed")
    folder = Path(spec.origin).parent
    if not any(folder.glob("neonize-*.so")) and not any(folder.glob("neonize-*.dylib")):
        raise DriverError(
            "neonize_unavailable",
            f"neonize's Go library is missing from {folder}; reinstall the wheel "
            "(importing neonize would download one)",
        )


def launch_environment(name: str, source: Path = Path("/proc/self/environ")) -> str | None:
    """`name` as the process was launched with it: what neonize's Go runtime sees."""
    try:
        raw = source.read_bytes()
    except OSError:
        return os.environ.get(name)
    for entry in raw.split(b"\0"):
        key, sep, value = entry.partition(b"=")
        if sep and key == name.encode():
            return value.decode(errors="replace")
    return None


def bot_tag_problem(wanted: BotTag, launched_with: str | None) -> str | None:
    """Why neonize would not tag messages as `wanted`, or None when it will."""
    off = launched_with is not None and launched_with.strip().lower() in _OFF_VALUES
    if wanted == "off" and not off:
        return (
            f"one-to-one messages would carry WhatsApp's bot/AI label: start the gateway with "
            f"{BOT_TAG_VAR}=off in its environment (it cannot be changed after start), or "
            f"configure bot_tag='on' to send with the label"
        )
    if wanted == "on" and off:
        return f"the gateway was started with {BOT_TAG_VAR}={launched_with} but bot_tag='on'"
    return None
