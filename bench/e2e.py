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

import asyncio
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
from nats.aio.client import Client

from bench.bus import Bench as BusBench
from bench.bus import Sizes as BusSizes
from bench.e2e_campaign import Campaign
from bench.e2e_clients import Clients
from bench.e2e_plots import plots
from bench.e2e_profile import kept_profiles, profiling_env
from bench.e2e_setup import add_leads, link_devices, settled
from bench.e2e_summary import summary
from bench.machine import load_average, machine, nats_server_version
from bench.output import note, options, print_and_save
from wacast.cli.stackrun import running_stack

ROOT = Path(__file__).resolve().parents[1]
PLOTS = ROOT / "docs" / "perf"
AIMS = {"messages_per_minute": 250_000.0, "e2e_ratio": 0.1, "time_to_first_send_s": 1.0}
BENCH_ENV = {
    "WACAST_SIM_PROFILE": "bench",
    "WACAST_SIM_PAIR_DELAY": "0.05",
    "WACAST_TYPING_MAX_SECONDS": "0",
    "WACAST_LOG_LEVEL": "WARNING",
}


async def raw_atomic_batch(nc: Client, events: int) -> dict[str, Any]:
    """bench/bus.py's hand-made atomic batches of 500 on this nats-server, 3 rounds."""
    bus = BusBench(nc, BusSizes.scaled(events))
    await bus.setup()
    rounds = []
    for n in range(3):
        bus._round = n
        rounds.append((await bus.raw_atomic_batch()).per_s)
    return {"per_s": statistics.median(rounds), "rounds": [round(r, 1) for r in rounds]}


async def measure(root: Path, args: Any) -> dict[str, Any]:
    env = dict(BENCH_ENV)
    if args.profile:
        env |= profiling_env(root, args.profile)
    result: dict[str, Any] = {}
    async with running_stack(root / "var", env=env) as stack:
        note(f"stack up in {stack.started_in:.1f} s: {', '.join(stack.pids())}")
        nc = await nats.connect(stack.nats_url)
        pool = await asyncpg.create_pool(stack.database_url, min_size=1, max_size=3)
        try:
            async with httpx.AsyncClient(timeout=60) as http:
                clients = Clients(stack, nc, pool, http)
                started = time.monotonic()
                ids = await link_devices(clients, args.devices, args.timeout)
                linked = time.monotonic() - started
                note(f"{len(ids)} devices linked in {linked:.1f} s")
                await add_leads(clients, args.leads, ids)
                seeded = time.monotonic() - started - linked
                note(f"{args.leads} leads appended in {seeded:.1f} s")
                caught_up = await settled(clients, args.timeout * 5)
                note(f"projections caught up in {caught_up:.1f} s; triggering")
                campaign = Campaign(
                    clients, args.leads, args.every, args.usage_every, args.deadline
                )
                done = await campaign.run()
                note(f"campaign done in {done['seconds']:.1f} s; raw atomic batches")
                raw = await raw_atomic_batch(nc, args.raw_events)
                result = summary(done, campaign.samples, campaign.usage, raw)
                result["setup_seconds"] = {
                    "devices_linked": round(linked, 1),
                    "leads_appended": round(seeded, 1),
                    "projections_caught_up": round(caught_up, 1),
                }
                result["plots"] = plots(campaign.samples, campaign.usage, args.plot_dir, args.leads)
                result["restarts"] = {k: v for k, v in stack.restarts().items() if v}
                result["missed_samples"] = campaign.missed_samples
        finally:
            await pool.close()
            await nc.drain()
    if args.profile:
        result["profile_top_by_own_time"] = kept_profiles(root)
    return result


def meets_aims(result: dict[str, Any]) -> dict[str, bool]:
    return {
        "messages_per_minute": result["messages_per_minute"] >= AIMS["messages_per_minute"],
        "e2e_ratio": result["e2e_ratio"] >= AIMS["e2e_ratio"],
        "time_to_first_send_s": (result["time_to_first_send_s"] or 1e9)
        < AIMS["time_to_first_send_s"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = options(__doc__)
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
    args = parser.parse_args(argv)
    if args.devices < 1 or not 1 <= args.leads < 1_000_000:
        parser.error("--devices must be at least 1, --leads 1 to 999,999")
    with tempfile.TemporaryDirectory(prefix="wacast-bench-e2e-") as tmp:
        started = time.perf_counter()
        result = asyncio.run(measure(Path(tmp), args))
    result["aims"] = AIMS
    result["meets_aims"] = meets_aims(result)
    result["sizes"] = {"devices": args.devices, "leads": args.leads, "profiled": args.profile}
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    result["machine"] = machine(nats_server=nats_server_version(), load_average=load_average())
    print_and_save("e2e", result, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
