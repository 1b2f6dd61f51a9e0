"""Progress bars on stderr (stdout may carry data), or nothing at all with `--quiet`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Task:
    def __init__(self, progress: Progress | None, task: TaskID | None) -> None:
        self._progress = progress
        self._task = task

    def advance(self, n: int = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, n)

    def update(self, completed: int, total: int | None = None) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=completed, total=total)


class Tracker:
    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress

    def task(self, description: str, total: int | None) -> Task:
        if self._progress is None:
            return Task(None, None)
        return Task(self._progress, self._progress.add_task(description, total=total))


@contextlib.contextmanager
def tracker(quiet: bool) -> Iterator[Tracker]:
    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        # Bars drawn into a log file or a pipe are noise; summaries are printed anyway.
        yield Tracker(None)
        return
    columns = (
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        yield Tracker(progress)
