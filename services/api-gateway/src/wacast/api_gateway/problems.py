"""RFC 9457 problem details: the one shape of every error the API answers.

Every error goes through here: a command's or query's `Problem` (the owner's decision), a
request that fails validation, an unknown route, a missing key, a rate limit, a crash.
`type` is `urn:wacast:problem:<code>`; `code` repeats the code for clients that switch on it.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec

from wacast.contracts.base import Problem, Reply

log = logging.getLogger("wacast.api")

PROBLEM_JSON = "application/problem+json"

TITLES = {
    400: ("bad_request", "The request is malformed"),
    401: ("unauthorized", "A valid API key is needed"),
    403: ("forbidden", "This key may not do that"),
    404: ("not_found", "No such resource"),
    405: ("method_not_allowed", "The method is not allowed here"),
    409: ("conflict", "The request conflicts with the current state"),
    413: ("too_large", "The request body is too large"),
    415: ("unsupported_media_type", "The body's content type is not accepted here"),
    422: ("invalid_request", "The request is not valid"),
    429: ("rate_limited", "Too many requests"),
    500: ("internal", "Something went wrong on our side"),
    503: ("unavailable", "A service behind the API is not running"),
    504: ("timeout", "A service behind the API did not answer in time"),
}


class ProblemDetails(msgspec.Struct, frozen=True, kw_only=True):
    """An error (RFC 9457). `errors` lists what was wrong, field by field when known."""

    type: str
    title: str
    status: int
    code: str
    detail: str = ""
    instance: str = ""
    errors: list[dict[str, Any]] = msgspec.field(default_factory=list)


class ApiProblem(Exception):
    """Raised anywhere in a request to answer with a problem."""

    def __init__(
        self,
        status: int,
        code: str | None = None,
        title: str | None = None,
        detail: str = "",
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        default_code, default_title = TITLES.get(status, ("error", "The request failed"))
        self.status = status
        self.code = code or default_code
        self.title = title or default_title
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}
        super().__init__(f"{status} {self.code}: {detail or self.title}")

    @classmethod
    def of(cls, problem: Problem) -> ApiProblem:
        return cls(problem.status, problem.code, problem.title, problem.detail, problem.errors)

    @classmethod
    def of_reply(cls, reply: Reply) -> ApiProblem:
        if reply.problem is None:
            return cls(500, detail="an owner refused without saying why")
        return cls.of(reply.problem)

    def details(self, instance: str = "") -> ProblemDetails:
        return ProblemDetails(
            type=f"urn:wacast:problem:{self.code}",
            title=self.title,
            status=self.status,
            code=self.code,
            detail=self.detail,
            instance=instance,
            errors=self.errors,
        )


def problem_response(
    problem: ApiProblem, request: Request[Any, Any, Any] | None = None
) -> Response[Any]:
    path = request.url.path if request is not None else ""
    return Response(
        content=problem.details(path),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


def on_api_problem(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, ApiProblem)
    return problem_response(exc, request)


def on_validation(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, ValidationException)
    extra = exc.extra if isinstance(exc.extra, list) else []
    errors = [e for e in extra if isinstance(e, dict)]
    return problem_response(ApiProblem(422, detail=_one_line(exc.detail), errors=errors), request)


def on_http(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if status == 400:
        status = 422
    headers = dict(exc.headers or {})
    detail = exc.detail if exc.detail != TITLES.get(exc.status_code, ("", ""))[1] else ""
    return problem_response(ApiProblem(status, detail=_one_line(detail), headers=headers), request)


def on_crash(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(ApiProblem(500), request)


EXCEPTION_HANDLERS = {
    ApiProblem: on_api_problem,
    ValidationException: on_validation,
    HTTPException: on_http,
    Exception: on_crash,
}


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:500]


def responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problems an operation may answer (401, 422 and 429 always;
    400 too, in the problem shape, where Litestar would otherwise describe its own)."""
    every = sorted({400, 401, 422, 429, *statuses})
    return {
        status: ResponseSpec(
            data_container=ProblemDetails,
            description=TITLES.get(status, ("", "Error"))[1],
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for status in every
    }
