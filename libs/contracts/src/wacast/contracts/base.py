"""The shapes every event and command shares, and the one JSON codec."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import msgspec
from msgspec.structs import force_setattr

from wacast.contracts.subjects import Topology


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """A fact appended to a stream. Past tense, immutable, versioned.

    Each concrete event names its aggregate id field; `v` is its schema version, stored
    with the payload so that an old shape can be upcast on read (see `versioning`).
    Built in code without `v`, an event takes its class's current `version`; decoded, it
    keeps the `v` it was stored with.

    `subject_kind` is the subject token after the prefix that the event is stored under
    (it decides the stream), and `subject()` is the aggregate subject it is appended to.
    """

    version: ClassVar[int] = 1
    subject_kind: ClassVar[str] = ""

    tenant_id: str
    occurred_at: datetime
    v: int = 0

    def __post_init__(self) -> None:
        current = type(self).version
        if self.v == 0:
            force_setattr(self, "v", current)
        elif self.v > current:
            raise msgspec.ValidationError(
                f"{type(self).__name__} v{self.v} is newer than this code knows (v{current})"
            )
        elif self.v < 0:
            raise ValueError(f"{type(self).__name__}: schema version must be positive")
        if self.occurred_at.tzinfo is None:
            raise ValueError(f"{type(self).__name__}.occurred_at must be timezone-aware")

    def subject(self, topology: Topology) -> str:
        """The aggregate subject this event is appended to."""
        raise TypeError(f"{type(self).__name__} names no subject: give it a subject kind")


class Command(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """A request to an owning service, imperative. Answered with a `Reply`.

    `idempotency_key` (optional, from the client) makes a retried command return the
    first reply instead of acting twice; owners derive their `Nats-Msg-Id` from it.
    """

    tenant_id: str
    idempotency_key: str = ""


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """Why a command was refused; maps one to one onto RFC 9457 problem details."""

    code: str
    title: str
    status: int = 400
    detail: str = ""
    errors: list[dict[str, Any]] = msgspec.field(default_factory=list)


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    """The owner's decision on a command.

    `seq` is the stream sequence of the last event it appended (0 when none), so that
    a following query can wait until projections have reached it (read your writes).
    """

    ok: bool
    seq: int = 0
    stream: str = ""
    id: str = ""
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    problem: Problem | None = None


encoder = msgspec.json.Encoder()


def encode(obj: Any) -> bytes:
    return encoder.encode(obj)
