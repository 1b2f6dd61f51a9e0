"""Settings from the environment: one msgspec Struct per service, every field `WACAST_<NAME>`.

A bad value stops the process at start-up with a message that names the variable, the
value and what was expected; nothing half-starts with a default it silently fell back to.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

ENV_PREFIX = "WACAST_"


class SettingsError(Exception):
    """A configuration value is missing or malformed; the message names the variable."""


class CommonSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What every wacast process needs. Service settings subclass this."""

    nats_url: str = "nats://127.0.0.1:4222"
    """NATS server(s), comma-separated."""
    namespace: str = "wacast"
    """Prefix of every stream, subject and bucket; lets installations share a NATS."""
    database_url: str = "postgresql://postgres@127.0.0.1:5432/wacast"
    """Postgres for read models (services that keep projections only)."""
    http_host: str = "127.0.0.1"
    """Address of the health, readiness and metrics endpoint."""
    log_level: str = "INFO"
    """DEBUG, INFO, WARNING or ERROR."""
    log_format: str = "json"
    """`json` (one object per line) or `text`."""
    clock: str = "system"
    """`system`, or `controlled` (tests advance it over the control subject)."""
    stream_replicas: int = 1
    """Replicas of each JetStream stream (3 on a cluster)."""

    def __post_init__(self) -> None:
        _one_of("log_level", self.log_level, ("DEBUG", "INFO", "WARNING", "ERROR"))
        _one_of("log_format", self.log_format, ("json", "text"))
        _one_of("clock", self.clock, ("system", "controlled"))
        if self.stream_replicas not in (1, 3, 5):
            raise ValueError("stream_replicas must be 1, 3 or 5")


S = TypeVar("S", bound=msgspec.Struct)


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def load_settings(cls: type[S], env: Mapping[str, str] | None = None) -> S:
    """Build `cls` from `WACAST_*` variables; unset ones keep their documented defaults."""
    source = os.environ if env is None else env
    raw: dict[str, Any] = {}
    for field in msgspec.structs.fields(cls):
        name = env_name(field.name)
        if name in source:
            raw[field.name] = source[name]
    try:
        return msgspec.convert(raw, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_explain(cls, raw, exc)) from None
    except ValueError as exc:
        raise SettingsError(_explain(cls, raw, exc)) from None


def _explain(cls: type[msgspec.Struct], raw: dict[str, Any], exc: Exception) -> str:
    message = str(exc)
    for field in msgspec.structs.fields(cls):
        if f"$.{field.name}" in message or message.startswith(f"{field.name} "):
            value = raw.get(field.name, "<default>")
            return f"{env_name(field.name)}={value!r} is invalid: {message}"
    return f"invalid settings for {cls.__name__}: {message}"


def _one_of(field: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{field} must be one of {', '.join(allowed)}")


def describe(cls: type[msgspec.Struct]) -> list[tuple[str, str, str]]:
    """(variable, default, doc) rows for the README's configuration table."""
    rows: list[tuple[str, str, str]] = []
    docs = _field_docs(cls)
    for field in msgspec.structs.fields(cls):
        default = "" if field.default is msgspec.NODEFAULT else repr(field.default)
        rows.append((env_name(field.name), default, docs.get(field.name, "")))
    return rows


def _field_docs(cls: type) -> dict[str, str]:
    import ast
    import inspect

    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            tree = ast.parse(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, following in zip(body, [*body[1:], None], strict=True):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[node.target.id] = " ".join(following.value.value.split())
    return docs
