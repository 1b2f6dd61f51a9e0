"""`./dev`: run the whole system on this machine (`up`) and every check CI runs (`test`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from wacast.cli.devstack import DEFAULT_BASE_PORT
from wacast.cli.devstack_checks import run_checks
from wacast.cli.devstack_docs import DOC, check_or_write
from wacast.cli.devstack_up import UpOptions, read_state, up
from wacast.cli.devstack_view import rows_table


def repo_root() -> Path:
    """The checkout this module belongs to (where `./dev` lives), else the working directory."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "dev").is_file() and (parent / "uv.lock").is_file():
            return parent
    return Path.cwd()


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="./dev", description=__doc__)
    commands = cli.add_subparsers(dest="command", required=True, metavar="COMMAND")
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--data", type=Path, help="data directory (default: var/ in the checkout)")
    start = commands.add_parser(
        "up", parents=[where], help="run nats-server, Postgres and every service until Ctrl-C"
    )
    start.add_argument(
        "--ports",
        choices=("default", "auto"),
        default="default",
        help="`auto` picks free ports and prints them",
    )
    start.add_argument(
        "--base-port",
        type=int,
        default=DEFAULT_BASE_PORT,
        help="shift every default port by BASE_PORT - 8080 (WACAST_*_PORT variables still win)",
    )
    start.add_argument("--no-services", action="store_true", help="only nats-server and Postgres")
    commands.add_parser(
        "test", help="ruff format, ruff check, mypy, then pytest (extra arguments go to pytest)"
    )
    commands.add_parser("status", parents=[where], help="show what a running `./dev up` runs")
    docs = commands.add_parser("docs", help=f"regenerate {DOC} from the Settings classes")
    docs.add_argument("--check", action="store_true", help="only check that it is current")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    cli = parser()
    args, extra = cli.parse_known_args(argv)
    if extra and args.command != "test":
        cli.error(f"unrecognized arguments: {' '.join(extra)}")
    root = repo_root()
    if args.command == "test":
        return run_checks(root, extra)
    data = (getattr(args, "data", None) or root / "var").resolve()
    if args.command == "up":
        options = UpOptions(
            data=data,
            auto_ports=args.ports == "auto",
            base_port=args.base_port,
            services=not args.no_services,
        )
        return up(options, os.environ)
    if args.command == "status":
        return status(data)
    if check_or_write(root, write=not args.check):
        return 0
    print(f"{DOC} is out of date: run ./dev docs", file=sys.stderr)
    return 1


def status(data: Path) -> int:
    state = read_state(data)
    console = Console(highlight=False)
    if state is None:
        console.print(f"wacast is not running (no live ./dev up for {data})")
        return 1
    console.print(rows_table(state["processes"], title=f"./dev up, pid {state['pid']}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
