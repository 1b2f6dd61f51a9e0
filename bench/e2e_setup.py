"""The e2e run's stage, not measured: devices linked, leads appended, projections caught up."""

from __future__ import annotations

from datetime import UTC, datetime

from bench.e2e_clients import Clients
from bench.seeding import append_in_batches, append_leads, linking
from bench.waiting import until
from wacast.runtime.eventstore import EventStore


async def link_devices(clients: Clients, count: int, timeout: float) -> list[str]:
    """Register and link `count` devices by phone code, until the simulator sees them all."""
    store = EventStore(clients.nc, clients.topology, timeout=30)
    now = datetime.now(UTC)
    ids = [f"d{n:05d}" for n in range(count)]
    await append_in_batches(store, linking(clients.topology, clients.tenant, ids, now))

    async def linked() -> bool:
        return int((await clients.sim("/sim/v1/stats"))["devices_connected"]) >= len(ids)

    await until(linked, timeout, "every device linked")
    return ids


async def add_leads(clients: Clients, count: int, device_ids: list[str]) -> None:
    store = EventStore(clients.nc, clients.topology, timeout=30)
    await append_leads(
        store,
        clients.topology,
        clients.tenant,
        count,
        device_ids,
        datetime.now(UTC),
        # never ending in 0000: the simulator has those numbers off WhatsApp
        phone=lambda n: f"+1212{n:06d}1",
    )


async def checkpoints(clients: Clients) -> dict[tuple[str, str], int]:
    """Every projection's checkpoint in the stack's database, by (schema, stream)."""
    async with clients.pool.acquire() as conn:
        schemas = await conn.fetch(
            "SELECT table_schema FROM information_schema.tables "
            "WHERE table_name = 'projection_checkpoints'"
        )
        found: dict[tuple[str, str], int] = {}
        for row in schemas:
            schema = row["table_schema"]
            for cp in await conn.fetch(
                f'SELECT stream, max(seq) AS seq FROM "{schema}".projection_checkpoints '
                "GROUP BY stream"
            ):
                found[(schema, cp["stream"])] = int(cp["seq"])
    return found


async def settled(clients: Clients, timeout: float) -> float:
    """Seconds until every projection has reached the end of LEADS and DEVICES."""
    ends = {key: await clients.stream_end(key) for key in ("LEADS", "DEVICES")}

    async def caught_up() -> bool:
        found = await checkpoints(clients)
        behind = [k for k, seq in found.items() if k[1] in ends and seq < ends[k[1]]]
        return bool(found) and not behind

    return await until(caught_up, timeout, "projections caught up")
