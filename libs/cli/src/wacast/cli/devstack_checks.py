"""`./dev test`: every check CI runs, in order, stopping at the first that fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

TYPED_DIRS = ("libs", "tests", "bench", "deploy")
PYTEST_NO_TESTS = 5
ENV = "/usr/bin/env"
"""Sets MYPYPATH for a service's tests run (a step is an argv, without an environment)."""
CHROMIUM = Path("/usr/bin/chromium")
"""Debian's chromium, which the browser tests (tests/browser) drive with Playwright."""


def mypy_targets(root: Path) -> list[str]:
    """What the first mypy run checks strictly: every library and its tests, every service's
    sources, the cross-service tests, benchmarks and deploy tooling."""
    targets = [name for name in TYPED_DIRS if any((root / name).rglob("*.py"))]
    targets += sorted(str(src.relative_to(root)) for src in root.glob("services/*/src"))
    return targets


def service_test_folders(root: Path) -> list[str]:
    """Each service's tests/, which mypy checks strictly in a run of its own.

    A folder is the package `tests` of its service (`from .conftest import ...`, as pytest's
    importlib mode imports it), so mypy needs the service's folder as its package base
    (MYPYPATH): a service's name is no Python identifier, and the folders share module names
    (`tests.conftest`, `tests.test_campaigns`), so one run cannot hold two of them.
    """
    folders = (tests for tests in root.glob("services/*/tests") if any(tests.rglob("*.py")))
    return sorted(str(tests.relative_to(root)) for tests in folders)


def mypy_steps(root: Path, mypy: str) -> list[tuple[str, list[str]]]:
    targets = mypy_targets(root)
    runs = [(f"mypy {' '.join(targets)}", [mypy, *targets])]
    for folder in service_test_folders(root):
        base = str(Path(folder).parent)
        runs.append((f"mypy {folder} (MYPYPATH={base})", [ENV, f"MYPYPATH={base}", mypy, folder]))
    return runs


def steps(root: Path, pytest_args: Sequence[str]) -> list[tuple[str, list[str]]]:
    bin_dir = Path(sys.executable).parent
    return [
        ("ruff format --check", [str(bin_dir / "ruff"), "format", "--check", "."]),
        ("ruff check", [str(bin_dir / "ruff"), "check", "."]),
        *mypy_steps(root, str(bin_dir / "mypy")),
        *chromium_steps(),
        ("pytest", [str(bin_dir / "pytest"), *pytest_args]),
    ]


def chromium_steps() -> list[tuple[str, list[str]]]:
    """Installing Debian's `chromium` package, only when it is missing (Playwright never
    downloads a browser of its own)."""
    if CHROMIUM.exists():
        return []
    argv = [sys.executable, "-m", "wacast.cli.devstack_checks", "install-chromium"]
    return [("chromium (apt-get install chromium)", argv)]


def install_chromium() -> int:
    """`apt-get update`, then `apt-get install -y chromium`, as root; 0 once it is there."""
    if CHROMIUM.exists():
        return 0
    if shutil.which("apt-get") is None:
        print(f"{CHROMIUM} is missing and there is no apt-get: install chromium by hand")
        return 1
    if os.geteuid() != 0:
        print(
            f"{CHROMIUM} is missing; installing it needs root: run ./dev test as root, or "
            "`sudo apt-get update && sudo apt-get install -y chromium` first"
        )
        return 1
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        code = subprocess.run(argv, env=env, check=False).returncode
        if code != 0:
            print(f"`{' '.join(argv)}` failed (exit {code}): the browser tests need chromium")
            return code
    if not CHROMIUM.exists():
        print(f"the chromium package is installed but {CHROMIUM} is still missing")
        return 1
    return 0


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


if __name__ == "__main__":
    if sys.argv[1:] != ["install-chromium"]:
        raise SystemExit("usage: python -m wacast.cli.devstack_checks install-chromium")
    raise SystemExit(install_chromium())
