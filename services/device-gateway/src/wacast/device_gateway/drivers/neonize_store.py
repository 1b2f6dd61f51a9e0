"""Where whatsmeow keeps a device's session, and what the gateway persists of it.

The default: one SQLite file per device, `<sessions dir>/<device_id>.sqlite3`. The session
bytes reported through `on_session` are the whole file, so the gateway's object store holds
everything needed to bring the device back on another replica or after `var/` is lost, and
a device's store lives and dies with the device. The cost: a snapshot per report (after
pairing, on every connect, periodically and on disconnect; a few hundred KB each).

With a `postgres...` URL, whatsmeow keeps every device in that database (the gateway's
Postgres or another) and the session bytes are only a pointer: `{"jid": ...}`. Nothing
sensitive leaves the database, but losing it unlinks every device, and each client opens
its own connection pool to it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from wacast.device_gateway.drivers import neonize_sqlite
from wacast.device_gateway.drivers.base import DriverError
from wacast.device_gateway.drivers.neonize_client import ClientFactory

_DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True, slots=True)
class ClientArgs:
    name: str
    """neonize's session store name: a SQLite path or a `postgres...` URL."""
    jid: str = ""
    """The linked device to resume; "" for the store's first (or a new) device."""
    new_device: bool = False


class SessionStore(Protocol):
    async def for_pairing(self, device_id: str) -> ClientArgs:
        """A blank store for a new link (any earlier session of the device is dropped)."""

    async def restore(self, device_id: str, session: bytes | None) -> ClientArgs:
        """Put `session` (None: the one kept locally) where a client resumes it."""

    async def snapshot(self, device_id: str, jid: str) -> bytes:
        """The device's session as the gateway should persist it."""

    async def forget(self, device_id: str) -> None: ...


def session_store(location: str, clients: ClientFactory) -> SessionStore:
    if location.startswith("postgres"):
        return PostgresSessionStore(location, clients)
    return SqliteSessionStore(Path(location))


class SqliteSessionStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._written: dict[str, str] = {}
        """Digest of the bytes last restored or snapshotted per device (skip rewrites)."""

    def path(self, device_id: str) -> Path:
        if not _DEVICE_ID.match(device_id):
            raise DriverError("bad_device", f"{device_id!r} cannot name a session file")
        return self.directory / f"{device_id}.sqlite3"

    async def for_pairing(self, device_id: str) -> ClientArgs:
        path = self.path(device_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        neonize_sqlite.remove(path)
        self._written.pop(device_id, None)
        return ClientArgs(str(path), new_device=True)

    async def restore(self, device_id: str, session: bytes | None) -> ClientArgs:
        path = self.path(device_id)
        if session is None:
            if not path.exists():
                raise DriverError("no_session", f"{device_id} has no stored session; pair it")
            session = await neonize_sqlite.snapshot(path)
            if neonize_sqlite.linked_device(session) is None:
                raise DriverError("no_session", f"{device_id}'s session holds no linked device")
            return ClientArgs(str(path))
        if neonize_sqlite.linked_device(session) is None:
            raise DriverError("bad_session", f"{device_id}'s session is not a whatsmeow store")
        digest = hashlib.sha256(session).hexdigest()
        if self._written.get(device_id) != digest or not path.exists():
            await asyncio.to_thread(neonize_sqlite.replace, path, session)
            self._written[device_id] = digest
        return ClientArgs(str(path))

    async def snapshot(self, device_id: str, jid: str) -> bytes:
        data = await neonize_sqlite.snapshot(self.path(device_id))
        self._written[device_id] = hashlib.sha256(data).hexdigest()
        return data

    async def forget(self, device_id: str) -> None:
        self._written.pop(device_id, None)
        await asyncio.to_thread(neonize_sqlite.remove, self.path(device_id))


class PostgresSessionStore:
    def __init__(self, url: str, clients: ClientFactory) -> None:
        self.url = url
        self._clients = clients

    async def for_pairing(self, device_id: str) -> ClientArgs:
        return ClientArgs(self.url, new_device=True)

    async def restore(self, device_id: str, session: bytes | None) -> ClientArgs:
        if session is None:
            raise DriverError("no_session", f"{device_id} has no stored session; pair it")
        jid = pointer_jid(session)
        if jid is None:
            raise DriverError("bad_session", f"{device_id}'s session is not a Postgres pointer")
        # Resuming a JID the store lacks would hand whatsmeow a nil device: a Go panic.
        linked = await asyncio.to_thread(self._clients.device_jids, self.url)
        if jid not in linked:
            raise DriverError("logged_out", f"{jid} is no longer linked in the session store")
        return ClientArgs(self.url, jid=jid)

    async def snapshot(self, device_id: str, jid: str) -> bytes:
        return json.dumps({"jid": jid}).encode()

    async def forget(self, device_id: str) -> None:
        """whatsmeow deletes a logged-out device from the database itself."""


def pointer_jid(session: bytes) -> str | None:
    try:
        jid = json.loads(session).get("jid")
    except (ValueError, AttributeError):
        return None
    return jid if isinstance(jid, str) and "@" in jid else None
