"""How `./dev up` shows its processes: a live table on a terminal, one line per change otherwise."""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from wacast.cli.supervisor import Process, State

STYLE = {
    State.STARTING: "yellow",
    State.HEALTHY: "green",
    State.UNHEALTHY: "red",
    State.RESTARTING: "yellow",
    State.FAILED: "bold red",
    State.STOPPING: "dim",
    State.STOPPED: "dim",
}


def describe(process: Process) -> dict[str, str]:
    last_exit = process.exit_codes[-1] if process.exit_codes else None
    return {
        "name": process.spec.name,
        "pid": str(process.pid or "-"),
        "state": process.state.value,
        "port": str(process.spec.port or "-"),
        "restarts": str(process.restarts),
        "note": process.error or ("" if last_exit is None else f"last exit {last_exit}"),
    }


def plain_line(process: Process) -> str:
    row = describe(process)
    line = (
        f"{time.strftime('%H:%M:%S')} {row['name']:<17} {row['state']:<10} pid {row['pid']:<7} "
        f"port {row['port']:<5} restarts {row['restarts']}"
    )
    return f"{line}  {row['note']}" if row["note"] else line


COLUMNS = ("name", "state", "pid", "port", "restarts", "note")


def rows_table(rows: list[dict[str, str]], title: str | None = None) -> Table:
    grid = Table(title=title, box=None, header_style="bold", pad_edge=False)
    for column in COLUMNS:
        grid.add_column(column)
    for row in rows:
        cells = dict(row, state=f"[{STYLE[State(row['state'])]}]{row['state']}[/]")
        grid.add_row(*(cells[column] for column in COLUMNS))
    return grid


def table(processes: Mapping[str, Process]) -> Table:
    return rows_table([describe(process) for process in processes.values()])


class StatusView:
    """Redraws on every state change; `say` prints above the table."""

    def __init__(self, processes: Mapping[str, Process], console: Console | None = None) -> None:
        self.processes = processes
        self.console = console or Console(soft_wrap=True, highlight=False)
        self.live: Live | None = None

    def __enter__(self) -> StatusView:
        if self.console.is_terminal:
            self.live = Live(table(self.processes), console=self.console, auto_refresh=False)
            self.live.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.live is not None:
            self.live.update(table(self.processes), refresh=True)
            self.live.stop()

    def changed(self, process: Process) -> None:
        if self.live is not None:
            self.live.update(table(self.processes), refresh=True)
        else:
            self.say(plain_line(process))

    def say(self, message: str, style: str | None = None) -> None:
        self.console.print(Text(message, style=style or ""))
