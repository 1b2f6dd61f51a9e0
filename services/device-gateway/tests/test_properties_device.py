"""Random commands and network reports over the device aggregate never break its rules:
its status moves only along the allowed transitions, a deleted device stays deleted, a
report is accepted only when it changes the device (the same report twice appends once), a
linked device has its phone, refusals are `Refused`, and the fold of the events is the state.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from wacast.contracts import devices as ev
from wacast.contracts.commands import (
    CancelPairing,
    DeleteDevice,
    DeviceCommand,
    LogoutDevice,
    RegisterDevice,
    RenameDevice,
    SetDeviceLimits,
    StartPairing,
)
from wacast.device_gateway.domain.device import LINKED, Device, Refused, accepts, decide, evolve

NOW = datetime(2030, 1, 7, 9, tzinfo=UTC)
T, D = "acme", "dev1"
ALLOWED: dict[str, set[str]] = {
    "absent": {"registered"},
    "registered": {"pairing", "deleting"},
    "pairing": {"paired", "registered", "logged_out", "deleting"},
    "paired": {"connected", "disconnected", "logged_out", "banned", "deleting"},
    "connected": {"disconnected", "logged_out", "banned", "deleting"},
    "disconnected": {"connected", "logged_out", "banned", "deleting"},
    "banned": {"connected", "logged_out", "deleting"},
    "logged_out": {"pairing", "deleting"},
    "deleting": {"deleted"},
    "deleted": set(),
}

ids = {"tenant_id": st.just(T), "device_id": st.just(D)}
command_strategy: st.SearchStrategy[DeviceCommand] = st.one_of(
    st.builds(RegisterDevice, name=st.sampled_from(["Sales", " ", "x" * 101]), **ids),
    st.builds(StartPairing, method=st.just("qr"), **ids),
    st.builds(
        StartPairing,
        method=st.just("code"),
        phone=st.sampled_from(["+14155550100", "12", "+1 415 555 0101"]),
        **ids,
    ),
    st.builds(CancelPairing, **ids),
    st.builds(RenameDevice, name=st.sampled_from(["Sales", "Support", ""]), **ids),
    st.builds(SetDeviceLimits, daily_cap=st.none() | st.integers(0, 500), **ids),
    st.builds(LogoutDevice, **ids),
    st.builds(DeleteDevice, **ids),
)
at = {"tenant_id": st.just(T), "device_id": st.just(D), "occurred_at": st.just(NOW)}
fact_strategy: st.SearchStrategy[ev.DeviceEvent] = st.one_of(
    st.builds(ev.DevicePaired, phone=st.just("+14155550100"), jid=st.just("1@s"), **at),
    st.builds(ev.DevicePairingFailed, reason=st.just("timeout"), **at),
    st.builds(ev.DeviceConnected, **at),
    st.builds(ev.DeviceDisconnected, reason=st.just("network"), **at),
    st.builds(ev.DeviceLoggedOut, reason=st.just("phone"), **at),
    st.builds(ev.DeviceBanned, until=st.sampled_from([None, NOW + timedelta(hours=1)]), **at),
    st.builds(ev.DeviceDeleted, **at),
)
steps = st.lists(st.one_of(command_strategy, fact_strategy), max_size=25)


def attempt(state: Device, command: DeviceCommand) -> list[ev.DeviceEvent] | Refused:
    try:
        return decide(state, command, NOW)
    except Refused as refused:
        return refused


@given(steps)
def test_random_commands_and_reports_keep_the_device_rules(
    script: list[DeviceCommand | ev.DeviceEvent],
) -> None:
    state = Device(D)
    history: list[ev.DeviceEvent] = []
    for step in script:
        if isinstance(step, ev.DeviceEventBase):
            if not accepts(state, step):
                continue
            events: list[ev.DeviceEvent] = [step]
        else:
            decided = attempt(state, step)
            if isinstance(decided, Refused):
                assert decided.status in (404, 409, 410, 422), decided
                assert decided.status != 410 or state.gone, (decided, state.status)
                assert not state.gone or decided.status in (409, 410), (decided, state.status)
                assert decided.status != 404 or state.status == "absent"
                continue
            events = decided
        for event in events:
            before = state.status
            state = evolve(state, event)
            history.append(event)
            assert state.status == before or state.status in ALLOWED[before], (before, event)
            if isinstance(event, ev.DeviceEventBase) and not isinstance(
                event, ev.DeviceRenamed | ev.DeviceLimitsChanged | ev.DeviceRegistered
            ):
                assert not accepts(state, event)
        assert state.status not in LINKED or state.phone
        assert state.device_id == D

    rebuilt = Device(D)
    for event in history:
        rebuilt = evolve(rebuilt, event)
    assert rebuilt == state


@given(steps, command_strategy)
def test_a_command_repeated_on_its_own_outcome_changes_nothing_or_is_refused(
    script: list[DeviceCommand | ev.DeviceEvent], command: DeviceCommand
) -> None:
    state = Device(D)
    for step in script:
        if isinstance(step, ev.DeviceEventBase):
            if accepts(state, step):
                state = evolve(state, step)
            continue
        decided = attempt(state, step)
        for event in [] if isinstance(decided, Refused) else decided:
            state = evolve(state, event)
    first = attempt(state, command)
    if isinstance(first, Refused) or isinstance(command, SetDeviceLimits | StartPairing):
        return
    for event in first:
        state = evolve(state, event)
    again = attempt(state, command)
    assert isinstance(again, Refused) or again == [], (command, first, again)
