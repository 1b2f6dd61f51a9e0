"""`wacast bench NAME [OPTIONS]`: run one of the benchmarks under bench/ and keep its result.

The benchmarks are scripts in the source tree (`bench/<name>.py`), not part of an installed
package: each starts its own servers, measures and prints one JSON object. This command runs
the script as `python -m bench.<name>` from the tree's root with the same Python (so a
script may import another, e.g. `bench.bus`), passes the options after NAME on to it,
prints the JSON and saves it as `bench/results/<name>-<timestamp>.json` and
`<name>-latest.json`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from wacast.cli.commands_common import CliError, reported


@dataclass(frozen=True)
class Benchmark:
    script: str
    summary: str
    defaults: tuple[str, ...] = ()
    """Options given before the user's (the script takes the last of a repeated option)."""


SCALE_DEFAULTS = (
    *("--pace-devices", "10000", "--pace-messages", "4"),
    *("--gap-min", "15", "--gap-max", "25", "--timeout", "240"),
)
"""Every device paced (the gateway bench paces 200 by default)."""

BENCHMARKS: dict[str, Benchmark] = {
    "e2e": Benchmark(
        "e2e.py",
        "the whole stack: trigger, fan-out, gateway, simulator, receipts, report",
    ),
    "scale": Benchmark(
        "gateway.py",
        "one gateway with 10,000 devices, all paced with short gaps",
        SCALE_DEFAULTS,
    ),
    "rebuild": Benchmark("rebuild.py", "1,000,000 events replayed into fresh report projections"),
    "bus": Benchmark("bus.py", "raw nats-py against the event store and projection runner"),
    "gateway": Benchmark("gateway.py", "one device-gateway with 10,000 simulated devices"),
    "campaigns": Benchmark("campaigns.py", "campaign fan-out and CSV import"),
    "sequences": Benchmark("sequences.py", "the sequence-service with 100,000 enrollments"),
    "api": Benchmark("api.py", "the public HTTP API"),
    "sim_scale": Benchmark("sim_scale.py", "the simulator alone"),
}
NAMES = ", ".join(f"{n} ({b.summary})" for n, b in BENCHMARKS.items())


def bench_dir() -> Path:
    """`./bench`, else the source tree's `bench/` (a checkout, not an installed wheel)."""
    candidates = [Path.cwd() / "bench", Path(__file__).resolve().parents[5] / "bench"]
    for candidate in candidates:
        if (candidate / "bus.py").is_file():
            return candidate
    raise CliError(
        f"no benchmarks found (looked in {' and '.join(map(str, candidates))}): run from a "
        "checkout of the repository",
        2,
    )


def run_benchmark(name: str, args: list[str], directory: Path) -> dict[str, Any]:
    """Run the script, its progress on our stderr; the JSON it printed."""
    bench = BENCHMARKS[name]
    module = f"bench.{bench.script.removesuffix('.py')}"
    command = [sys.executable, "-m", module, *bench.defaults, *args, "--no-save"]
    done = subprocess.run(
        command, stdout=subprocess.PIPE, cwd=directory.parent, check=False, text=True
    )
    if done.returncode != 0:
        code = 2 if done.returncode == 2 else 1
        raise CliError(f"bench {name} failed (exit status {done.returncode})", code)
    try:
        result: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise CliError(f"bench {name} printed no JSON: {done.stdout[-500:]!r}") from None
    result.setdefault("command", " ".join(["wacast", "bench", name, *args]))
    return result


def save(name: str, result: dict[str, Any], results: Path) -> Path:
    """`<name>-<timestamp>.json` and a copy as `<name>-latest.json`."""
    results.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2) + "\n"
    out = results / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(text)
    (results / f"{name}-latest.json").write_text(text)
    return out


def register(app: typer.Typer) -> None:

    @app.command(
        "bench",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def bench_command(
        ctx: typer.Context,
        name: Annotated[str, typer.Argument(help=f"one of: {NAMES}", show_default=False)],
        no_save: Annotated[bool, typer.Option("--no-save", help="only print the JSON")] = False,
    ) -> None:
        """Run a benchmark (options after NAME go to it; `wacast bench NAME -h` lists
        them); print its JSON and save it under bench/results."""
        with reported():
            if name not in BENCHMARKS:
                raise CliError(f"no benchmark {name!r}; known: {', '.join(BENCHMARKS)}", 2)
            directory = bench_dir()
            if "-h" in ctx.args:
                module = f"bench.{BENCHMARKS[name].script.removesuffix('.py')}"
                subprocess.run([sys.executable, "-m", module, "-h"], cwd=directory.parent)
                return
            result = run_benchmark(name, list(ctx.args), directory)
            typer.echo(json.dumps(result, indent=2))
            if not no_save:
                out = save(name, result, directory / "results")
                typer.echo(f"saved {out}", err=True)
