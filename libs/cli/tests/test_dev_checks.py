"""`./dev test`: steps in order, stop at the first failure, no tests collected is a failure."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from rich.console import Console

from wacast.cli import devstack_checks
from wacast.cli.dev import repo_root


def fake_steps(*codes: int) -> list[tuple[str, list[str]]]:
    names = ["first", "second", "pytest"]
    return [
        (name, [sys.executable, "-c", f"raise SystemExit({code})"])
        for name, code in zip(names, codes, strict=False)
    ]


def run(monkeypatch: pytest.MonkeyPatch, *codes: int) -> tuple[int, str]:
    monkeypatch.setattr(devstack_checks, "steps", lambda root, args: fake_steps(*codes))
    out = io.StringIO()
    code = devstack_checks.run_checks(Path.cwd(), [], Console(file=out, width=200))
    return code, out.getvalue()


def test_all_steps_passing_passes_and_prints_the_duration(monkeypatch: pytest.MonkeyPatch) -> None:
    code, output = run(monkeypatch, 0, 0, 0)
    assert code == 0
    assert "all checks passed in" in output


def test_the_first_failing_step_decides_the_exit_code_and_stops_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, output = run(monkeypatch, 3, 4, 0)
    assert code == 3
    assert "first failed (exit 3)" in output
    assert "second" not in output


def test_pytest_collecting_no_tests_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    code, output = run(monkeypatch, 0, 0, 5)
    assert code == 5
    assert "pytest collected no tests" in output


def test_the_steps_are_ruff_format_ruff_check_mypy_then_pytest_with_extra_args() -> None:
    root = repo_root()
    steps = devstack_checks.steps(root, ["-k", "foo"])
    names = [title.split()[0:2] for title, _ in steps]
    assert names[:3] == [["ruff", "format"], ["ruff", "check"], ["mypy", "libs"]]
    assert names[-1] == ["pytest"]
    assert all(name[0] in ("mypy", "chromium") for name in names[3:-1])
    assert steps[0][1][1:] == ["format", "--check", "."]
    assert steps[-1][1][1:] == ["-k", "foo"]
    assert all(Path(argv[0]).is_file() for _, argv in steps)


def test_mypy_checks_every_library_and_service_source_strictly() -> None:
    root = repo_root()
    targets = devstack_checks.mypy_targets(root)
    assert "libs" in targets
    sources = sorted(str(p.relative_to(root)) for p in root.glob("services/*/src"))
    assert sources
    assert all(src in targets for src in sources)


def test_mypy_checks_each_services_tests_strictly_with_the_service_as_package_base() -> None:
    root = repo_root()
    folders = sorted(str(p.relative_to(root)) for p in root.glob("services/*/tests"))
    assert folders
    runs = {
        argv[-1]: argv
        for title, argv in devstack_checks.steps(root, [])
        if title.startswith("mypy services/")
    }
    assert sorted(runs) == folders
    for folder, argv in runs.items():
        service = str(Path(folder).parent)
        assert argv[1:3] == [f"MYPYPATH={service}", str(Path(sys.executable).parent / "mypy")]
