"""The Device aggregate's rules, one command in and the events (or the refusal) out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from wacast.contracts import devices as ev
from wacast.contracts.commands import (
    CancelPairing,
    DeleteDevice,
    LogoutDevice,
    RegisterDevice,
    RenameDevice,
    StartPairing,
)
from wacast.device_gateway.domain.device import Device, Refused, accepts, decide, fold

NOW = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
T = "acme"


def _at(**fields: object) -> dict[str, object]:
    return {"tenant_id": T, "occurred_at": NOW, "device_id": "d1", **fields}


def registered() -> Device:
    return fold(Device("d1"), [ev.DeviceRegistered(**_at(name="Sales", driver="sim"))])  # type: ignore[arg-type]


def connected() -> Device:
    return fold(
        registered(),
        [
            ev.DevicePairingStarted(**_at(method="qr")),  # type: ignore[arg-type]
            ev.DevicePaired(**_at(phone="+14155550100", jid="14155550100@s.whatsapp.net")),  # type: ignore[arg-type]
            ev.DeviceConnected(**_at()),  # type: ignore[arg-type]
        ],
    )


def refusal(state: Device, command: object) -> Refused:
    with pytest.raises(Refused) as caught:
        decide(state, command, NOW)  # type: ignore[arg-type]
    return caught.value


def test_registering_creates_the_device_and_registering_it_again_is_refused() -> None:
    command = RegisterDevice(tenant_id=T, name=" Sales ", driver="sim", device_id="d1")

    events = decide(Device("d1"), command, NOW)

    assert events == [ev.DeviceRegistered(**_at(name="Sales", driver="sim"))]  # type: ignore[arg-type]
    assert refusal(fold(Device("d1"), events), command).status == 409


def test_an_unknown_device_is_not_found() -> None:
    assert refusal(Device("d1"), RenameDevice(tenant_id=T, device_id="d1", name="x")).status == 404


def test_pairing_an_already_paired_device_is_refused() -> None:
    refused = refusal(connected(), StartPairing(tenant_id=T, device_id="d1", method="qr"))

    assert (refused.status, refused.code) == (409, "already_paired")


def test_pairing_by_code_normalises_the_phone_to_e164() -> None:
    command = StartPairing(tenant_id=T, device_id="d1", method="code", phone="+1 415-555-0100")

    [started] = decide(registered(), command, NOW)

    assert isinstance(started, ev.DevicePairingStarted)
    assert started.phone == "+14155550100"


@pytest.mark.parametrize("phone", ["12345", "+1 000", "not a phone", "0044 20 7946 0958"])
def test_pairing_by_code_with_a_malformed_phone_is_refused(phone: str) -> None:
    command = StartPairing(tenant_id=T, device_id="d1", method="code", phone=phone)

    refused = refusal(registered(), command)

    assert (refused.status, refused.code) == (422, "invalid_phone")


def test_a_deleted_device_refuses_everything() -> None:
    deleted = fold(connected(), [ev.DeviceDeleteRequested(**_at()), ev.DeviceDeleted(**_at())])  # type: ignore[arg-type]

    for command in (
        StartPairing(tenant_id=T, device_id="d1"),
        CancelPairing(tenant_id=T, device_id="d1"),
        RenameDevice(tenant_id=T, device_id="d1", name="x"),
        LogoutDevice(tenant_id=T, device_id="d1"),
        DeleteDevice(tenant_id=T, device_id="d1"),
    ):
        assert refusal(deleted, command).status == 410
    assert not accepts(deleted, ev.DeviceConnected(**_at()))  # type: ignore[arg-type]


def test_deleting_asks_for_deletion_once() -> None:
    [requested] = decide(connected(), DeleteDevice(tenant_id=T, device_id="d1"), NOW)
    deleting = fold(connected(), [requested])

    assert isinstance(requested, ev.DeviceDeleteRequested)
    assert decide(deleting, DeleteDevice(tenant_id=T, device_id="d1"), NOW) == []
    assert accepts(deleting, ev.DeviceDeleted(**_at()))  # type: ignore[arg-type]


def test_logging_out_needs_a_paired_device() -> None:
    assert refusal(registered(), LogoutDevice(tenant_id=T, device_id="d1")).status == 409
    [out] = decide(connected(), LogoutDevice(tenant_id=T, device_id="d1"), NOW)
    assert out == ev.DeviceLoggedOut(**_at(reason="requested"))  # type: ignore[arg-type]


def test_cancelling_pairing_needs_a_pairing_device() -> None:
    assert refusal(registered(), CancelPairing(tenant_id=T, device_id="d1")).status == 409


def test_network_reports_that_change_nothing_are_not_recorded() -> None:
    online = connected()

    assert not accepts(online, ev.DeviceConnected(**_at()))  # type: ignore[arg-type]
    assert accepts(online, ev.DeviceDisconnected(**_at(reason="network")))  # type: ignore[arg-type]
    assert not accepts(registered(), ev.DeviceDisconnected(**_at(reason="network")))  # type: ignore[arg-type]
    assert not accepts(registered(), ev.DevicePaired(**_at(phone="+1", jid="j")))  # type: ignore[arg-type]
