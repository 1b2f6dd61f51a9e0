"""What every query shares: errors, cursors, time zones, JSON columns."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, time
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from wacast.runtime.projection import DbConnection

T = TypeVar("T")


class NotFound(Exception):
    """The tenant has no such object (whether another tenant has one is never told)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"No such {what}")
        self.what = what


class BadRequest(Exception):
    """A request the query cannot answer as asked (e.g. a malformed cursor)."""


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"c1:{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The position after which the next page starts (0 for the first page)."""
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, _, position = raw.partition(":")
        if tag != "c1" or not position.isdigit():
            raise ValueError(raw)
        return int(position)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("cursor is not one this API returned") from None


def page_end(rows: list[Any], limit: int, key: str = "seq") -> tuple[list[Any], str | None]:
    """Rows of this page and the cursor of the next (None on the last page); the query
    fetched `limit + 1` rows to know whether there is a next page."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(int(rows[-1][key]))


def decode_json(raw: str | None, type_: type[T]) -> T:
    return msgspec.json.decode(raw or "null", type=type_)


async def tenant_zone(conn: DbConnection, tenant_id: str) -> ZoneInfo:
    name = await conn.fetchval("SELECT timezone FROM tenants WHERE tenant_id = $1", tenant_id)
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_midnight(now: datetime, zone: ZoneInfo) -> datetime:
    """Start of `now`'s day in `zone` (what "today" means for sends today)."""
    return datetime.combine(now.astimezone(zone).date(), time(0), tzinfo=zone)


class Where:
    """A WHERE clause built from the filters actually given, so that each combination gets
    its own plan (a catch-all `$n IS NULL OR ...` would defeat the indexes)."""

    def __init__(self, first: str, *args: object) -> None:
        self.clauses = [first]
        self.args: list[object] = list(args)

    def add(self, clause: str, value: object) -> None:
        """`clause` names its one parameter `$?`."""
        self.args.append(value)
        self.clauses.append(clause.replace("$?", f"${len(self.args)}"))

    def param(self, value: object) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def sql(self) -> str:
        return "WHERE " + " AND ".join(self.clauses)
