"""A device's whatsmeow SQLite session file: snapshot, check, restore, remove.

The Go library links its own copy of SQLite and keeps the file open (even after its client
is stopped: neonize never closes the store). Two SQLite copies in one process corrupt each
other's locks, and so does Python merely opening and closing the file: POSIX drops every
lock a process holds on a file when any of its descriptors on it closes. So this process
never opens a live session file: snapshots are taken by a short-lived child process with
SQLite's online backup (consistent even while whatsmeow writes), restores replace the file
by rename while no client runs for the device, and stored bytes are checked in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
from pathlib import Path

from wacast.device_gateway.drivers.base import DriverError

_SNAPSHOT = """
import pathlib, sqlite3, sys
uri = pathlib.Path(sys.argv[1]).resolve().as_uri() + "?mode=ro"
source = sqlite3.connect(uri, uri=True, timeout=10)
copy = sqlite3.connect(":memory:")
source.backup(copy)
source.close()
sys.stdout.buffer.write(copy.serialize())
"""
_FORMAT_VERSIONS = slice(18, 20)
"""Header bytes saying rollback journal (1) or write-ahead log (2): an image of a WAL
database cannot be opened in memory until they say 1 (the file works either way)."""
SNAPSHOT_TIMEOUT = 30.0
_COMPANIONS = ("-wal", "-shm", "-journal")


async def snapshot(path: Path) -> bytes:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        "-S",
        "-c",
        _SNAPSHOT,
        str(path),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        data, errors = await asyncio.wait_for(process.communicate(), SNAPSHOT_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise DriverError("session_unreadable", f"snapshot of {path} timed out") from None
    if process.returncode != 0:
        detail = errors.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise DriverError("session_unreadable", f"snapshot of {path} failed: {detail[0]}")
    return _rollback_journal(data)


def linked_device(data: bytes) -> str | None:
    """The JID of the device linked in a session image, None when it holds none."""
    memory = sqlite3.connect(":memory:")
    try:
        memory.deserialize(_rollback_journal(data))
        row = memory.execute("SELECT jid FROM whatsmeow_device LIMIT 1").fetchone()
    except sqlite3.DatabaseError:
        return None
    finally:
        memory.close()
    return str(row[0]) if row else None


def _rollback_journal(data: bytes) -> bytes:
    if data[_FORMAT_VERSIONS] != b"\x02\x02":
        return data
    image = bytearray(data)
    image[_FORMAT_VERSIONS] = b"\x01\x01"
    return bytes(image)


def replace(path: Path, data: bytes) -> None:
    """Make `data` the session file at `path` (no client may have it open)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    remove_companions(path)
    os.replace(temporary, path)


def remove(path: Path) -> None:
    remove_companions(path)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def remove_companions(path: Path) -> None:
    """A stale journal or WAL next to a replaced file would be replayed into it."""
    for suffix in _COMPANIONS:
        with contextlib.suppress(FileNotFoundError):
            path.with_name(path.name + suffix).unlink()
