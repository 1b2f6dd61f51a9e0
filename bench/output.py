"""What a benchmark prints: progress on stderr, one JSON object on stdout, and that object
saved under bench/results unless `--no-save`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from wacast.cli.commands_bench import save

RESULTS = Path(__file__).resolve().parent / "results"


def note(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def options(doc: str | None) -> argparse.ArgumentParser:
    """A script's options, described by its docstring's first line, with `--out` and
    `--no-save` (listed after the script's own)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    result = parser.add_argument_group("the result")
    result.add_argument("--out", type=Path, help="where to write the JSON (default bench/results)")
    result.add_argument("--no-save", action="store_true", help="only print the JSON")
    return parser


def print_and_save(name: str, result: dict[str, Any], args: argparse.Namespace) -> None:
    """Print the JSON; unless `--no-save`, write it to `--out`, or as `wacast bench` does:
    `bench/results/<name>-<timestamp>.json` and `<name>-latest.json`."""
    text = json.dumps(result, indent=2)
    print(text)
    if args.no_save:
        return
    out: Path | None = args.out
    if out is None:
        out = save(name, result, RESULTS)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    print(f"saved {out}", file=sys.stderr)
