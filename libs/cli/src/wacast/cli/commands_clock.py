"""`wacast clock advance SECONDS` and `wacast clock show`: the controlled clock of demos/tests.

Only processes started with `WACAST_CLOCK=controlled` follow it; the system clock ignores it.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated

import typer
from nats.js.errors import KeyNotFoundError

from wacast.cli.commands_common import CliError, Options, nats_session, options, reported, run
from wacast.runtime.clock import CLOCK_KEY, CONTROLLED_EPOCH, advance_clock, clock_bucket

app = typer.Typer(help="Move the shared controlled clock (demos and tests).", no_args_is_help=True)

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> timedelta:
    """`90`, `90s`, `15m`, `2h` or `1d`; forward only."""
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        raise CliError(
            f"{text!r} is not a duration: write seconds, or a number with s, m, h or d", 2
        )
    seconds = float(found.group(1)) * _UNIT[found.group(2)]
    if seconds <= 0:
        raise CliError("the clock only moves forward: give a positive duration", 2)
    return timedelta(seconds=seconds)


@app.command("advance")
def advance_command(
    ctx: typer.Context,
    seconds: Annotated[str, typer.Argument(help="e.g. 30, 90s, 15m, 2h, 1d", show_default=False)],
) -> None:
    """Move the controlled clock forward; every process following it sees the new time."""
    with reported():
        delta = duration(seconds)
    now = run(advance(options(ctx), delta))
    typer.echo(now.isoformat())


@app.command("show")
def show_command(ctx: typer.Context) -> None:
    """Print the controlled clock's current time."""
    typer.echo(run(show(options(ctx))).isoformat())


async def advance(opts: Options, by: timedelta) -> datetime:
    async with nats_session(opts) as nc:
        return await advance_clock(nc, opts.topology, by)


async def show(opts: Options) -> datetime:
    async with nats_session(opts) as nc:
        kv = await clock_bucket(nc, opts.topology)
        try:
            entry = await kv.get(CLOCK_KEY)
        except KeyNotFoundError:
            return CONTROLLED_EPOCH
        if not entry.value:
            return CONTROLLED_EPOCH
        try:
            return datetime.fromisoformat(entry.value.decode())
        except ValueError:
            raise CliError(f"the clock holds {entry.value!r}, not a time") from None
