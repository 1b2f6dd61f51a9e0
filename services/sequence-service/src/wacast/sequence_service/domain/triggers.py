"""Which lead events enroll a lead in which sequences, by the sequences' triggers.

A new lead gains its initial tags (so `tag_added` fires on creation too); a status
trigger fires when the status changes to it. Only events that happened while the sequence
was active count, so replaying old lead events never enrolls anyone.
"""

from __future__ import annotations

from wacast.contracts.base import Event
from wacast.contracts.leads import LeadCreated, LeadStatusChanged, LeadTagsChanged
from wacast.contracts.values import Trigger
from wacast.sequence_service.domain.sequence import Sequence

TRIGGERING = (LeadCreated, LeadTagsChanged, LeadStatusChanged)


def _fires(trigger: Trigger, event: Event, device_id: str) -> bool:
    if trigger.device_ids and device_id not in trigger.device_ids:
        return False
    if trigger.on == "lead_created":
        return isinstance(event, LeadCreated)
    if trigger.on == "tag_added":
        gained = event.tags if isinstance(event, LeadCreated) else getattr(event, "added", [])
        return trigger.tag in gained
    return isinstance(event, LeadStatusChanged) and event.status == trigger.status


def fires(sequence: Sequence, event: Event, device_id: str) -> bool:
    """Does `event` (about a lead now on `device_id`) enroll the lead in `sequence`?"""
    if sequence.status != "active" or sequence.activated_at is None:
        return False
    if event.occurred_at < sequence.activated_at:
        return False
    return any(_fires(t, event, device_id) for t in sequence.triggers)
