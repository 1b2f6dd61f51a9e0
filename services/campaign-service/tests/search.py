"""Where a piece of personal data is still kept: every stream of the test's namespace (KV and
object store buckets and dead letters included) and every table of some schemas."""

from __future__ import annotations

import asyncpg
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from wacast.contracts.subjects import Topology


async def stored_with(nc: Client, topology: Topology, text: str) -> list[str]:
    """`<stream> <subject>` of each stored message whose payload holds `text`."""
    js = nc.jetstream()
    prefix = topology.prefix.upper()
    found = []
    for info in await js.streams_info():
        name = info.config.name or ""
        if prefix not in name.upper() or not info.state.messages:
            continue
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            try:
                msg = await js.get_msg(name, seq)
            except NotFoundError:
                continue
            if text.encode() in (msg.data or b""):
                found.append(f"{name} {msg.subject}")
    return found


async def tables_with(database_url: str, schemas: list[str], text: str) -> list[str]:
    """`<schema>.<table>` of each row holding `text` in any column (bytes read as UTF-8)."""
    conn = await asyncpg.connect(database_url)
    try:
        found = []
        for schema in schemas:
            tables = await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema
            )
            assert tables, f"schema {schema} has no tables"
            for (table,) in tables:
                for row in await conn.fetch(f'SELECT * FROM "{schema}"."{table}"'):
                    for value in row.values():
                        shown = (
                            value.decode(errors="replace") if isinstance(value, bytes) else value
                        )
                        if text in str(shown):
                            found.append(f"{schema}.{table}")
        return found
    finally:
        await conn.close()
