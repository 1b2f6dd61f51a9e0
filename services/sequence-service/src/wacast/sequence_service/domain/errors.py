"""Why the domain refuses a command; the handlers turn it into a problem reply."""

from __future__ import annotations

from typing import Any


class Refused(Exception):
    def __init__(
        self, code: str, title: str, status: int = 409, detail: str = "", **extra: Any
    ) -> None:
        super().__init__(f"{code}: {detail or title}")
        self.code = code
        self.title = title
        self.status = status
        self.detail = detail
        self.extra = extra


def not_found(what: str, ident: str) -> Refused:
    return Refused(f"{what}_not_found", f"No such {what}", 404, f"{what} {ident} does not exist")
