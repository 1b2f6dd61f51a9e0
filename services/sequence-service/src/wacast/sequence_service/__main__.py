"""`python -m wacast.sequence_service`: run the sequence-service."""

from __future__ import annotations

from wacast.runtime.service import run
from wacast.sequence_service.app import setup
from wacast.sequence_service.settings import Settings


def main() -> None:
    run("sequence-service", Settings, lambda s: s.sequences_port, setup, needs_database=True)


if __name__ == "__main__":
    main()
