"""`python -m wacast.report_service`: run the report-service."""

from __future__ import annotations

from wacast.report_service.app import setup
from wacast.report_service.settings import Settings
from wacast.runtime.service import run


def main() -> None:
    run("report-service", Settings, lambda s: s.reports_port, setup, needs_database=True)


if __name__ == "__main__":
    main()
