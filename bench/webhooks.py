"""Webhooks at campaign scale: how fast one endpoint receives `message.*` events.

Starts one durable nats-server and one durable Postgres in a temporary directory and the
webhook-service as its own process, and one receiver on 127.0.0.1 (a minimal HTTP/1.1 server
in this process that answers 204). First the raw receiver rate: the same number of POSTs
straight from this process with httpx, 16 in flight (the ceiling the service could reach on
this machine). Then one endpoint subscribed to `message.sent`, `.delivered` and `.read` is
created through the service's command, N `MessageSent` events (one per message, as a
campaign's gateway appends them) are appended in atomic batches, and the time from the first
append to the N-th delivered POST is the delivery rate. `--baseline DIR` first does the same
with an older webhook-service (its `src` directory put first on the service's PYTHONPATH;
own namespace and schema), so before and after are measured on one machine in one run.
Last, `backlog_queries` times the dispatcher's queries, old and current, with `--backlog`
pending deliveries in the table. Prints one JSON object.

    .venv/bin/python -m bench.webhooks [--events N] [--baseline DIR] [--out FILE] [--no-save]
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
from nats.aio.client import Client

from bench.output import options, print_and_save
from bench.servers import logs_shown_on_failure, servers, start_module
from bench.waiting import ready
from wacast.contracts import webhooks as wh
from wacast.contracts.base import Event
from wacast.contracts.messages import MessageSent
from wacast.contracts.subjects import Topology
from wacast.runtime.commands import Requester
from wacast.runtime.embedded import free_port, stop
from wacast.runtime.eventstore import MAX_BATCH, Append, EventStore
from wacast.runtime.provisioning import ensure_streams
from wacast.webhook_service.adapters.lookups import Lookups
from wacast.webhook_service.adapters.tables import DDL
from wacast.webhook_service.settings import Settings

OLD_WORK = """
SELECT tenant_id, webhook_id, min(next_attempt_at) AS due_at FROM (
    SELECT DISTINCT ON (tenant_id, webhook_id, resource) tenant_id, webhook_id, next_attempt_at
    FROM deliveries WHERE status = 'pending' ORDER BY tenant_id, webhook_id, resource, source_seq
) heads GROUP BY tenant_id, webhook_id
"""
OLD_DUE = """
SELECT * FROM (
    SELECT DISTINCT ON (resource) delivery_id, event_type, source_stream, source_seq, attempts,
        next_attempt_at, last_seq
    FROM deliveries WHERE tenant_id = $1 AND webhook_id = $2 AND status = 'pending'
    ORDER BY resource, source_seq
) heads WHERE next_attempt_at <= $3 ORDER BY source_seq LIMIT $4
"""
"""The dispatcher's queries before the `deliveries_ready` index (commit 09baa16)."""
TENANT = "acme"
TYPES = ["message.sent", "message.delivered", "message.read"]
RAW_IN_FLIGHT = 16


class Receiver:
    """Counts POSTs and answers each 204 at once (keep-alive)."""

    def __init__(self) -> None:
        self.count = 0
        self.ids: set[str] = set()
        self.reached = asyncio.Event()
        self.target = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hooks"

    def expect(self, n: int) -> None:
        self.count, self.target = 0, n
        self.ids.clear()
        self.reached.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readline():
                length, webhook_id = 0, ""
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                    elif name.lower() == "webhook-id":
                        webhook_id = value.strip()
                await reader.readexactly(length)
                self.count += 1
                if webhook_id:
                    self.ids.add(webhook_id)
                if self.count >= self.target:
                    self.reached.set()
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def raw_rate(url: str, receiver: Receiver, n: int) -> float:
    receiver.expect(n)
    gate = asyncio.Semaphore(RAW_IN_FLIGHT)
    body = b'{"type":"message.sent"}'
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=RAW_IN_FLIGHT)) as http:

        async def one() -> None:
            async with gate:
                await http.post(url, content=body, headers={"content-type": "application/json"})

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return n / (time.perf_counter() - started)


def start_service(
    nats_url: str, pg_url: str, namespace: str, port: int, log: Path, source: Path | None
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "WACAST_WEBHOOKS_SCHEMA": f"webhooks_{namespace}".replace("-", "_"),
        "WACAST_NATS_URL": nats_url,
        "WACAST_DATABASE_URL": pg_url,
        "WACAST_NAMESPACE": namespace,
        "WACAST_WEBHOOKS_PORT": str(port),
        "WACAST_URL_ALLOWLIST": "127.0.0.1",
        "WACAST_LOG_LEVEL": "WARNING",
    }
    if source is not None:  # an older webhook-service's `src` directory goes first
        env["PYTHONPATH"] = os.pathsep.join([str(source), env.get("PYTHONPATH", "")])
    return start_module("wacast.webhook_service", env, log)


def sent(n: int, at: datetime) -> Event:
    return MessageSent(
        tenant_id=TENANT,
        occurred_at=at,
        message_id=f"m{n:07d}",
        device_id=f"d{n % 50:02d}",
        lead_id=f"l{n:07d}",
        origin="campaign",
        origin_id="c1",
        wa_message_id=f"wa{n:07d}",
    )


async def delivery_rate(
    nc: Client,
    nats_url: str,
    pg_url: str,
    root: Path,
    receiver: Receiver,
    url: str,
    n: int,
    namespace: str,
    source: Path | None,
) -> dict[str, Any]:
    """Start a webhook-service (from `source` if given), create the endpoint, append N
    events and time them until the receiver has them all."""
    topology = Topology(namespace)
    await ensure_streams(nc, topology)
    port = free_port()
    proc = start_service(nats_url, pg_url, namespace, port, root / "service.log", source)
    try:
        await ready(port, proc)
        reply = await Requester(nc, topology, timeout=20).send(
            wh.CreateWebhook(tenant_id=TENANT, url=url, event_types=TYPES)
        )
        if not reply.ok:
            raise RuntimeError(f"cannot create the webhook: {reply}")
        await asyncio.sleep(0.01)  # the events below happen after the endpoint was created
        store = EventStore(nc, topology)
        at = datetime.now(UTC)
        events = [sent(i, at) for i in range(n)]
        receiver.expect(n)
        started = time.perf_counter()
        for first in range(0, n, MAX_BATCH):
            chunk = events[first : first + MAX_BATCH]
            await store.append_batch(
                [Append(e.subject(topology), e, f"bench.{first + i}") for i, e in enumerate(chunk)]
            )
        appended_s = time.perf_counter() - started
        timeout = max(120.0, n / 5)
        try:
            await asyncio.wait_for(receiver.reached.wait(), timeout)
        except TimeoutError:
            raise RuntimeError(f"{receiver.count} of {n} delivered in {timeout:g} s") from None
        took = time.perf_counter() - started
    finally:
        stop(proc)
    return {
        "delivered": receiver.count,
        "distinct_webhook_ids": len(receiver.ids),
        "delivered_per_s": round(n / took, 1),
        "seconds": {"append": round(appended_s, 2), "all_delivered": round(took, 2)},
    }


async def measure(
    nc: Client, nats_url: str, pg_url: str, root: Path, n: int, baseline: Path | None
) -> dict[str, Any]:
    receiver = Receiver()
    url = await receiver.start()
    raw = await raw_rate(url, receiver, n)
    result: dict[str, Any] = {"events": n, "raw_receiver_per_s": round(raw, 1)}
    if baseline is not None:
        before = await delivery_rate(
            nc, nats_url, pg_url, root, receiver, url, n, "benchbase", baseline
        )
        result["baseline"] = {"source": str(baseline), **before}
    current = await delivery_rate(nc, nats_url, pg_url, root, receiver, url, n, "bench", None)
    result.update(current)
    result["ratio_to_raw"] = round(current["delivered_per_s"] / raw, 3)
    if baseline is not None:
        result["speedup"] = round(
            current["delivered_per_s"] / result["baseline"]["delivered_per_s"], 2
        )
    return result


async def backlog_queries(pg_url: str, pending: int) -> dict[str, Any]:
    """Milliseconds of the dispatcher's work query and of one page of due deliveries with
    `pending` deliveries (one message each, as a campaign's) waiting for one endpoint: the
    old queries (a scan of every pending row) against the current ones (index ranges)."""
    conn = await asyncpg.connect(pg_url)
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=2)
    try:
        await conn.execute("CREATE SCHEMA backlog; SET search_path TO backlog")
        for statement in DDL:
            await conn.execute(statement)
        now = datetime.now(UTC)
        await conn.execute(
            "INSERT INTO webhooks VALUES ('t', 'w', 'u', '{*}', '', 's', $1, NULL, 1)", now
        )
        await conn.execute(
            "INSERT INTO deliveries (tenant_id, delivery_id, webhook_id, event_type, resource,"
            " source_stream, source_seq, status, next_attempt_at, queued_at, updated_at,"
            " queued_seq, last_seq) SELECT 't', 'd' || g, 'w', 'message.sent', 'message:m' || g,"
            " 'MESSAGES', g, 'pending', $1, $1, $1, g, g FROM generate_series(1, $2) g",
            now,
            pending,
        )
        await conn.execute("ANALYZE deliveries")
        lookups = Lookups(pool, "backlog")
        page = Settings().webhook_batch

        async def ms(query: Callable[[], Awaitable[Any]], rounds: int = 5) -> float:
            started = time.perf_counter()
            for _ in range(rounds):
                await query()
            return round((time.perf_counter() - started) / rounds * 1000, 2)

        return {
            "pending": pending,
            "page": page,
            "old_work_ms": await ms(lambda: conn.fetch(OLD_WORK)),
            "old_due_page_ms": await ms(lambda: conn.fetch(OLD_DUE, "t", "w", now, page)),
            "work_ms": await ms(lookups.work),
            "due_page_ms": await ms(lambda: lookups.due("t", "w", now, page)),
        }
    finally:
        await pool.close()
        await conn.close()


def run(n: int, baseline: Path | None, backlog: int) -> dict[str, Any]:
    with servers("wacast-bench-webhooks-") as up:

        async def go() -> dict[str, Any]:
            nc = await nats.connect(up.nats.url)
            try:
                result = await measure(nc, up.nats.url, up.postgres.url(), up.root, n, baseline)
            finally:
                await nc.drain()
            if backlog:
                result["backlog_queries"] = await backlog_queries(up.postgres.url(), backlog)
            return result

        with logs_shown_on_failure(up.root / "service.log"):
            result = asyncio.run(go())
        result["machine"] = {"cpu_count": os.cpu_count(), "python": sys.version.split()[0]}
        return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = options(__doc__)
    parser.add_argument("--events", type=int, default=5_000, help="events for the one endpoint")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="an older webhook-service's src directory, measured first in the same run "
        "(e.g. from `git archive <commit> services/webhook-service/src`)",
    )
    parser.add_argument(
        "--backlog",
        type=int,
        default=100_000,
        help="pending deliveries for timing the dispatcher's queries, old and new (0: skip)",
    )
    args = parser.parse_args(argv)
    if args.events < 1:
        parser.error("--events must be at least 1")
    print_and_save("webhooks", run(args.events, args.baseline, args.backlog), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
