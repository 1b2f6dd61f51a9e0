"""How tools find projections: the `wacast.projections` entry point group.

A package that keeps read models registers them in its pyproject.toml:

    [project.entry-points."wacast.projections"]
    reports = "wacast.report_service.projections:REGISTRATIONS"

The entry point's object is a `ProjectionRegistration`, a list or tuple of them, or a
zero-argument callable returning either. `factory` builds the projection only when it is
needed (listing costs nothing); `schema` is the Postgres schema its live tables sit in, the
one `wacast projections rebuild` replaces. Entry points are package metadata: after adding
one, re-sync the environment (`uv sync`) so that it is installed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from wacast.runtime.projection import Projection

GROUP = "wacast.projections"
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class RegistryError(Exception):
    """An entry point does not load, or does not name projections the right way."""


@dataclass(frozen=True)
class ProjectionRegistration:
    name: str
    """The projection's name (as in its checkpoints), unique across the installation."""
    schema: str
    """Postgres schema of its live tables."""
    factory: Callable[[], Projection]
    """Builds the projection; called once per run."""
    description: str = ""

    def __post_init__(self) -> None:
        for what, value in (("name", self.name), ("schema", self.schema)):
            if not _IDENTIFIER.fullmatch(value):
                raise ValueError(
                    f"projection {what} {value!r} must be a lower-case identifier "
                    "(a-z, 0-9, _; at most 63 characters)"
                )


def registrations_of(obj: Any, origin: str = "") -> list[ProjectionRegistration]:
    """Normalise what an entry point names into a list of registrations."""
    if isinstance(obj, ProjectionRegistration):
        return [obj]
    if isinstance(obj, list | tuple):
        found = [r for r in obj if isinstance(r, ProjectionRegistration)]
        if len(found) != len(obj):
            raise RegistryError(f"{origin}: every item must be a ProjectionRegistration")
        return found
    if callable(obj):
        return registrations_of(obj(), origin)
    raise RegistryError(f"{origin}: expected a ProjectionRegistration, not {type(obj).__name__}")


def discover(found: Iterable[EntryPoint] | None = None) -> list[ProjectionRegistration]:
    """Every registered projection, sorted by name; refuses two with the same name."""
    points = entry_points(group=GROUP) if found is None else found
    by_name: dict[str, ProjectionRegistration] = {}
    for point in points:
        origin = f"entry point {point.name} = {point.value}"
        try:
            loaded = point.load()
        except Exception as exc:
            raise RegistryError(f"{origin} does not load: {exc}") from exc
        for registration in registrations_of(loaded, origin):
            if registration.name in by_name:
                raise RegistryError(f"{origin}: a projection named {registration.name} exists")
            by_name[registration.name] = registration
    return [by_name[name] for name in sorted(by_name)]
