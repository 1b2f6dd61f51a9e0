"""A recorded fake of neonize 0.5.2's async client, and the WhatsApp it talks to.

`FakeAClient` has the constructor and every method of `neonize.aioze.client.NewAClient`
the driver uses, with the same parameters (test_neonize_driver.py compares them with
`inspect.signature`), and behaves as the real client does where the driver depends on it:

- `connect()` returns the task that runs as long as the client, and that task holds a
  default-executor thread (the real one blocks in Go's `Neonize()` call);
- events are neonize's own protobuf classes built from `RECORDINGS`, delivered only for the
  classes registered before `connect()`, as coroutines scheduled on
  `neonize.aioze.events.event_global_loop`; what they raise is never looked at;
- an empty store starts the QR flow: six codes (60 s, then 20 s each, times `time_scale`),
  then whatsmeow gives up, drops the socket and the client stays blocked until `stop()`;
- calls on a client Go does not know (never started, stopped) fail with "client is nil",
  `PairPhone` needs the socket up, a lost socket fails sends before the node is written;
  a send to a number not on WhatsApp succeeds, as whatsmeow's does;
- a SQLite store is a real file with a `whatsmeow_device` table (written on link, emptied
  on logout), so the driver's snapshots and restores run for real; `postgres...` stores
  live in memory.

The recordings are whatsmeow's event sequences as neonize 0.5.2 encodes them (its Go
`Encode*` functions), written down as data: none was captured from a live session, since no
test may reach WhatsApp.
"""

from __future__ import annotations

import asyncio
import errno
import io
import itertools
import sqlite3
import threading
import time
import weakref
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from google.protobuf import json_format
from PIL import Image

from wacast.device_gateway.drivers.neonize_loader import load_neonize

api = load_neonize()

from neonize.aioze import events as neonize_events  # noqa: E402  (after load_neonize: logging)
from neonize.events import EVENT_TO_INT  # noqa: E402
from neonize.exc import (  # noqa: E402
    IsOnWhatsAppError,
    LogoutError,
    NeonizeError,
    PairPhoneError,
    SendMessageError,
    SendPresenceError,
    UploadError,
)
from neonize.proto.Neonize_pb2 import IsOnWhatsAppResponse, SendResponse  # noqa: E402
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (  # noqa: E402
    DocumentMessage,
    ImageMessage,
    Message,
    VideoMessage,
)
from neonize.utils.enum import ClientName  # noqa: E402

_PHONE = {"User": "{user}", "Server": "s.whatsapp.net"}
_PEER = {"Chat": _PHONE, "Sender": _PHONE, "IsFromMe": False, "IsGroup": False}

RECORDINGS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    # Scanned or code entered on the phone: PairSuccess, then whatsmeow reconnects (the
    # server restarts the stream after pairing) and is connected.
    "linked": [
        (
            "PairStatusEv",
            {
                "ID": {"User": "{user}", "Device": "{device}", "Server": "s.whatsapp.net"},
                "BusinessName": "",
                "Platform": "android",
                "Status": "SUCCESS",
            },
        ),
        ("ConnectedEv", {"status": True}),
    ],
    "resumed": [("ConnectedEv", {"status": True})],
    # An unexpected socket loss; whatsmeow reconnects by itself.
    "dropped": [("DisconnectedEv", {"status": True})],
    "reconnected": [("ConnectedEv", {"status": True})],
    # Unlinked from the phone while connected (stream error 401: no Disconnected event).
    "logged_out": [("LoggedOutEv", {"OnConnect": False, "Reason": "LOGGED_OUT"})],
    # Resuming a session the phone unlinked meanwhile (connect failure 401).
    "logged_out_on_connect": [("LoggedOutEv", {"OnConnect": True, "Reason": "LOGGED_OUT"})],
    "banned": [("TemporaryBanEv", {"Code": "SEND_TO_TOO_MANY_PEOPLE", "Expire": "{seconds}"})],
    "replaced": [("StreamReplacedEv", {})],
    "receipt": [
        (
            "ReceiptEv",
            {
                "MessageSource": _PEER,
                "MessageIDs": ["{message_id}"],
                "Timestamp": "{seconds_now}",
                "Type": "{kind}",
            },
        )
    ],
    "message": [
        (
            "MessageEv",
            {
                "Info": {
                    "MessageSource": _PEER,
                    "ID": "{message_id}",
                    "Type": "text",
                    "Pushname": "",
                    "Timestamp": "{millis_now}",
                },
                "Message": {"conversation": "{text}"},
            },
        )
    ],
}
QR_ROTATIONS = (60.0, 20.0, 20.0, 20.0, 20.0, 20.0)
"""Seconds each QR code of a link stays valid (whatsmeow, before it gives up)."""

CLIENT_IS_NIL = "client is nil"
NOT_CONNECTED = "websocket not connected"


def event(name: str, **values: Any) -> list[Any]:
    """The recording `name` as neonize protobuf events, its placeholders filled."""
    return [
        json_format.ParseDict(_fill(fields, values), getattr(neonize_events, kind)())
        for kind, fields in RECORDINGS[name]
    ]


def _fill(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return value.format_map(values)
    if isinstance(value, dict):
        return {key: _fill(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, values) for item in value]
    return value


@dataclass(frozen=True)
class SentMessage:
    uuid: bytes
    to: str
    message: Any
    wa_message_id: str


class FakeEvent:
    """neonize.aioze.events.Event: one handler per event class, the QR callback."""

    def __init__(self, client: FakeAClient) -> None:
        self.client = client
        self.list_func: dict[int, Any] = {}
        self._qr: Any = None

    def qr(self, f: Any) -> None:
        self._qr = f

    def __call__(self, event: type[Any]) -> Any:
        def callback(func: Any) -> None:
            self.list_func.update({EVENT_TO_INT[event]: func})

        return callback


class FakeAClient:
    network: ClassVar[FakeNetwork]

    def __init__(
        self,
        name: str,
        jid: Any = None,
        props: Any = None,
        uuid: str | None = None,
        new_device: bool = False,
    ) -> None:
        self.name = name
        self.jid = jid
        self.device_props = props
        self.new_device = new_device
        self.uuid = (jid.User if jid else (uuid or name)).encode()
        self.event = FakeEvent(self)
        self.qr = self.event.qr
        self.connect_task: asyncio.Task[None] | None = None
        self.socket_up = False
        self.device_jid = ""
        self.subscribed: frozenset[int] = frozenset()
        self.stopped = threading.Event()
        self._stop_finalizer = weakref.finalize(self, self.network.stop_key, self.uuid)

    async def connect(self, proxy_settings: Any = None) -> asyncio.Task[None]:
        loop = asyncio.get_running_loop()
        neonize_events.set_event_loop(loop)
        self.connect_task = loop.create_task(self.network.run(self))
        return self.connect_task

    async def stop(self) -> None:
        self.network.stop_key(self.uuid)

    async def logout(self) -> None:
        self._known(LogoutError)
        if not self.device_jid:
            raise LogoutError("the store doesn't contain a device JID")
        self.network.unlink(self)

    async def send_message(
        self,
        to: Any,
        message: Any,
        link_preview: bool = False,
        ghost_mentions: str | None = None,
        mentions_are_lids: bool = False,
        add_msg_secret: bool = False,
    ) -> Any:
        self._known(SendMessageError)
        if not self.socket_up:
            raise SendMessageError(f"failed to send message node: {NOT_CONNECTED}")
        if self.network.hold_sends is not None:
            await self.network.hold_sends.wait()
        return self.network.accept(self, api.jid_to_string(to), message)

    async def build_image_message(
        self,
        file: str | bytes,
        caption: str | None = None,
        quoted: Any = None,
        viewonce: bool = False,
        ghost_mentions: str | None = None,
        mentions_are_lids: bool = False,
    ) -> Any:
        assert isinstance(file, bytes), "media must be handed over as bytes"
        Image.open(io.BytesIO(file)).verify()
        self._upload(file)
        return Message(
            imageMessage=ImageMessage(caption=caption, mimetype="image/png", fileLength=len(file))
        )

    async def build_video_message(
        self,
        file: str | bytes,
        caption: str | None = None,
        quoted: Any = None,
        viewonce: bool = False,
        gifplayback: bool = False,
        is_gif: bool = False,
        ghost_mentions: str | None = None,
        mentions_are_lids: bool = False,
    ) -> Any:
        assert isinstance(file, bytes), "media must be handed over as bytes"
        if self.network.ffmpeg_missing:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", "ffprobe")
        self._upload(file)
        return Message(
            videoMessage=VideoMessage(caption=caption, mimetype="video/mp4", fileLength=len(file))
        )

    async def build_document_message(
        self,
        file: str | bytes,
        caption: str | None = None,
        title: str | None = None,
        filename: str | None = None,
        mimetype: str | None = None,
        quoted: Any = None,
        ghost_mentions: str | None = None,
        mentions_are_lids: bool = False,
    ) -> Any:
        assert isinstance(file, bytes), "media must be handed over as bytes"
        self._upload(file)
        document = DocumentMessage(
            caption=caption,
            fileName=filename,
            mimetype=mimetype or "application/octet-stream",
            fileLength=len(file),
        )
        return Message(documentMessage=document)

    async def send_chat_presence(self, jid: Any, state: Any, media: Any) -> None:
        self._known(SendPresenceError)
        if not self.socket_up:
            raise SendPresenceError(NOT_CONNECTED)
        self.network.presence.append((api.jid_to_string(jid), state.name))

    async def is_on_whatsapp(self, *numbers: str) -> Any:
        self._known(IsOnWhatsAppError)
        if not self.socket_up:
            raise IsOnWhatsAppError(f"failed to send usync query: {NOT_CONNECTED}")
        self.network.lookups += 1
        return [
            IsOnWhatsAppResponse(
                Query=number,
                JID=api.build_jid(number.lstrip("+")),
                IsIn=number not in self.network.absent,
            )
            for number in numbers
        ]

    async def PairPhone(  # noqa: N802
        self,
        phone: str,
        show_push_notification: bool,
        client_name: Any = ClientName.LINUX,
        client_type: Any = None,
    ) -> str:
        if self.uuid not in self.network.running or not self.socket_up:
            raise PairPhoneError(
                f"{CLIENT_IS_NIL}: ensure client is connected before calling PairPhone"
            )
        return self.network.issue_code(self, phone)

    def _known(self, error: type[Exception]) -> None:
        if self.uuid not in self.network.running:
            raise error(CLIENT_IS_NIL)

    def _upload(self, data: bytes) -> None:
        self._known(UploadError)
        if not self.socket_up:
            raise UploadError(f"failed to refresh media connections: {NOT_CONNECTED}")


class FakeNetwork:
    """WhatsApp as fake clients see it; tests drive it by device id (the driver keys each
    client `<device_id>#<n>`)."""

    def __init__(self, *, time_scale: float = 0.01, reconnect_after: float = 0.05) -> None:
        self.time_scale = time_scale
        self.reconnect_after = reconnect_after
        self.client_class: type[FakeAClient] = type(
            "FakeAClientOnNetwork", (FakeAClient,), {"network": self}
        )
        self.running: dict[bytes, FakeAClient] = {}
        self.started: list[FakeAClient] = []
        self.stops: list[bytes] = []
        self.linked: dict[str, str] = {}
        """Device JID -> phone digits of every account still linked."""
        self.postgres: dict[str, set[str]] = {}
        self.absent: set[str] = set()
        self.sent: list[SentMessage] = []
        self.presence: list[tuple[str, str]] = []
        self.send_failures: list[str] = []
        """Texts of SendMessageErrors the next sends raise, in order."""
        self.refuse_start = ""
        """When set, `connect()`'s task fails at once with this NeonizeError."""
        self.ffmpeg_missing = False
        self.hold_sends: asyncio.Event | None = None
        """When set, sends wait for it (a message node out, no ack yet)."""
        self.lookups = 0
        self.codes: dict[bytes, tuple[str, str]] = {}
        self._ids = itertools.count(1)

    # ---- what the clients do ------------------------------------------------------------

    async def run(self, client: FakeAClient) -> None:
        if self.refuse_start:
            raise NeonizeError(self.refuse_start)
        assert client.uuid not in self.running, "two running clients share a Go key"
        self.running[client.uuid] = client
        self.started.append(client)
        client.subscribed = frozenset(client.event.list_func)
        session = asyncio.create_task(self._session(client))
        try:
            await asyncio.to_thread(client.stopped.wait)
        finally:
            session.cancel()

    def stop_key(self, uuid: bytes) -> None:
        self.stops.append(uuid)
        client = self.running.pop(uuid, None)
        if client is not None:
            client.socket_up = False
            client.stopped.set()

    def accept(self, client: FakeAClient, to: str, message: Any) -> Any:
        if self.send_failures:
            raise SendMessageError(self.send_failures.pop(0))
        wa_message_id = f"3EB0{next(self._ids):016X}"
        self.sent.append(SentMessage(client.uuid, to, message, wa_message_id))
        return SendResponse(ID=wa_message_id, Timestamp=int(time.time()), ServerID=1)

    def issue_code(self, client: FakeAClient, phone: str) -> str:
        chars = f"{zlib.crc32(client.uuid):08X}"
        code = f"{chars[:4]}-{chars[4:]}"
        self.codes[client.uuid] = (code, phone.lstrip("+"))
        return code

    def unlink(self, client: FakeAClient) -> None:
        self.linked.pop(client.device_jid, None)
        self._store_device(client, None)
        client.device_jid = ""
        client.socket_up = False

    async def _session(self, client: FakeAClient) -> None:
        jid = self._stored_device(client)
        client.socket_up = True
        if jid is None:
            for n, valid_for in enumerate(QR_ROTATIONS):
                if client.device_jid:
                    return
                self._qr(client, f"2@{n}{client.uuid.hex()},noise,identity,adv")
                await asyncio.sleep(valid_for * self.time_scale)
            if not client.device_jid:
                client.socket_up = False
            return
        client.device_jid = jid
        if jid not in self.linked:  # unlinked from the phone while this client was away
            self.unlink(client)
            self._dispatch(client, "logged_out_on_connect")
            return
        self._dispatch(client, "resumed")

    # ---- what the tests do --------------------------------------------------------------

    def current(self, device_id: str) -> FakeAClient:
        for client in reversed(self.started):
            if client.uuid.decode().split("#")[0] == device_id and client.uuid in self.running:
                return client
        raise LookupError(f"no running client for {device_id}")

    def complete_link(self, device_id: str, code: str | None = None) -> str:
        """The phone scans the QR code (or takes `code`): returns the device's JID."""
        client = self.current(device_id)
        assert not client.device_jid, f"{device_id} is linked already"
        assert client.socket_up, f"{device_id} is not linking (its QR codes ran out)"
        if code is None:
            phone = f"1555{zlib.crc32(device_id.encode()) % 10**7:07d}"
        else:
            issued, phone = self.codes[client.uuid]
            assert code.replace("-", "") == issued.replace("-", ""), "wrong pairing code"
        device = next(self._ids) % 90 + 10
        jid = f"{phone}:{device}@s.whatsapp.net"
        self._store_device(client, jid)
        self.linked[jid] = phone
        client.device_jid = jid
        self._dispatch(client, "linked", user=phone, device=device)
        return jid

    def drop(self, device_id: str) -> None:
        client = self.current(device_id)
        client.socket_up = False
        self._dispatch(client, "dropped")
        asyncio.get_running_loop().call_later(self.reconnect_after, self._reconnect, client)

    def logout_remotely(self, device_id: str) -> None:
        client = self.current(device_id)
        self.unlink(client)
        self._dispatch(client, "logged_out")

    def ban(self, device_id: str, seconds: int) -> None:
        client = self.current(device_id)
        client.socket_up = False
        self._dispatch(client, "banned", seconds=seconds)

    def replace_stream(self, device_id: str) -> None:
        client = self.current(device_id)
        client.socket_up = False
        self._dispatch(client, "replaced")

    def receipt(self, device_id: str, wa_message_id: str, kind: str = "DELIVERED") -> None:
        sent = next(s for s in self.sent if s.wa_message_id == wa_message_id)
        self._dispatch(
            self.current(device_id),
            "receipt",
            user=sent.to.split("@")[0],
            message_id=wa_message_id,
            kind=kind,
            seconds_now=int(time.time()),
        )

    def inbound(self, sender: str, to: str, text: str) -> str:
        client = next(c for c in self.running.values() if self.linked.get(c.device_jid) == to[1:])
        wa_message_id = f"3A{next(self._ids):018X}"
        self._dispatch(
            client,
            "message",
            user=sender.lstrip("+"),
            message_id=wa_message_id,
            text=text,
            millis_now=int(time.time() * 1000),
        )
        return wa_message_id

    def shutdown(self) -> None:
        for uuid in list(self.running):
            self.stop_key(uuid)

    # ---- plumbing -----------------------------------------------------------------------

    def _reconnect(self, client: FakeAClient) -> None:
        if client.uuid in self.running and client.device_jid in self.linked:
            client.socket_up = True
            self._dispatch(client, "reconnected")

    def _dispatch(self, client: FakeAClient, recording: str, **values: Any) -> None:
        loop = neonize_events.event_global_loop
        for message in event(recording, **values):
            code = EVENT_TO_INT[type(message)]
            handler = client.event.list_func.get(code)
            if code in client.subscribed and handler is not None and loop is not None:
                asyncio.run_coroutine_threadsafe(handler(client, message), loop)

    def _qr(self, client: FakeAClient, data: str) -> None:
        loop = neonize_events.event_global_loop
        if client.event._qr is not None and loop is not None:
            asyncio.run_coroutine_threadsafe(client.event._qr(client, data.encode()), loop)

    def _stored_device(self, client: FakeAClient) -> str | None:
        if client.name.startswith("postgres"):
            devices = self.postgres.get(client.name, set())
            wanted = api.jid_to_string(client.jid) if client.jid else None
            if wanted is not None:
                return wanted if wanted in devices else None
            return None if client.new_device or not devices else min(devices)
        path = Path(client.name)
        if client.new_device or not path.exists():
            return None
        with sqlite3.connect(path) as db:
            row = db.execute("SELECT jid FROM whatsmeow_device LIMIT 1").fetchone()
        return str(row[0]) if row else None

    def _store_device(self, client: FakeAClient, jid: str | None) -> None:
        if client.name.startswith("postgres"):
            devices = self.postgres.setdefault(client.name, set())
            if jid is None:
                devices.discard(client.device_jid)
            else:
                devices.add(jid)
            return
        db = sqlite3.connect(client.name)
        try:
            with db:
                db.execute("CREATE TABLE IF NOT EXISTS whatsmeow_device (jid TEXT PRIMARY KEY)")
                db.execute("DELETE FROM whatsmeow_device")
                if jid is not None:
                    db.execute("INSERT INTO whatsmeow_device VALUES (?)", (jid,))
        finally:
            db.close()

    def list_devices(self, name: str) -> list[Any]:
        """`ClientFactory.get_all_devices_from_db`: neonize's Device protos."""
        from neonize.proto.Neonize_pb2 import Device
        from neonize.utils.jid import build_jid

        devices = []
        for jid in sorted(self.postgres.get(name, set())):
            user, _, server = jid.partition("@")
            devices.append(Device(JID=build_jid(user, server), Initialized=True))
        return devices
