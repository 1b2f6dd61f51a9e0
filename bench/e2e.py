"""The whole stack end to end: one campaign from its trigger to a report with every message.

Runs the embedded stack (`wacast.cli.stackrun.running_stack`: nats-server with durable
JetStream, durable Postgres, every service and the wa-simulator, each its own process) with
the simulator's `bench` profile (no ban model, no latency to speak of) and no typing delay.

Setup (not measured): `--devices` devices (1,000) registered and linked by phone code (the
events the command handler appends, in atomic batches; the simulator links them at once)
until the simulator sees them all connected; `--leads` leads (100,000) appended with their
phone claims, spread over the devices; then every projection in the stack catches up.

Measured: `POST /campaigns` to all leads with zero pacing (it triggers at once), then every
`--every` seconds the simulator's count of sends, the campaign's counts in the report
tables, the MESSAGES stream's end against the report projection's checkpoint, and CPU and
RSS of every process, until every message is read (the bench profile reads them all) and
`GET /campaigns/{id}/report` shows each with an outcome. Then, on the same nats-server,
the raw atomic-batch publish rate (bench/bus.py's hand-made batches of 500).

Prints one JSON object, writes plots to `--plot-dir` (docs/perf), and saves the JSON under
bench/results unless `--no-save`. `--profile SERVICE,...` runs those services under cProfile
(slower: a separate run) and adds their top functions.

    .venv/bin/python -m bench.e2e [--devices N] [--leads N] [--profile device-gateway]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
import psutil
from nats.aio.client import Client
from nats.errors import Error as NatsError

from bench.bus import Bench as BusBench
from bench.bus import Sizes as BusSizes
from wacast.cli.stackrun import RunningStack, running_stack
from wacast.contracts.devices import DevicePairingStarted, DeviceRegistered
from wacast.contracts.ids import phone_key
from wacast.contracts.leads import LeadCreated, LeadPhoneClaimed
from wacast.contracts.streams import MESSAGES
from wacast.contracts.subjects import Topology
from wacast.runtime.embedded import nats_server_binary
from wacast.runtime.eventstore import Append, EventStore

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PLOTS = ROOT / "docs" / "perf"
MB = 1024 * 1024
AIMS = {"messages_per_minute": 250_000.0, "e2e_ratio": 0.1, "time_to_first_send_s": 1.0}
BENCH_ENV = {
    "WACAST_SIM_PROFILE": "bench",
    "WACAST_SIM_PAIR_DELAY": "0.05",
    "WACAST_TYPING_MAX_SECONDS": "0",
    "WACAST_LOG_LEVEL": "WARNING",
}
PROFILE_HOOK = """
import atexit, cProfile, os, sys
_target = os.environ.get("WACAST_BENCH_PROFILE_MODULES", "").split(",")
_argv = getattr(sys, "orig_argv", [])
if "-m" in _argv and _argv[_argv.index("-m") + 1] in _target:
    _profile = cProfile.Profile()
    _out = os.path.join(
        os.environ["WACAST_BENCH_PROFILE_DIR"], _argv[_argv.index("-m") + 1] + ".pstats"
    )
    def _dump():
        _profile.disable()
        _profile.dump_stats(_out)
    atexit.register(_dump)
    _profile.enable()
"""
"""A `sitecustomize` that profiles the chosen services' main thread from start to exit."""


def note(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        await asyncio.sleep(0.25)
    return time.monotonic() - started


def percentile(values: Sequence[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


# processes ------------------------------------------------------------------------------


def tree(pid: int) -> list[psutil.Process]:
    """A process and its descendants (Postgres forks a backend per connection)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def usage(pid: int, *, children: bool) -> tuple[float, int]:
    """CPU seconds (user + system) and memory of a process; with `children`, of its whole
    tree (reaped children's CPU included) and memory as the sum of PSS (shared pages split
    among the processes sharing them: Postgres backends share its buffers)."""
    procs = tree(pid) if children else tree(pid)[:1]
    cpu, memory = 0.0, 0
    for n, proc in enumerate(procs):
        try:
            times = proc.cpu_times()
            memory += proc.memory_full_info().pss if children else proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        cpu += times.user + times.system
        if n == 0 and children:
            cpu += times.children_user + times.children_system
    return cpu, memory


TREES = {"postgres"}
"""Processes measured with their children."""


# samples --------------------------------------------------------------------------------


@dataclass
class Sample:
    at: float
    """Seconds since the trigger."""
    sent: int
    """Sends the simulator accepted."""
    counts: dict[str, int]
    """The campaign's messages by status in the report tables."""
    stream_end: int
    """The MESSAGES stream's last sequence."""
    projected: int
    """The report projection's checkpoint on MESSAGES."""


@dataclass
class Usage:
    at: float
    cpu: dict[str, float]
    """CPU seconds used so far."""
    memory: dict[str, int]
    """RSS (PSS summed over the tree for processes in TREES)."""


class Processes:
    """Samples CPU and memory of the stack's processes every `every` seconds (psutil walks
    every process: slower than the progress samples, so on a task of its own)."""

    def __init__(self, pids: dict[str, int], started: float, every: float) -> None:
        self.pids = pids
        self.started = started
        self.every = every
        self.usage: list[Usage] = []

    def take(self) -> Usage:
        used = {name: usage(pid, children=name in TREES) for name, pid in self.pids.items()}
        return Usage(
            time.monotonic() - self.started,
            {name: u[0] for name, u in used.items()},
            {name: u[1] for name, u in used.items()},
        )

    async def run(self) -> None:
        while True:
            self.usage.append(await asyncio.to_thread(self.take))
            await asyncio.sleep(self.every)


@dataclass
class Run:
    stack: RunningStack
    nc: Client
    pool: asyncpg.Pool
    http: httpx.AsyncClient
    args: Any
    topology: Topology = field(init=False)
    tenant: str = field(init=False)
    samples: list[Sample] = field(default_factory=list)
    usage: list[Usage] = field(default_factory=list)
    missed_samples: int = 0

    def __post_init__(self) -> None:
        self.topology = self.stack.topology
        self.tenant = self.stack.tenant_id

    # setup ------------------------------------------------------------------------------

    async def sim(self, path: str, **params: Any) -> dict[str, Any]:
        response = await self.http.get(f"{self.stack.sim_url}{path}", params=params)
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found

    async def devices(self) -> list[str]:
        """Register and link the devices by phone code, as the command handler would."""
        store = EventStore(self.nc, self.topology, timeout=30)
        now = datetime.now(UTC)
        ids = [f"d{n:05d}" for n in range(self.args.devices)]
        items: list[Append] = []
        for n, device_id in enumerate(ids):
            subject = self.topology.device(self.tenant, device_id)
            registered = DeviceRegistered(
                tenant_id=self.tenant, occurred_at=now, device_id=device_id, name=device_id,
                driver="sim",
            )  # fmt: skip
            pairing = DevicePairingStarted(
                tenant_id=self.tenant, occurred_at=now, device_id=device_id, method="code",
                phone=f"+55119{n:08d}",
            )  # fmt: skip
            items.append(Append(subject, registered, f"reg:{device_id}", 0))
            items.append(Append(subject, pairing, f"pair:{device_id}", None))
        for start in range(0, len(items), 1000):
            await store.append_batch(items[start : start + 1000])

        async def linked() -> bool:
            return int((await self.sim("/sim/v1/stats"))["devices_connected"]) >= len(ids)

        await until(linked, self.args.timeout, "every device linked")
        return ids

    async def leads(self, device_ids: list[str]) -> None:
        """Phone claims and leads in atomic batches of 1000 events, four in flight."""
        store = EventStore(self.nc, self.topology, timeout=30)
        now = datetime.now(UTC)
        count = self.args.leads

        def batch(first: int) -> list[Append]:
            items: list[Append] = []
            for n in range(first, min(count, first + 500)):
                # never ending in 0000: the simulator has those numbers off WhatsApp
                lead_id, phone = f"l{n:07d}", f"+1212{n:06d}1"
                claim = LeadPhoneClaimed(
                    tenant_id=self.tenant, occurred_at=now, lead_id=lead_id,
                    phone_key=phone_key(self.tenant, phone),
                )  # fmt: skip
                created = LeadCreated(
                    tenant_id=self.tenant, occurred_at=now, lead_id=lead_id, phone=phone,
                    name=f"Lead {n}", device_id=device_ids[n % len(device_ids)],
                )  # fmt: skip
                items += [
                    Append(e.subject(self.topology), e, f"seed.{lead_id}.{e.subject_kind}", 0)
                    for e in (claim, created)
                ]
            return items

        starts = list(range(0, count, 500))
        for i in range(0, len(starts), 4):
            await asyncio.gather(*(store.append_batch(batch(s)) for s in starts[i : i + 4]))

    async def checkpoints(self) -> dict[tuple[str, str], int]:
        """Every projection's checkpoint in the stack's database, by (schema, stream)."""
        async with self.pool.acquire() as conn:
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

    async def stream_end(self, key: str) -> int:
        info = await self.nc.jetstream(timeout=10).stream_info(self.topology.stream(key))
        return int(info.state.last_seq)

    async def settled(self) -> float:
        """Until every projection has reached the end of LEADS and DEVICES."""
        ends = {key: await self.stream_end(key) for key in ("LEADS", "DEVICES")}

        async def caught_up() -> bool:
            found = await self.checkpoints()
            behind = [k for k, seq in found.items() if k[1] in ends and seq < ends[k[1]]]
            return bool(found) and not behind

        return await until(caught_up, self.args.timeout * 5, "projections caught up")

    # the measured part ------------------------------------------------------------------

    async def report_counts(self, campaign_id: str) -> dict[str, int]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT status, sum(n)::bigint AS n FROM reports.campaign_counts "
                "WHERE tenant_id = $1 AND campaign_id = $2 GROUP BY status",
                self.tenant,
                campaign_id,
            )
            projected = await conn.fetchval(
                "SELECT seq FROM reports.projection_checkpoints WHERE stream = $1", MESSAGES.key
            )
        return {"_projected": int(projected or 0)} | {r["status"]: int(r["n"]) for r in rows}

    async def sample(self, started: float, campaign_id: str) -> Sample:
        stats, counts, end = await asyncio.gather(
            self.sim("/sim/v1/stats"),
            self.report_counts(campaign_id),
            self.stream_end(MESSAGES.key),
        )
        projected = counts.pop("_projected")
        return Sample(
            at=time.monotonic() - started,
            sent=int(stats["received"]),
            counts=counts,
            stream_end=end,
            projected=projected,
        )

    async def failures(self, campaign_id: str) -> dict[str, int]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT reason, sum(n)::bigint AS n FROM reports.campaign_counts "
                "WHERE tenant_id = $1 AND campaign_id = $2 AND status = 'failed' GROUP BY reason",
                self.tenant,
                campaign_id,
            )
        return {r["reason"]: int(r["n"]) for r in rows}

    async def campaign(self) -> dict[str, Any]:
        """Trigger, then sample until every message is read and the API report says so."""
        pids = self.stack.pids()
        pids["bench"] = os.getpid()
        sent_before = int((await self.sim("/sim/v1/stats"))["received"])
        ledger_before = int((await self.sim("/sim/v1/ledger", limit=1))["received"])
        stream_before = await self.stream_end(MESSAGES.key)
        body = {
            "name": "bench e2e",
            "audience": {"status": "all"},
            "message": {"text": "Hi {name|there}, this is the e2e bench."},
            "pacing": {"min_seconds": 0, "max_seconds": 0},
        }
        triggered_at = datetime.now(UTC)
        started = time.monotonic()
        processes = Processes(pids, started, self.args.usage_every)
        sampling = asyncio.get_running_loop().create_task(processes.run())
        response = await self.http.post(
            f"{self.stack.api_url}/campaigns",
            json=body,
            headers={"Authorization": f"Bearer {self.stack.api_key}"},
        )
        if response.status_code != 201:
            raise RuntimeError(f"POST /campaigns: {response.status_code} {response.text}")
        campaign_id = str(response.json()["id"])
        self.samples = [await self.sample(started, campaign_id)]
        want = self.args.leads
        done_sending = done_outcomes = None
        while True:
            await asyncio.sleep(self.args.every)
            try:
                s = await self.sample(started, campaign_id)
            except (TimeoutError, NatsError, httpx.HTTPError, asyncpg.PostgresError) as exc:
                self.missed_samples += 1  # an overloaded machine: the next sample will do
                note(f"sample missed: {exc!r}")
                continue
            self.samples.append(s)
            if done_sending is None and s.sent - sent_before >= want:
                done_sending = s.at
            waiting = s.counts.get("pending", 0) + s.counts.get("queued", 0)
            total = sum(s.counts.values())
            if done_outcomes is None and total >= want and not waiting:
                done_outcomes = s.at
            if total >= want and s.counts.get("read", 0) + s.counts.get("failed", 0) >= want:
                break
            if s.at > self.args.deadline:
                note(f"campaign not done after {s.at:.0f} s: stopping with what it reached")
                break
        done = time.monotonic() - started
        sampling.cancel()
        await asyncio.gather(sampling, return_exceptions=True)
        self.usage = [*processes.usage, processes.take()]
        report = await self.api_report(campaign_id)
        last = self.samples[-1]
        waiting = last.counts.get("pending", 0) + last.counts.get("queued", 0)
        first_send = await self.first_send(ledger_before, triggered_at)
        return {
            "campaign_id": campaign_id,
            "completed": last.counts.get("read", 0) + last.counts.get("failed", 0) >= want,
            "messages_done": sum(last.counts.values()) - waiting,
            "stream_before": stream_before,
            "seconds": done,
            "seconds_until_all_sent": done_sending,
            "seconds_until_all_outcomes_projected": done_outcomes,
            "time_to_first_send_s": first_send,
            "report_totals": report,
            "failed_by_reason": await self.failures(campaign_id),
            "sent": self.samples[-1].sent - sent_before,
        }

    async def api_report(self, campaign_id: str) -> dict[str, Any]:
        response = await self.http.get(
            f"{self.stack.api_url}/campaigns/{campaign_id}/report",
            headers={"Authorization": f"Bearer {self.stack.api_key}"},
        )
        response.raise_for_status()
        totals: dict[str, Any] = response.json()["totals"]
        return totals

    async def first_send(self, after: int, triggered_at: datetime) -> float | None:
        """The simulator's time of the campaign's first send, less the trigger's."""
        page = await self.sim("/sim/v1/ledger", after=after, limit=1)
        if not page["entries"]:
            return None
        at = datetime.fromisoformat(page["entries"][0]["at"])
        return (at - triggered_at).total_seconds()

    async def raw_atomic_batch(self) -> dict[str, Any]:
        """bench/bus.py's hand-made atomic batches of 500 on this nats-server, 3 rounds."""
        bus = BusBench(self.nc, BusSizes.scaled(self.args.raw_events))
        await bus.setup()
        rounds = []
        for n in range(3):
            bus._round = n
            rounds.append((await bus.raw_atomic_batch()).per_s)
        return {"per_s": statistics.median(rounds), "rounds": [round(r, 1) for r in rounds]}


# figures ----------------------------------------------------------------------------------


def lags(samples: Sequence[Sample]) -> list[tuple[float, float]]:
    """(time, seconds until the report projection's checkpoint reached the stream's end
    at that time) for every sample whose end was reached."""
    found: list[tuple[float, float]] = []
    for i, s in enumerate(samples):
        later = next((t for t in samples[i:] if t.projected >= s.stream_end), None)
        if later is not None:
            found.append((s.at, later.at - s.at))
    return found


def rates(
    samples: Sequence[Sample], value: Callable[[Sample], float], window: float = 5.0
) -> list[tuple[float, float]]:
    """Per second over the last `window` seconds, at each sample."""
    found: list[tuple[float, float]] = []
    start = 0
    for b in samples[1:]:
        while samples[start + 1].at <= b.at - window:
            start += 1
        a = samples[start]
        if b.at > a.at:
            found.append((b.at, (value(b) - value(a)) / (b.at - a.at)))
    return found


def cpu_shares(samples: Sequence[Usage]) -> dict[str, list[tuple[float, float]]]:
    names = samples[0].cpu
    return {
        name: [
            (b.at, (b.cpu[name] - a.cpu[name]) / (b.at - a.at))
            for a, b in itertools.pairwise(samples)
            if b.at > a.at and name in a.cpu and name in b.cpu
        ]
        for name in names
    }


def plots(
    samples: Sequence[Sample], usage: Sequence[Usage], directory: Path, leads: int
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    written: list[str] = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(directory / name)
        plt.close(fig)
        written.append(str(directory / name))

    sent = rates(samples, lambda s: s.sent)
    outcomes = rates(samples, lambda s: sum(v for k, v in s.counts.items() if k != "pending"))
    read = rates(samples, lambda s: s.counts.get("read", 0))
    fig, ax = plt.subplots(figsize=(9, 4), dpi=100)
    for label, series in (
        ("sends accepted by the simulator", sent),
        ("messages past pending in the report", outcomes),
        ("read receipts in the report", read),
    ):
        ax.plot([x for x, _ in series], [y * 60 for _, y in series], label=label, linewidth=1.3)
    ax.set_title(f"e2e: one campaign to {leads:,} leads, zero pacing")
    ax.set_xlabel("seconds since the trigger")
    ax.set_ylabel("messages per minute (over 5 s)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    save(fig, "e2e-throughput.png")

    lag = lags(samples)
    fig, ax = plt.subplots(figsize=(9, 4), dpi=100)
    ax.plot([x for x, _ in lag], [y for _, y in lag], linewidth=1.3, label="lag (seconds)")
    ax.set_title("e2e: report projection lag on MESSAGES (time until it reached the end)")
    ax.set_xlabel("seconds since the trigger")
    ax.set_ylabel("seconds")
    ax.grid(True, alpha=0.3)
    behind = ax.twinx()
    behind.plot(
        [s.at for s in samples],
        [s.stream_end - s.projected for s in samples],
        color="tab:red",
        linewidth=0.8,
        alpha=0.6,
        label="events behind",
    )
    behind.set_ylabel("events behind", color="tab:red")
    save(fig, "e2e-lag.png")

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    for name, series in sorted(cpu_shares(usage).items()):
        if series and max(y for _, y in series) > 0.05:
            ax.plot([x for x, _ in series], [y for _, y in series], label=name, linewidth=1.1)
    ax.set_title("e2e: CPU per process (1.0 = one core; the machine has two)")
    ax.set_xlabel("seconds since the trigger")
    ax.set_ylabel("cores")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    save(fig, "e2e-cpu.png")
    return written


def summary(
    run: dict[str, Any], samples: Sequence[Sample], usage: Sequence[Usage], raw: dict[str, Any]
) -> dict[str, Any]:
    seconds = run["seconds"]
    messages = run["messages_done"]
    per_s = messages / seconds
    lag = [y for _, y in lags(samples)]
    first, last = usage[0], usage[-1]
    cpu = {name: round(last.cpu[name] - first.cpu.get(name, 0.0), 1) for name in last.cpu}
    cores = os.cpu_count() or 1
    peak = {name: max(u.memory.get(name, 0) for u in usage) for name in last.memory}
    sent_rates = [y for _, y in rates(samples, lambda s: s.sent)]
    return {
        "completed": run["completed"],
        "messages": messages,
        "messages_per_minute": round(per_s * 60),
        "messages_per_s": round(per_s, 1),
        "seconds": round(seconds, 2),
        "seconds_until_all_sent": run["seconds_until_all_sent"],
        "seconds_until_all_outcomes_projected": run["seconds_until_all_outcomes_projected"],
        "sends_per_minute_peak": round(max(sent_rates, default=0) * 60),
        "time_to_first_send_s": (
            None if run["time_to_first_send_s"] is None else round(run["time_to_first_send_s"], 3)
        ),
        "messages_stream_events": samples[-1].stream_end - run["stream_before"],
        "events_per_requested_message": round(
            (samples[-1].stream_end - run["stream_before"]) / max(run["report_totals"]["total"], 1),
            2,
        ),
        "projection_lag_p50_s": percentile(lag, 0.5),
        "projection_lag_p99_s": percentile(lag, 0.99),
        "projection_lag_max_s": max(lag, default=None),
        "raw_atomic_batch_per_s": round(raw["per_s"], 1),
        "raw_atomic_batch_rounds": raw["rounds"],
        "e2e_ratio": float(f"{per_s / raw['per_s']:.3g}"),
        "peak_rss_mb": {name: round(v / MB, 1) for name, v in sorted(peak.items())},
        "peak_rss_note": "RSS of each process; postgres: PSS summed over its backends",
        "cpu_seconds": dict(sorted(cpu.items(), key=lambda kv: -kv[1])),
        "cpu_share_of_machine": round(sum(cpu.values()) / (seconds * cores), 3),
        "report_totals": run["report_totals"],
        "failed_by_reason": run["failed_by_reason"],
        "sent": run["sent"],
        "sample_every_s": round(samples[1].at - samples[0].at, 2) if len(samples) > 1 else None,
    }


def profile_tops(directory: Path, count: int = 25) -> dict[str, list[str]]:
    tops: dict[str, list[str]] = {}
    for path in sorted(directory.glob("*.pstats")):
        import io

        out = io.StringIO()
        stats = pstats.Stats(str(path), stream=out)
        stats.sort_stats("tottime").print_stats(count)
        lines = [line.rstrip() for line in out.getvalue().splitlines() if line.strip()]
        start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
        tops[path.stem] = lines[start:]
    return tops


# the run ----------------------------------------------------------------------------------


async def measure(root: Path, args: Any) -> dict[str, Any]:
    env = dict(BENCH_ENV)
    profiles = root / "profiles"
    if args.profile:
        hook = root / "hook"
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(PROFILE_HOOK)
        profiles.mkdir()
        modules = [f"wacast.{name.replace('-', '_')}" for name in args.profile.split(",")]
        env |= {
            "PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
            "WACAST_BENCH_PROFILE_MODULES": ",".join(modules),
            "WACAST_BENCH_PROFILE_DIR": str(profiles),
        }
    result: dict[str, Any] = {}
    async with running_stack(root / "var", env=env) as stack:
        note(f"stack up in {stack.started_in:.1f} s: {', '.join(stack.pids())}")
        nc = await nats.connect(stack.nats_url)
        pool = await asyncpg.create_pool(stack.database_url, min_size=1, max_size=3)
        try:
            async with httpx.AsyncClient(timeout=60) as http:
                run = Run(stack, nc, pool, http, args)
                started = time.monotonic()
                ids = await run.devices()
                linked = time.monotonic() - started
                note(f"{len(ids)} devices linked in {linked:.1f} s")
                await run.leads(ids)
                seeded = time.monotonic() - started - linked
                note(f"{args.leads} leads appended in {seeded:.1f} s")
                settled = await run.settled()
                note(f"projections caught up in {settled:.1f} s; triggering")
                done = await run.campaign()
                note(f"campaign done in {done['seconds']:.1f} s; raw atomic batches")
                raw = await run.raw_atomic_batch()
                result = summary(done, run.samples, run.usage, raw)
                result["setup_seconds"] = {
                    "devices_linked": round(linked, 1),
                    "leads_appended": round(seeded, 1),
                    "projections_caught_up": round(settled, 1),
                }
                result["plots"] = plots(run.samples, run.usage, args.plot_dir, args.leads)
                result["restarts"] = {k: v for k, v in stack.restarts().items() if v}
                result["missed_samples"] = run.missed_samples
        finally:
            await pool.close()
            await nc.drain()
    if args.profile:
        result["profile_top_by_own_time"] = profile_tops(profiles)
        keep = RESULTS / "profiles"
        keep.mkdir(parents=True, exist_ok=True)
        for path in profiles.glob("*.pstats"):
            path.replace(keep / f"e2e-{path.name}")
    return result


def machine() -> dict[str, Any]:
    import subprocess

    version = subprocess.run(
        [nats_server_binary(), "--version"], capture_output=True, text=True, check=False
    ).stdout
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "nats_server": version.strip().removeprefix("nats-server: "),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000, help="linked devices (1,000)")
    parser.add_argument("--leads", type=int, default=100_000, help="leads messaged (100,000)")
    parser.add_argument(
        "--every", type=float, default=0.2, help="seconds between progress and lag samples"
    )
    parser.add_argument(
        "--usage-every", type=float, default=1.0, help="seconds between CPU and RSS samples"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="deadline of setup steps")
    parser.add_argument(
        "--deadline",
        type=float,
        default=900.0,
        help="seconds the campaign may take; then the figures are what it reached",
    )
    parser.add_argument(
        "--raw-events", type=int, default=100_000, help="sizes the raw batch run (N/10 a round)"
    )
    parser.add_argument("--plot-dir", type=Path, default=PLOTS, help="where the PNGs go")
    parser.add_argument("--profile", default="", help="services to cProfile, comma-separated")
    parser.add_argument("--out", type=Path, help="where to write the JSON (default bench/results)")
    parser.add_argument("--no-save", action="store_true", help="only print the JSON")
    args = parser.parse_args(argv)
    if args.devices < 1 or not 1 <= args.leads < 1_000_000:
        parser.error("--devices must be at least 1, --leads 1 to 999,999")
    with tempfile.TemporaryDirectory(prefix="wacast-bench-e2e-") as tmp:
        started = time.perf_counter()
        result = asyncio.run(measure(Path(tmp), args))
    result["aims"] = AIMS
    result["meets_aims"] = {
        "messages_per_minute": result["messages_per_minute"] >= AIMS["messages_per_minute"],
        "e2e_ratio": result["e2e_ratio"] >= AIMS["e2e_ratio"],
        "time_to_first_send_s": (result["time_to_first_send_s"] or 1e9)
        < AIMS["time_to_first_send_s"],
    }
    result["sizes"] = {"devices": args.devices, "leads": args.leads, "profiled": args.profile}
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    result["machine"] = machine()
    text = json.dumps(result, indent=2)
    print(text)
    if not args.no_save:
        out = args.out or RESULTS / f"e2e-{time.strftime('%Y%m%dT%H%M%S')}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
        print(f"saved {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
