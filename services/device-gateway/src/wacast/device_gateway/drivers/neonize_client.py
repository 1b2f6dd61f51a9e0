"""The slice of neonize's async client the driver uses, and where its clients come from.

`ClientFactory` is the driver's seam: `NeonizeClientFactory` makes real `NewAClient`s, or
clients of the recorded fake (tests/neonize_fake.py) in tests. `CLIENT_METHODS` names
every client method the driver calls; a test holds the real class and the fake to the same
signatures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from wacast.device_gateway.drivers.neonize_loader import NeonizeApi

CLIENT_METHODS = (
    "connect",
    "stop",
    "logout",
    "send_message",
    "build_image_message",
    "build_video_message",
    "build_document_message",
    "send_chat_presence",
    "is_on_whatsapp",
    "PairPhone",
)
EVENT_METHODS = ("__call__", "qr")
"""What the driver calls on `client.event` (neonize.aioze.events.Event); `client.qr` is
neonize's alias of `client.event.qr`."""

Handler = Callable[[Any, Any], Any]


class ClientEvents(Protocol):
    def __call__(self, event: type[Any]) -> Callable[[Handler], None]: ...

    def qr(self, f: Handler) -> None: ...


class NeonizeClient(Protocol):
    """neonize.aioze.client.NewAClient as the driver uses it (never `get_me`: before the
    socket is up it panics in Go and takes the process down)."""

    uuid: bytes
    event: ClientEvents

    def qr(self, f: Handler) -> None:
        """Sets the QR callback (neonize: an attribute bound to `event.qr`)."""

    async def connect(self) -> Any:
        """Starts the client; returns the task that runs as long as the client does."""

    async def stop(self) -> None: ...

    async def logout(self) -> None: ...

    async def send_message(self, to: Any, message: Any) -> Any: ...

    async def build_image_message(self, file: bytes, caption: str | None = None) -> Any: ...

    async def build_video_message(self, file: bytes, caption: str | None = None) -> Any: ...

    async def build_document_message(
        self,
        file: bytes,
        caption: str | None = None,
        title: str | None = None,
        filename: str | None = None,
        mimetype: str | None = None,
    ) -> Any: ...

    async def send_chat_presence(self, jid: Any, state: Any, media: Any) -> None: ...

    async def is_on_whatsapp(self, *numbers: str) -> Sequence[Any]: ...

    async def PairPhone(self, phone: str, show_push_notification: bool) -> str:  # noqa: N802
        ...


class ClientFactory(Protocol):
    def new_client(self, name: str, *, jid: str, uuid: str, new_device: bool) -> NeonizeClient:
        """A client on session store `name` (a SQLite path or a `postgres...` URL); `jid`
        picks the linked device to resume, "" the store's first one."""

    def device_jids(self, name: str) -> list[str]:
        """The devices linked in session store `name`."""


class NeonizeClientFactory:
    """Clients of `client_class` (neonize's `NewAClient`; tests pass a fake of it)."""

    def __init__(
        self,
        api: NeonizeApi,
        *,
        client_class: Callable[..., Any] | None = None,
        list_devices: Callable[[str], Sequence[Any]] | None = None,
    ) -> None:
        self._api = api
        self._client_class = client_class or api.NewAClient
        self._list_devices = list_devices or api.list_devices

    def new_client(self, name: str, *, jid: str, uuid: str, new_device: bool) -> NeonizeClient:
        client = self._client_class(
            name, jid=parse_jid(self._api, jid) if jid else None, uuid=uuid, new_device=new_device
        )
        # Given a jid, neonize keys the Go client by the phone alone; one key per client
        # keeps two clients (a restart, the same account linked twice) from sharing state.
        client.uuid = uuid.encode()
        # Its finalizer calls Go's Stop(uuid) whenever the object is collected, from any
        # thread; the driver stops its clients itself.
        client._stop_finalizer.detach()
        return client  # type: ignore[no-any-return]

    def device_jids(self, name: str) -> list[str]:
        return [self._api.jid_to_string(device.JID) for device in self._list_devices(name)]


def parse_jid(api: NeonizeApi, text: str) -> Any:
    """`user[.agent][:device]@server` (neonize's `Jid2String` form) as a neonize JID."""
    user, _, server = text.partition("@")
    user, _, device = user.partition(":")
    user, _, agent = user.partition(".")
    return api.JID(
        User=user,
        RawAgent=int(agent or 0),
        Device=int(device or 0),
        Integrator=0,
        Server=server or "s.whatsapp.net",
        IsEmpty=False,
    )
