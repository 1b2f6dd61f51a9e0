"""What the service does when other owners' events arrive (durable consumers).

Leads: triggers enroll; opt-out, deletion and erasure remove the lead from every sequence
(erasure also purges the send requests and outcomes of the lead's steps, which hold its
phone and texts); a new device may resume a paused enrollment. Devices: a reconnect resumes
enrollments paused because their device was offline (what fell due is requested now, and
the device's lane paces it); a deleted device's leads are removed. Messages: a step's
outcome is recorded and the next step scheduled. Inbound: a message the lead wrote
(`InboundMessageReceived`, whichever message it answers) ends, pauses or leaves alone each
of the lead's running enrollments that started before it, as its sequence's `stop_on_reply`
says. Every reaction is idempotent: redelivery decides again on the current state.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from wacast.contracts import ids
from wacast.contracts.devices import DeviceConnected, DeviceDeleted, DeviceDeleteRequested
from wacast.contracts.leads import (
    LeadDeleted,
    LeadDeviceAssigned,
    LeadErased,
    LeadEventBase,
    LeadOptedOut,
)
from wacast.contracts.messages import (
    InboundMessageReceived,
    MessageCancelled,
    MessageFailed,
    MessageSent,
)
from wacast.contracts.streams import DEVICES, LEADS, MESSAGES, SEQUENCES, StreamSpec
from wacast.runtime.projection import Envelope
from wacast.sequence_service.core import Core
from wacast.sequence_service.domain import enrollment as rules
from wacast.sequence_service.domain.enrollment import Decision, Enrollment
from wacast.sequence_service.domain.sequence import Sequence
from wacast.sequence_service.domain.steps import outcome
from wacast.sequence_service.domain.triggers import TRIGGERING, fires

REACTION_WAIT_SECONDS = 20.0
"""How long a reaction waits for the private tables (less than the consumer's ack wait)."""


class NotCaughtUp(Exception):
    """The private tables did not reach the event in time: retry the event later."""


class Reactions:
    def __init__(self, core: Core) -> None:
        self.core = core
        self._triggered: dict[str, list[Sequence]] = {}
        self._triggered_at = -1

    async def _reach(self, stream: str, seq: int) -> None:
        if not await self.core.runner.wait_until(stream, seq, REACTION_WAIT_SECONDS):
            raise NotCaughtUp(f"{stream} {seq}")

    async def _caught_up(self, *specs: StreamSpec) -> None:
        if not await self.core.caught_up(*specs, timeout=REACTION_WAIT_SECONDS):
            raise NotCaughtUp(", ".join(spec.key for spec in specs))

    # leads -------------------------------------------------------------------------
    async def on_lead(self, env: Envelope) -> None:
        event = env.event
        if not isinstance(event, LeadEventBase):
            return
        if isinstance(event, TRIGGERING):
            await self._triggers(env)
        elif isinstance(event, LeadOptedOut | LeadDeleted | LeadErased):
            reason = (
                "opted_out"
                if isinstance(event, LeadOptedOut)
                else "device_deleted"
                if isinstance(event, LeadDeleted) and event.reason == "device_deleted"
                else "lead_deleted"
            )
            await self._caught_up(SEQUENCES)
            running = await self.core.lookups.running_of_lead(event.tenant_id, event.lead_id)
            before = [s for s in running if s.state.started_at <= event.occurred_at]
            await self.core.remove(before, reason)
            if isinstance(event, LeadErased):
                await self._purge_steps(event.tenant_id, event.lead_id)
        elif isinstance(event, LeadDeviceAssigned):
            await self._reach(LEADS.key, env.seq)
            await self._resume_on(event.tenant_id, event.device_id, "device_assigned")

    async def _triggers(self, env: Envelope) -> None:
        event = env.event
        candidates = await self._triggered_sequences(event.tenant_id)
        if not candidates:
            return
        await self._reach(LEADS.key, env.seq)
        key = (event.tenant_id, getattr(event, "lead_id", ""))
        lead = (await self.core.lookups.leads([key])).get(key)
        if lead is None or not lead.reachable or not lead.device_id:
            return
        for sequence in candidates:
            if fires(sequence, event, lead.device_id):
                await self.core.enroller.enroll(sequence, [lead], "trigger", self.core.clock.now())

    async def _triggered_sequences(self, tenant_id: str) -> list[Sequence]:
        """Active sequences with triggers, read again whenever a sequence changed."""
        changed = self.core.tables.last_sequence_change
        if changed != self._triggered_at:
            await self._reach(SEQUENCES.key, changed)
            found: dict[str, list[Sequence]] = {}
            for sequence in await self.core.lookups.triggered():
                found.setdefault(sequence.tenant_id, []).append(sequence)
            self._triggered, self._triggered_at = found, changed
        return self._triggered.get(tenant_id, [])

    # devices -----------------------------------------------------------------------
    async def on_device(self, env: Envelope) -> None:
        event = env.event
        if isinstance(event, DeviceConnected):
            await self._reach(DEVICES.key, env.seq)
            await self._resume_on(event.tenant_id, event.device_id, "device_connected")
        elif isinstance(event, DeviceDeleteRequested | DeviceDeleted):
            await self._caught_up(LEADS, SEQUENCES)
            running = await self.core.lookups.running_of_device(event.tenant_id, event.device_id)
            await self.core.remove(running, "device_deleted")

    async def _resume_on(self, tenant_id: str, device_id: str, reason: str) -> None:
        """Resume enrollments paused for an offline device, if `device_id` is online now.

        Waits for the tables to hold every pause appended so far: a timer that paused an
        enrollment just before the device came back is resumed here, or sees the device
        online itself and resumes it.
        """
        device = (await self.core.lookups.devices([(tenant_id, device_id)])).get(
            (tenant_id, device_id)
        )
        if device is None or not device.online:
            return
        await self._caught_up(SEQUENCES)
        paused = await self.core.lookups.running_of_device(
            tenant_id, device_id, paused_offline_only=True
        )
        await self.core.resume(paused, reason)

    async def _purge_steps(self, tenant_id: str, lead_id: str) -> None:
        """The send requests (phone, rendered text) and outcomes (reply texts) of every step
        the lead's enrollments requested. Run after the removal withdrew what waits."""
        js, topology = self.core.js, self.core.topology
        stream = MESSAGES.name(topology)
        for snap in await self.core.lookups.enrollments_of_lead(tenant_id, lead_id):
            state = snap.state
            for step_id in sorted({*state.done, state.step_id} - {""}):
                message_id = ids.step_message_id(state.enrollment_id, step_id)
                for pattern in (
                    f"{topology.prefix}.sendreq.*.{tenant_id}.*.{message_id}",
                    topology.message(tenant_id, message_id),
                ):
                    await js.purge_stream(stream, subject=pattern)

    # messages ----------------------------------------------------------------------
    async def on_message(self, env: Envelope) -> None:
        event = env.event
        if not isinstance(event, MessageSent | MessageFailed | MessageCancelled):
            return
        if event.origin != "sequence":
            return
        core = self.core
        tenant, eid = event.tenant_id, event.origin_id
        snap = await core.lookups.enrollment(tenant, eid) or await core.runs.load(tenant, eid)
        if snap is None:
            return
        key = (tenant, snap.state.sequence_id)
        sequence = (await core.lookups.sequences([key])).get(key)
        if sequence is None:
            return
        timezone = (await core.lookups.timezones([tenant]))[tenant]

        def decide(state: Enrollment) -> Decision:
            return outcome(
                state,
                sequence,
                message_id=event.message_id,
                sent=isinstance(event, MessageSent),
                reason="" if isinstance(event, MessageSent) else event.reason,
                at=event.occurred_at,
                timezone=timezone,
            )

        await core.runs.decide(tenant, eid, decide, snap)

    async def on_inbound(self, env: Envelope) -> None:
        """The lead wrote: each of its running enrollments that started before follows its
        sequence's `stop_on_reply`."""
        event = env.event
        if not isinstance(event, InboundMessageReceived) or not event.lead_id:
            return
        core = self.core
        await self._caught_up(SEQUENCES)
        running = await core.lookups.running_of_lead(event.tenant_id, event.lead_id)
        before = [s for s in running if s.state.started_at < event.occurred_at]
        if not before:
            return
        keys = {(event.tenant_id, s.state.sequence_id) for s in before}
        sequences = await core.lookups.sequences(keys)
        now = core.clock.now()
        for snap in before:
            sequence = sequences.get((event.tenant_id, snap.state.sequence_id))
            if sequence is None or sequence.stop_on_reply == "ignore":
                continue
            await core.runs.decide(
                event.tenant_id, snap.state.enrollment_id, _replied(sequence, now), snap
            )


def _replied(sequence: Sequence, now: datetime) -> Callable[[Enrollment], Decision]:
    return lambda state: rules.replied(state, sequence, now)
