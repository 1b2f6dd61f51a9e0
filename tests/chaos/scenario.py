"""A campaign run under chaos, and the checks that nothing was lost, sent twice, or projected
wrongly.

`Scenario` pairs simulator devices for a fresh tenant, imports the leads as one CSV, and
starts a campaign with small gaps. While it runs, a chaos plan hurts the stack (kill -9,
restarts). Afterwards `verify` holds the run to the contract:

- the campaign completes: every message has a final outcome in the report;
- zero duplicates: the simulator's ledger holds each message id at most once, and each lead
  got at most one message of the campaign;
- zero lost: a lead the report counts as sent is in the ledger, and a lead the ledger does
  not show has its message failed with a reason in the report; a message the network did
  accept is never reported failed for a reason that claims it was not sent;
- every projection equals a replay from zero (`projections_equal_rebuild`), and nothing was
  dead-lettered (a restart is never an event's fault).

Sizes come from the environment: `WACAST_CHAOS_MESSAGES` (default 2,000; the full run is
20,000), `WACAST_CHAOS_DEVICES` (default one per 200 messages, at least 4) and
`WACAST_CHAOS_DEADLINE` (seconds for the whole test after the stack is up).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from tests.e2e.helpers import api_client, connect_sim_device, ok, sim_client, until
from wacast.cli.stackrun import RunningStack
from wacast.contracts.streams import DEAD_LETTER_KEY
from wacast.runtime.deadletter import DeadLetters
from wacast.runtime.projection import DbConnection, ProjectionRunner
from wacast.runtime.registry import discover

MESSAGES = int(os.environ.get("WACAST_CHAOS_MESSAGES", "2000"))
DEVICES = int(os.environ.get("WACAST_CHAOS_DEVICES", "0")) or max(4, MESSAGES // 200)
DEADLINE = float(os.environ.get("WACAST_CHAOS_DEADLINE", "0")) or max(300.0, MESSAGES * 0.06)
"""Seconds the test may take once the stack is up (set-up, campaign, checks)."""
STEP_SECONDS = 3.0
"""Longest wait between two chaos steps."""
NOT_ON_WHATSAPP_EVERY = 250
"""Every this-many-th lead has a number the simulator says is not on WhatsApp."""
SENT = ("sent", "delivered", "read")
NOT_SENT_REASONS = ("not_on_whatsapp", "banned", "rejected", "transient_exhausted")
"""Failure reasons that claim the network never took the message."""

CHAOS_ENV = {
    "WACAST_SIM_PROFILE": "realistic",
    "WACAST_SIM_PAIR_DELAY": "0",
    # Realistic latencies and transient failures, shortened so a bounded run fits in CI; no
    # ban model (the campaign's gaps are far below what a real network tolerates).
    "WACAST_SIM_SEND_LATENCY": "0.05",
    "WACAST_SIM_DELIVERY_LATENCY": "0.2",
    "WACAST_SIM_READ_LATENCY": "0.5",
    "WACAST_SIM_BAN_MIN_GAP": "0",
    "WACAST_SIM_BAN_MAX_PER_MINUTE": "1000000",
    # A killed gateway's partitions are free again within seconds.
    "WACAST_LEASE_TTL_SECONDS": "8",
    "WACAST_LEASE_RENEW_SECONDS": "2",
    "WACAST_RATE_LIMIT_PER_SECOND": "0",
    # Per-message INFO lines (faststream's "Received"/"Processed") cost CPU the run needs.
    "WACAST_LOG_LEVEL": os.environ.get("WACAST_CHAOS_LOG_LEVEL", "WARNING"),
}


ABSENT_PREFIX = "447901"
"""Numbers that are not on WhatsApp start so (without the +)."""
ABSENT_OUTCOMES = {("failed", "not_on_whatsapp"), ("failed", "unknown")}


def lead_phone(i: int) -> str:
    """UK mobile numbers; every `NOT_ON_WHATSAPP_EVERY`-th ends in 0000 (not on WhatsApp)."""
    if i % NOT_ON_WHATSAPP_EVERY == 0:
        return f"+{ABSENT_PREFIX}{i // NOT_ON_WHATSAPP_EVERY:02d}0000"
    return f"+447900{i:06d}"


def device_phone(i: int) -> str:
    return f"+447911{i + 1:06d}"


def digits(phone_or_jid: str) -> str:
    return phone_or_jid.split("@", 1)[0].lstrip("+")


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = time.monotonic()
        self.at = self.started + seconds

    def left(self, what: str) -> float:
        remaining = self.at - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"chaos deadline of {self.seconds:.0f}s passed before {what}")
        return remaining

    def elapsed(self) -> float:
        return time.monotonic() - self.started


@dataclass
class Event:
    what: str
    at: float
    """Seconds since the campaign was triggered."""
    ledger: int
    """Messages the network had accepted when it began."""
    took: float = 0.0
    """Seconds the action itself took (a kill: until the process exited; a restart: until
    the server was healthy again)."""


@dataclass
class Scenario:
    stack: RunningStack
    messages: int = MESSAGES
    devices: int = DEVICES
    deadline: Deadline = field(default_factory=lambda: Deadline(DEADLINE))
    tenant_key: str = ""
    campaign_id: str = ""
    device_ids: list[str] = field(default_factory=list)
    triggered_at: float = 0.0
    events: list[Event] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def api(self) -> httpx.AsyncClient:
        return api_client(self.stack, self.tenant_key, timeout=30)

    def sim(self) -> httpx.AsyncClient:
        return sim_client(self.stack, timeout=30)

    # -- set-up ----------------------------------------------------------------------------

    async def prepare(self) -> None:
        """A fresh tenant, its devices paired by QR, the leads imported from one CSV."""
        tenant = await self.stack.create_tenant(f"chaos-{os.getpid()}-{int(time.time())}")
        self.tenant_key = tenant.key
        async with self.api() as api, self.sim() as sim:
            limit = asyncio.Semaphore(8)

            async def pair(i: int) -> str:
                async with limit:
                    device = await connect_sim_device(
                        api,
                        sim,
                        f"chaos-{i}",
                        device_phone(i),
                        timeout=self.deadline.left("pairing"),
                    )
                    return str(device["id"])

            self.device_ids = list(await asyncio.gather(*(pair(i) for i in range(self.devices))))
            await self.import_leads(api)

    async def import_leads(self, api: httpx.AsyncClient) -> None:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["phone", "name", "tags", "device_id"])
        for i in range(1, self.messages + 1):
            device = self.device_ids[i % len(self.device_ids)]
            writer.writerow([lead_phone(i), f"Lead {i}", "chaos", device])
        started = ok(
            await api.post(
                "/leads/import", files={"file": ("chaos.csv", out.getvalue().encode(), "text/csv")}
            )
        )
        import_id = started["import_id"]
        written = {"after_seq": started["seq"], "after_stream": started["stream"]}

        async def done() -> dict[str, Any] | None:
            response = await api.get(f"/leads/imports/{import_id}", params=written)
            found: dict[str, Any] = ok(response)
            return found if found["status"] != "running" else None

        result = await until(done, "the lead import", self.deadline.left("the import"), 0.5)
        assert result["status"] == "completed", result
        assert result.get("failed", 0) == 0, result

    async def trigger(self) -> None:
        body = {
            "name": "chaos",
            "audience": {"tags": ["chaos"]},
            "message": {"text": "Hello {name}, this is the chaos campaign"},
            "pacing": {"min_seconds": 0.01, "max_seconds": 0.05},
            "retry": {"max_attempts": 3, "backoff_seconds": 0.5},
        }
        async with self.api() as api:
            self.campaign_id = ok(await api.post("/campaigns", json=body))["id"]
        self.triggered_at = time.monotonic()

    # -- during the run ----------------------------------------------------------------------

    async def accepted(self) -> int:
        """Messages the simulated network has accepted so far (all tenants)."""
        async with self.sim() as sim:
            page = ok(await sim.get("/sim/v1/ledger", params={"after": 1 << 62, "limit": 1}))
            return int(page["received"])

    async def campaign(self) -> dict[str, Any] | None:
        """The campaign as the API shows it now; None while the API is not answering."""
        with contextlib.suppress(httpx.TransportError):
            async with self.api() as api:
                response = await api.get(f"/campaigns/{self.campaign_id}")
                if response.status_code == 200:
                    found: dict[str, Any] = response.json()
                    return found
        return None

    async def hurt(self, what: str, action: Callable[[], Awaitable[None]]) -> None:
        """Run one chaos action and record when it happened and how long it took."""
        ledger = -1
        with contextlib.suppress(httpx.TransportError):
            ledger = await self.accepted()
        event = Event(what, time.monotonic() - self.triggered_at, ledger)
        self.events.append(event)
        started = time.monotonic()
        await action()
        event.took = time.monotonic() - started
        print(f"chaos: {event}", flush=True)

    async def spaced(self, steps: Sequence[tuple[str, Callable[[], Awaitable[None]]]]) -> None:
        """Run `steps` one after another, spread over the campaign: each waits until the
        network has taken another share of the messages, or `STEP_SECONDS` passed. A killed
        service is not waited for before the next step (it comes back meanwhile); at the
        end every process must be healthy again."""
        share = self.messages // (len(steps) + 2)
        for n, (what, action) in enumerate(steps, start=1):
            waited = time.monotonic()
            while time.monotonic() - waited < STEP_SECONDS:
                with contextlib.suppress(httpx.TransportError):
                    if await self.accepted() >= n * share:
                        break
                await asyncio.sleep(0.2)
            await self.hurt(what, action)
        started = time.monotonic()
        await self.stack.wait_healthy(timeout=self.deadline.left("the stack recovering"))
        self.figures["recovered_seconds"] = round(time.monotonic() - started, 1)

    async def wait_completed(self, chaos: asyncio.Task[None]) -> dict[str, Any]:
        """Wait (bounded) until the chaos is over and every message has an outcome."""
        last: dict[str, Any] | None = None
        shown = time.monotonic()
        while True:
            if time.monotonic() - shown > 10:
                shown = time.monotonic()
                found = await self.campaign()
                counts = found["counts"] if found else None
                print(f"chaos: {time.monotonic() - self.triggered_at:.0f}s {counts}", flush=True)
            if chaos.done():
                chaos.result()  # a failed chaos step fails the test now
                found = await self.campaign()
                if found is not None:
                    last = found
                    counts = found["counts"]
                    waiting = counts["pending"] + counts["queued"]
                    if found["status"] in ("completed", "finished") and waiting == 0:
                        self.figures["campaign_seconds"] = round(
                            time.monotonic() - self.triggered_at, 1
                        )
                        return found
            if time.monotonic() > self.deadline.at:
                chaos.cancel()
                raise AssertionError(
                    f"the campaign did not complete within the {self.deadline.seconds:.0f}s "
                    f"deadline; last seen: {last}; chaos: {self.events}"
                )
            await asyncio.sleep(0.5)

    async def run(self, plan: Callable[[Scenario], Coroutine[Any, Any, None]]) -> None:
        """Trigger the campaign, run the chaos plan alongside, wait until it completed,
        and verify the contract."""
        await self.trigger()
        chaos = asyncio.create_task(plan(self))
        try:
            campaign = await self.wait_completed(chaos)
        finally:
            if not chaos.done():
                chaos.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await chaos
        await self.verify(campaign)
        await projections_equal_rebuild(self.stack, self.deadline)
        await no_dead_letters(self.stack)
        self.figures.update(
            messages=self.messages,
            devices=self.devices,
            total_seconds=round(self.deadline.elapsed(), 1),
            events=[(e.what, round(e.at, 1), e.ledger, round(e.took, 1)) for e in self.events],
            restarts={k: v for k, v in self.stack.restarts().items() if v},
        )
        print(f"chaos figures: {self.figures}")

    # -- the checks -------------------------------------------------------------------------

    async def report_rows(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        cursor: str | None = None
        async with self.api() as api:
            while True:
                params: dict[str, Any] = {"limit": 500}
                if cursor:
                    params["cursor"] = cursor
                page = ok(await api.get(f"/campaigns/{self.campaign_id}/messages", params=params))
                rows.extend(page["items"])
                cursor = page.get("next_cursor")
                if not cursor:
                    return rows

    async def ledger(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        after = 0
        async with self.sim() as sim:
            while True:
                page = ok(await sim.get("/sim/v1/ledger", params={"after": after, "limit": 50_000}))
                entries.extend(page["entries"])
                if not page["entries"]:
                    return entries
                after = page["next_after"]

    async def verify(self, campaign: dict[str, Any]) -> None:
        counts = campaign["counts"]
        assert counts["total"] == self.messages, counts
        assert counts["success"] + counts["failed"] == self.messages, counts

        rows = await self.report_rows()
        entries = [e for e in await self.ledger() if e["campaign_id"] == self.campaign_id]
        by_id = Counter(e["origin_message_id"] for e in entries)
        by_lead = Counter(digits(e["to"]) for e in entries)
        duplicates = {k: n for k, n in by_id.items() if n > 1}
        twice = {k: n for k, n in by_lead.items() if n > 1}
        flagged = [e for e in entries if e["duplicate"]]
        assert not duplicates, f"message ids the network got more than once: {duplicates}"
        assert not twice, f"leads that got the campaign more than once: {twice}"
        assert not flagged, f"the simulator flagged duplicates: {flagged[:5]}"

        assert len(rows) == self.messages, f"{len(rows)} messages in the report"
        assert len({r["lead_id"] for r in rows}) == self.messages
        lost: list[dict[str, Any]] = []
        wrong: list[dict[str, Any]] = []
        for row in rows:
            got = by_id.get(row["id"], 0) or by_lead.get(digits(row["lead_phone"]), 0)
            if row["status"] in SENT and not got:
                lost.append(row)  # reported sent, never reached the network
            elif row["status"] == "failed" and not row["reason"]:
                lost.append(row)
            elif row["status"] not in SENT and row["status"] != "failed":
                lost.append(row)  # no final outcome
            elif row["status"] == "failed" and got and row["reason"] in NOT_SENT_REASONS:
                wrong.append(row)  # the network has it, the report says it was not sent
        assert not lost, f"{len(lost)} messages lost, e.g. {lost[:5]}"
        assert not wrong, f"{len(wrong)} messages reported not sent but delivered: {wrong[:5]}"
        reasons = Counter(r["reason"] for r in rows if r["status"] == "failed")
        absent = [r for r in rows if digits(r["lead_phone"]).startswith(ABSENT_PREFIX)]
        assert len(absent) == self.messages // NOT_ON_WHATSAPP_EVERY
        # A send in flight when its gateway was killed ends `unknown`, whoever the number
        # (the gateway cannot know what the network did, and never sends twice); nothing
        # else may happen to a number that is not on WhatsApp, nor that reason to another.
        odd = [r for r in absent if (r["status"], r["reason"]) not in ABSENT_OUTCOMES]
        assert not odd, f"numbers not on WhatsApp with another outcome: {odd}"
        flagged_absent = sum(r["reason"] == "not_on_whatsapp" for r in absent)
        assert reasons["not_on_whatsapp"] == flagged_absent, reasons
        self.figures.update(
            accepted=len(entries),
            failed_by_reason=dict(reasons),
            success=counts["success"],
        )


# -- projections equal a rebuild ----------------------------------------------------------------


Table = tuple[list[str], list[tuple[object, ...]]]
"""Column names, and the rows sorted."""


async def dump(conn: DbConnection, schema: str) -> dict[str, Table]:
    """Every table of `schema` but the checkpoints."""
    columns: dict[str, list[str]] = {}
    for row in await conn.fetch(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = $1 ORDER BY table_name, ordinal_position",
        schema,
    ):
        columns.setdefault(row["table_name"], []).append(row["column_name"])
    found: dict[str, Table] = {}
    for table, names in columns.items():
        if table != "projection_checkpoints":
            rows = await conn.fetch(f'SELECT * FROM "{schema}"."{table}"')
            found[table] = (names, sorted((tuple(r) for r in rows), key=repr))
    return found


async def checkpoints(conn: DbConnection, schema: str, name: str) -> dict[str, int]:
    rows = await conn.fetch(
        f'SELECT stream, seq FROM "{schema}".projection_checkpoints WHERE projection = $1', name
    )
    return {row["stream"]: int(row["seq"]) for row in rows}


async def projections_equal_rebuild(stack: RunningStack, deadline: Deadline) -> list[str]:
    """For every registered projection: once its live tables have caught up with the streams,
    replay the streams from zero into a scratch schema (the runtime's own runner, as
    `wacast projections rebuild` does) and compare every table. Returns the names checked."""
    checked: list[str] = []
    pool = await asyncpg.create_pool(stack.database_url, min_size=1, max_size=4)
    try:
        async with stack.nats() as nc:
            js = nc.jetstream()
            dead_letters = DeadLetters(nc, stack.topology)
            for registration in discover():
                projection = registration.factory()
                scratch = f"{registration.schema}__chaos"
                while True:
                    ends = {
                        spec.key: int(
                            (await js.stream_info(spec.name(stack.topology))).state.last_seq
                        )
                        for spec in projection.streams
                    }
                    async with pool.acquire() as conn:
                        # One snapshot: the tables exactly as of the checkpoints read with them.
                        async with conn.transaction(isolation="repeatable_read", readonly=True):
                            live_at = await checkpoints(
                                conn, registration.schema, registration.name
                            )
                            live = await dump(conn, registration.schema) if live_at == ends else {}
                        if live_at != ends:
                            deadline.left(f"{registration.name} catching up ({live_at} < {ends})")
                            await asyncio.sleep(0.3)
                            continue
                        await conn.execute(f'DROP SCHEMA IF EXISTS "{scratch}" CASCADE')
                    runner = ProjectionRunner(
                        registration.factory(),
                        pool=pool,
                        nc=nc,
                        topology=stack.topology,
                        schema=scratch,
                        dead_letters=dead_letters,
                    )
                    reached = await asyncio.wait_for(
                        runner.catch_up(), deadline.left(f"replaying {registration.name}")
                    )
                    async with pool.acquire() as conn:
                        rebuilt = await dump(conn, scratch)
                        await conn.execute(f'DROP SCHEMA IF EXISTS "{scratch}" CASCADE')
                    if reached != live_at:
                        deadline.left(f"{registration.name} holding still for a comparison")
                        continue  # events arrived meanwhile (late receipts): compare again
                    break
                for table in sorted(set(live) | set(rebuilt)):
                    assert live.get(table) == rebuilt.get(table), (
                        f"{registration.schema}.{table} differs from a rebuild: "
                        f"{diff(live.get(table), rebuilt.get(table))}; live checkpoints "
                        f"{live_at}; what the runners logged: {projection_log(stack)}"
                    )
                checked.append(registration.name)
    finally:
        await pool.close()
    return checked


async def no_dead_letters(stack: RunningStack) -> None:
    """A restart is never an event's fault: nothing may land in the dead-letter stream."""
    async with stack.nats() as nc:
        js = nc.jetstream()
        stream = stack.topology.stream(DEAD_LETTER_KEY)
        count = (await js.stream_info(stream)).state.messages
        if count:
            sub = await js.pull_subscribe("", durable=None, stream=stream)
            letters = await sub.fetch(min(count, 5), timeout=5)
            shown = [(m.subject, dict(m.headers or {})) for m in letters]
            raise AssertionError(f"{count} dead letters after the chaos, e.g. {shown}")


def projection_log(stack: RunningStack, most: int = 12) -> list[str]:
    """The projection runners' warnings in every service's log (a failure's first clue)."""
    found: list[str] = []
    for name in stack.pids():
        path = stack.log(name)
        if path.exists():
            lines = path.read_text(errors="replace").splitlines()
            found += [f"{name}: {line[:300]}" for line in lines if "wacast.projection" in line]
    return found[-most:]


def diff(live: Table | None, rebuilt: Table | None) -> str:
    if live is None or rebuilt is None:
        return f"the table exists only {'live' if rebuilt is None else 'in the rebuild'}"
    if live[0] != rebuilt[0]:
        return (
            f"columns differ: live {live[0]}, rebuilt {rebuilt[0]} (did the code change under "
            "the running stack?)"
        )
    only_live = [r for r in live[1] if r not in rebuilt[1]]
    only_rebuilt = [r for r in rebuilt[1] if r not in live[1]]
    return (
        f"columns {live[0]}; {len(only_live)} rows only live, e.g. {only_live[:3]}; "
        f"{len(only_rebuilt)} only rebuilt, e.g. {only_rebuilt[:3]}"
    )
