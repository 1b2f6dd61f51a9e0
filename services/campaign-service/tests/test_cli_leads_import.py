"""`wacast leads import FILE` streams the file, starts the import and follows it to the end."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from typer.testing import CliRunner

from wacast.cli import commands_leads
from wacast.cli.commands_common import Options

from .conftest import Harness


def cli(harness: Harness) -> typer.Typer:
    """The `leads` commands under a root that points at the test's NATS and namespace."""
    root = typer.Typer()

    @root.callback()
    def connect(ctx: typer.Context) -> None:
        ctx.obj = Options(
            nats_url=harness.nats_url,
            namespace=harness.topology.prefix,
            database_url="",
            quiet=True,
        )

    root.add_typer(commands_leads.app, name="leads")
    return root


async def test_the_cli_imports_a_csv_and_reports_the_refused_rows(
    harness: Harness, tmp_path: Path
) -> None:
    await harness.start()
    await harness.device("d1")
    leads = tmp_path / "fair.csv"
    leads.write_text("name,phone\nAna,+1 415 555 0101\nBruno,12\nCarla,+1 415 555 0103\n")
    report = tmp_path / "refused.csv"
    args = ["leads", "import", str(leads), "--tenant", "acme", "--errors", str(report)]

    done = await asyncio.to_thread(CliRunner().invoke, cli(harness), args)

    assert done.exit_code == 0, done.output
    assert "imported 3 rows: 2 created, 0 updated, 1 refused" in done.output
    assert "row 3: invalid phone" in done.output
    assert report.read_text().splitlines() == ["row,reason", "3,invalid phone: too short"]


async def test_the_cli_exits_2_on_a_missing_file(harness: Harness, tmp_path: Path) -> None:
    args = ["leads", "import", str(tmp_path / "nope.csv"), "--tenant", "acme"]

    done = await asyncio.to_thread(CliRunner().invoke, cli(harness), args)

    assert done.exit_code == 2
