"""Sequences and enrollments from the SEQUENCES stream.

An enrollment's status: active -> paused / active ... -> completed, failed or removed (final).
Enrollments of an erased lead are not stored.
"""

from __future__ import annotations

from collections.abc import Sequence

from wacast.contracts import sequences as s
from wacast.report_service.projections.tables import (
    Key,
    Row,
    Table,
    lock_shared,
    to_json,
    tombstoned,
)
from wacast.runtime.projection import DbConnection, Envelope

SEQUENCES = Table(
    "sequences",
    "sequence_id",
    (
        ("tenant_id", "text"),
        ("sequence_id", "text"),
        ("seq", "bigint"),
        ("name", "text"),
        ("status", "text"),
        ("steps", "jsonb"),
        ("pacing", "jsonb"),
        ("triggers", "jsonb"),
        ("on_failure", "text"),
        ("stop_on_reply", "text"),
        ("created_at", "timestamptz"),
        ("updated_at", "timestamptz"),
    ),
)

ENROLLMENTS = Table(
    "enrollments",
    "enrollment_id",
    (
        ("tenant_id", "text"),
        ("enrollment_id", "text"),
        ("seq", "bigint"),
        ("sequence_id", "text"),
        ("lead_id", "text"),
        ("device_id", "text"),
        ("status", "text"),
        ("reason", "text"),
        ("source", "text"),
        ("steps_sent", "integer"),
        ("last_step_id", "text"),
        ("next_step_id", "text"),
        ("next_due_at", "timestamptz"),
        ("started_at", "timestamptz"),
        ("updated_at", "timestamptz"),
    ),
)

SEQUENCE_EVENTS = (
    s.SequenceCreated,
    s.SequenceStepsChanged,
    s.SequenceSettingsChanged,
    s.SequenceActivated,
    s.SequencePaused,
    s.SequenceArchived,
)
FINAL = ("completed", "failed", "removed")


def sequence_created(env: Envelope, event: s.SequenceCreated) -> Row:
    return {
        "tenant_id": event.tenant_id,
        "sequence_id": event.sequence_id,
        "seq": env.seq,
        "name": event.name,
        "status": event.status,
        "steps": to_json(event.steps),
        "pacing": to_json(event.pacing),
        "triggers": to_json(event.triggers),
        "on_failure": event.on_failure,
        "stop_on_reply": event.stop_on_reply,
        "created_at": event.occurred_at,
        "updated_at": event.occurred_at,
    }


def evolve_sequence(row: Row, event: s.SequenceEvent) -> None:
    row["updated_at"] = event.occurred_at
    archived = row["status"] == "archived"
    if isinstance(event, s.SequenceStepsChanged):
        row["steps"] = to_json(event.steps)
    elif isinstance(event, s.SequenceSettingsChanged):
        row.update(
            name=event.name,
            pacing=to_json(event.pacing),
            triggers=to_json(event.triggers),
            on_failure=event.on_failure,
            stop_on_reply=event.stop_on_reply,
        )
    elif isinstance(event, s.SequenceActivated) and not archived:
        row["status"] = "active"
    elif isinstance(event, s.SequencePaused) and not archived:
        row["status"] = "paused"
    elif isinstance(event, s.SequenceArchived):
        row["status"] = "archived"


def enrollment_started(env: Envelope, event: s.EnrollmentStarted) -> Row:
    return {
        "tenant_id": event.tenant_id,
        "enrollment_id": event.enrollment_id,
        "seq": env.seq,
        "sequence_id": event.sequence_id,
        "lead_id": event.lead_id,
        "device_id": event.device_id,
        "status": "active",
        "reason": "",
        "source": event.source,
        "steps_sent": 0,
        "last_step_id": "",
        "next_step_id": "",
        "next_due_at": None,
        "started_at": event.occurred_at,
        "updated_at": event.occurred_at,
    }


def evolve_enrollment(row: Row, event: s.SequenceEvent) -> None:
    if row["status"] in FINAL:
        return
    row["updated_at"] = event.occurred_at
    if isinstance(event, s.EnrollmentStepScheduled):
        row.update(next_step_id=event.step_id, next_due_at=event.due_at)
    elif isinstance(event, s.EnrollmentStepSent):
        row.update(
            steps_sent=row["steps_sent"] + 1,
            last_step_id=event.step_id,
            next_step_id="",
            next_due_at=None,
        )
    elif isinstance(event, s.EnrollmentStepFailed):
        row.update(last_step_id=event.step_id, next_step_id="", next_due_at=None)
    elif isinstance(event, s.EnrollmentPaused):
        row.update(status="paused", reason=event.reason)
    elif isinstance(event, s.EnrollmentResumed):
        row.update(status="active", reason="")
    elif isinstance(event, s.EnrollmentCompleted | s.EnrollmentFailed | s.EnrollmentRemoved):
        status = {
            s.EnrollmentCompleted: "completed",
            s.EnrollmentFailed: "failed",
            s.EnrollmentRemoved: "removed",
        }[type(event)]
        row.update(status=status, reason=event.reason, next_step_id="", next_due_at=None)


async def apply(conn: DbConnection, batch: Sequence[Envelope]) -> set[Key]:
    """Apply a batch; returns the (tenant, sequence) pairs whose progress may have moved."""
    await lock_shared(conn)
    touched: set[Key] = set()
    seq_keys = {
        (e.event.tenant_id, e.event.sequence_id)
        for e in batch
        if isinstance(e.event, SEQUENCE_EVENTS)
    }
    sequences = await SEQUENCES.load(conn, seq_keys)
    enr_keys = {
        (e.event.tenant_id, e.event.enrollment_id)  # type: ignore[attr-defined]
        for e in batch
        if not isinstance(e.event, SEQUENCE_EVENTS)
    }
    enrollments = await ENROLLMENTS.load(conn, enr_keys)
    starts = [e.event for e in batch if isinstance(e.event, s.EnrollmentStarted)]
    erased = await tombstoned(
        conn, "erased_leads", "lead_id", {(e.tenant_id, e.lead_id) for e in starts}
    )
    changed_seq: set[Key] = set()
    changed_enr: set[Key] = set()
    for env in batch:
        event: s.SequenceEvent = env.event  # type: ignore[assignment]
        if isinstance(event, SEQUENCE_EVENTS):
            key = (event.tenant_id, event.sequence_id)
            if isinstance(event, s.SequenceCreated):
                sequences.setdefault(key, sequence_created(env, event))
            elif key in sequences:
                evolve_sequence(sequences[key], event)
            else:
                continue
            changed_seq.add(key)
            continue
        key = (event.tenant_id, event.enrollment_id)
        if isinstance(event, s.EnrollmentStarted):
            if key in enrollments or (event.tenant_id, event.lead_id) in erased:
                continue
            enrollments[key] = enrollment_started(env, event)
        elif key in enrollments:
            evolve_enrollment(enrollments[key], event)
        else:
            continue
        changed_enr.add(key)
        touched.add((event.tenant_id, event.sequence_id))
    await SEQUENCES.upsert(conn, (sequences[k] for k in changed_seq))
    await ENROLLMENTS.upsert(conn, (enrollments[k] for k in changed_enr))
    return touched | changed_seq
