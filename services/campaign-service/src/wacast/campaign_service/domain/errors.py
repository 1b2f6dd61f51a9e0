"""The one way the domain says no; handlers turn it into a problem reply."""

from __future__ import annotations

from typing import Any


class Refused(Exception):
    """A command that cannot be carried out, with its problem code and HTTP status.

    404: the thing is unknown; 409: it is in a state that forbids the command; 422: the
    input is not acceptable.
    """

    def __init__(
        self, code: str, title: str, status: int = 409, detail: str = "", **extra: Any
    ) -> None:
        super().__init__(f"{code}: {title}" + (f" ({detail})" if detail else ""))
        self.code = code
        self.title = title
        self.status = status
        self.detail = detail
        self.extra = extra


def not_found(what: str, ident: str) -> Refused:
    return Refused(f"{what}_not_found", f"No such {what}", 404, f"{what} {ident!r} is unknown")


def invalid(code: str, title: str, detail: str = "", **extra: Any) -> Refused:
    return Refused(code, title, 422, detail, **extra)
