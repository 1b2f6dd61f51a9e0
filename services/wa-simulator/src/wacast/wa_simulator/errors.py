"""What the control API answers when asked for something the network cannot do."""

from __future__ import annotations


class SimProblem(Exception):
    """Becomes an RFC 9457 problem response: `status` 400, 404 or 409, a stable `code`."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


def not_found(detail: str) -> SimProblem:
    return SimProblem(404, "not_found", detail)


def conflict(code: str, detail: str) -> SimProblem:
    return SimProblem(409, code, detail)


def bad_request(code: str, detail: str) -> SimProblem:
    return SimProblem(400, code, detail)
