"""`./dev test`: every check CI runs, in order, stopping at the first that fails."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

TYPED_DIRS = ("libs", "tests", "bench", "deploy")
PYTEST_NO_TESTS = 5


def mypy_groups(root: Path) -> list[list[str]]:
    """What mypy checks, in runs that each see unique module names.

    Every service's tests folder has its own `conftest.py` (and test modules may share a
    name across services), so each is checked in a run of its own; the rest goes together.
    """
    shared = [name for name in TYPED_DIRS if any((root / name).rglob("*.py"))]
    shared += sorted(str(src.relative_to(root)) for src in root.glob("services/*/src"))
    service_tests = sorted(
        str(tests.relative_to(root))
        for tests in root.glob("services/*/tests")
        if any(tests.rglob("*.py"))
    )
    return [shared, *([folder] for folder in service_tests)]


def steps(root: Path, pytest_args: Sequence[str]) -> list[tuple[str, list[str]]]:
    bin_dir = Path(sys.executable).parent
    mypy = [
        (f"mypy {' '.join(group)}", [str(bin_dir / "mypy"), *group]) for group in mypy_groups(root)
    ]
    return [
        ("ruff format --check", [str(bin_dir / "ruff"), "format", "--check", "."]),
        ("ruff check", [str(bin_dir / "ruff"), "check", "."]),
        *mypy,
        ("pytest", [str(bin_dir / "pytest"), *pytest_args]),
    ]


def run_checks(root: Path, pytest_args: Sequence[str], console: Console | None = None) -> int:
    """The exit code of the first failing step, or 0."""
    out = console or Console(highlight=False)
    began = time.monotonic()
    code = 0
    for title, argv in steps(root, pytest_args):
        out.rule(f"[bold]{title}")
        code = subprocess.run(argv, cwd=root, check=False).returncode
        if code == PYTEST_NO_TESTS and title == "pytest":
            out.print("[bold red]pytest collected no tests: that is a failure, not a pass.")
        if code != 0:
            out.print(f"[bold red]✗ {title} failed (exit {code})")
            break
    total = time.monotonic() - began
    verdict = "[bold green]all checks passed" if code == 0 else "[bold red]checks failed"
    out.print(f"{verdict} in {total:.1f} s")
    return code
