"""The driver contract: what every `Driver` does, whatever WhatsApp is behind it.

`DriverContract` holds the tests. Each driver's test module subclasses it and provides the
`harness` fixture: a started driver, the `RecordingListener` it reports to, the `Network`
that plays WhatsApp's part (the recorded neonize fake in test_neonize_driver.py, the
wa-simulator's control API in test_driver_contract_sim.py) and a way to start a second
driver with no local state, as after a gateway restart on another machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import pytest

from wacast.device_gateway.drivers.base import (
    Driver,
    DriverError,
    Inbound,
    Outbound,
    SendError,
)

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
WAIT = 15.0


class Network(Protocol):
    """WhatsApp's side, as a test needs to move it."""

    async def complete_link(self, device_id: str, code: str | None = None) -> None:
        """The phone scans the device's current QR code, or enters the pairing `code`."""

    async def drop(self, device_id: str) -> None:
        """WhatsApp loses the device's connection (the device may come back by itself)."""

    async def logout_remotely(self, device_id: str) -> None:
        """The phone unlinks the device (Settings, Linked devices)."""

    async def ban(self, device_id: str, seconds: float) -> None: ...

    async def mark_absent(self, phone: str) -> None:
        """`phone` is not on WhatsApp."""

    async def deliver(self, device_id: str, wa_message_id: str) -> None:
        """Make the delivered receipt of a sent message arrive (a no-op where it comes by
        itself)."""

    async def inbound(self, sender: str, to: str, text: str) -> None:
        """`sender` writes to the linked phone `to`."""


class RecordingListener:
    """A `DriverListener` that keeps every call; callbacks named in `failing` raise after
    being recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.failing: set[str] = set()
        self._changed = asyncio.Condition()

    async def on_qr(self, device_id: str, code: str) -> None:
        await self._record("on_qr", device_id, code)

    async def on_paired(self, device_id: str, phone: str, jid: str) -> None:
        await self._record("on_paired", device_id, phone, jid)

    async def on_session(self, device_id: str, session: bytes) -> None:
        await self._record("on_session", device_id, session)

    async def on_connected(self, device_id: str) -> None:
        await self._record("on_connected", device_id)

    async def on_disconnected(self, device_id: str, reason: str) -> None:
        await self._record("on_disconnected", device_id, reason)

    async def on_logged_out(self, device_id: str, reason: str) -> None:
        await self._record("on_logged_out", device_id, reason)

    async def on_banned(self, device_id: str, until: datetime | None, reason: str) -> None:
        await self._record("on_banned", device_id, until, reason)

    async def on_receipt(
        self, device_id: str, wa_message_id: str, kind: Literal["delivered", "read"], at: datetime
    ) -> None:
        await self._record("on_receipt", device_id, wa_message_id, kind, at)

    async def on_inbound(self, device_id: str, message: Inbound) -> None:
        await self._record("on_inbound", device_id, message)

    async def _record(self, name: str, *args: Any) -> None:
        async with self._changed:
            self.calls.append((name, args))
            self._changed.notify_all()
        if name in self.failing:
            raise RuntimeError(f"{name} fails on purpose")

    def of(
        self, name: str, device_id: str, where: Callable[[tuple[Any, ...]], bool] | None = None
    ) -> list[tuple[Any, ...]]:
        return [
            args
            for called, args in self.calls
            if called == name and args[0] == device_id and (where is None or where(args))
        ]

    def names(self, device_id: str) -> list[str]:
        return [name for name, args in self.calls if args[0] == device_id]

    async def wait_for(
        self,
        name: str,
        device_id: str,
        *,
        count: int = 1,
        where: Callable[[tuple[Any, ...]], bool] | None = None,
        timeout: float = WAIT,
    ) -> tuple[Any, ...]:
        """The arguments of the `count`th `name` call for `device_id` (waits for it)."""

        async def arrived() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.of(name, device_id, where)) >= count)

        try:
            await asyncio.wait_for(arrived(), timeout)
        except TimeoutError:
            seen = self.names(device_id)
            message = f"no {name} #{count} for {device_id} in {timeout}s: {seen}"
            raise AssertionError(message) from None
        return self.of(name, device_id, where)[count - 1]


@dataclass
class Harness:
    driver: Driver
    listener: RecordingListener
    network: Network
    restart: Callable[[], Awaitable[tuple[Driver, RecordingListener]]]
    """Another started driver with no local state (the fixture closes it)."""


@dataclass(frozen=True)
class Linked:
    device_id: str
    phone: str
    jid: str

    def session(self, listener: RecordingListener) -> bytes:
        """The latest session the driver asked to persist."""
        session: bytes = listener.of("on_session", self.device_id)[-1][1]
        return session


def new_device_id() -> str:
    return f"dev-{uuid.uuid4().hex[:12]}"


def some_phone() -> str:
    return f"+1415555{random.randint(1000, 9999)}"


def text_to(phone: str, text: str = "hello from the contract") -> Outbound:
    return Outbound(to=phone, text=text, origin_message_id=uuid.uuid4().hex)


async def link(harness: Harness) -> Linked:
    """A device linked by QR code and connected."""
    device_id = new_device_id()
    listener = harness.listener
    await harness.driver.pair_qr(device_id)
    await listener.wait_for("on_qr", device_id)
    await harness.network.complete_link(device_id)
    _, phone, jid = await listener.wait_for("on_paired", device_id)
    await listener.wait_for("on_session", device_id)
    await listener.wait_for("on_connected", device_id)
    return Linked(device_id, phone, jid)


class DriverContract:
    """Subclass with a `harness` fixture to run the contract against a driver."""

    async def test_qr_pairing_reports_qr_then_paired_session_and_connected(
        self, harness: Harness
    ) -> None:
        device_id = new_device_id()
        listener = harness.listener
        await harness.driver.pair_qr(device_id)
        _, qr = await listener.wait_for("on_qr", device_id)
        await harness.network.complete_link(device_id)
        _, phone, jid = await listener.wait_for("on_paired", device_id)
        _, session = await listener.wait_for("on_session", device_id)
        await listener.wait_for("on_connected", device_id)
        names = listener.names(device_id)
        assert names.index("on_qr") < names.index("on_paired") < names.index("on_session")
        assert names.index("on_paired") < names.index("on_connected")
        assert qr
        assert E164.match(phone), phone
        assert "@" in jid
        assert session

    async def test_code_pairing_returns_an_eight_character_code_that_links(
        self, harness: Harness
    ) -> None:
        """Shown as WhatsApp shows it: `ABCD-EFGH` (whatsmeow and the simulator agree)."""
        device_id = new_device_id()
        phone = some_phone()
        code = await harness.driver.pair_code(device_id, phone)
        assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", code), code
        await harness.network.complete_link(device_id, code)
        _, paired_phone, _ = await harness.listener.wait_for("on_paired", device_id)
        await harness.listener.wait_for("on_connected", device_id)
        assert paired_phone == phone

    async def test_code_pairing_refuses_a_phone_that_is_not_e164(self, harness: Harness) -> None:
        with pytest.raises(DriverError):
            await harness.driver.pair_code(new_device_id(), "0812 555 0101")

    async def test_a_restarted_driver_resumes_a_device_from_its_stored_session_alone(
        self, harness: Harness
    ) -> None:
        linked = await link(harness)
        session = linked.session(harness.listener)
        await harness.driver.close()
        driver, listener = await harness.restart()
        await driver.connect(linked.device_id, session)
        await listener.wait_for("on_connected", linked.device_id)
        sent = await driver.send(linked.device_id, text_to(some_phone()))
        assert sent.wa_message_id

    async def test_a_sent_text_gets_a_whatsapp_id_then_a_delivered_receipt(
        self, harness: Harness
    ) -> None:
        linked = await link(harness)
        sent = await harness.driver.send(linked.device_id, text_to(some_phone()))
        assert sent.wa_message_id
        assert sent.at.tzinfo is not None
        await harness.network.deliver(linked.device_id, sent.wa_message_id)
        _, _, kind, at = await harness.listener.wait_for(
            "on_receipt", linked.device_id, where=lambda args: args[1] == sent.wa_message_id
        )
        assert kind == "delivered"
        assert at.tzinfo is not None

    async def test_a_number_not_on_whatsapp_fails_and_is_not_retryable(
        self, harness: Harness
    ) -> None:
        linked = await link(harness)
        absent = some_phone()
        await harness.network.mark_absent(absent)
        with pytest.raises(SendError) as failure:
            await harness.driver.send(linked.device_id, text_to(absent))
        assert failure.value.retryable is False
        assert failure.value.accepted is False

    async def test_a_disconnected_device_fails_sends_retryably_and_unsent(
        self, harness: Harness
    ) -> None:
        linked = await link(harness)
        await harness.driver.disconnect(linked.device_id)
        _, reason = await harness.listener.wait_for("on_disconnected", linked.device_id)
        assert reason == "requested"
        with pytest.raises(SendError) as failure:
            await harness.driver.send(linked.device_id, text_to(some_phone()))
        assert failure.value.retryable is True
        assert failure.value.accepted is False

    async def test_a_dropped_session_reports_disconnected_and_comes_back(
        self, harness: Harness
    ) -> None:
        linked = await link(harness)
        await harness.network.drop(linked.device_id)
        await harness.listener.wait_for("on_disconnected", linked.device_id)
        await harness.listener.wait_for("on_connected", linked.device_id, count=2)
        sent = await harness.driver.send(linked.device_id, text_to(some_phone()))
        assert sent.wa_message_id

    async def test_a_remote_logout_reports_logged_out_and_voids_the_session(
        self, harness: Harness
    ) -> None:
        linked = await link(harness)
        session = linked.session(harness.listener)
        await harness.network.logout_remotely(linked.device_id)
        await harness.listener.wait_for("on_logged_out", linked.device_id)
        with contextlib.suppress(DriverError):
            await harness.driver.connect(linked.device_id, session)
        await harness.listener.wait_for("on_logged_out", linked.device_id, count=2)
        with pytest.raises(SendError) as failure:
            await harness.driver.send(linked.device_id, text_to(some_phone()))
        assert failure.value.accepted is False

    async def test_a_ban_is_reported_with_when_it_ends(self, harness: Harness) -> None:
        linked = await link(harness)
        await harness.network.ban(linked.device_id, 600)
        _, until, reason = await harness.listener.wait_for("on_banned", linked.device_id)
        assert until is not None
        assert until > datetime.now(UTC)
        assert reason

    async def test_typing_returns_after_about_the_time_asked(self, harness: Harness) -> None:
        linked = await link(harness)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await harness.driver.typing(linked.device_id, some_phone(), 0.2)
        assert 0.15 <= loop.time() - started < WAIT

    async def test_an_inbound_message_is_reported(self, harness: Harness) -> None:
        linked = await link(harness)
        sender = some_phone()
        await harness.network.inbound(sender, linked.phone, "a reply")
        _, message = await harness.listener.wait_for("on_inbound", linked.device_id)
        assert message.sender == sender
        assert message.text == "a reply"
        assert message.wa_message_id

    async def test_a_failing_listener_does_not_stop_the_driver(self, harness: Harness) -> None:
        listener = harness.listener
        listener.failing |= {"on_qr", "on_paired", "on_session", "on_connected", "on_receipt"}
        linked = await link(harness)
        sent = await harness.driver.send(linked.device_id, text_to(some_phone()))
        await harness.network.deliver(linked.device_id, sent.wa_message_id)
        await listener.wait_for("on_receipt", linked.device_id)
        await harness.network.drop(linked.device_id)
        await listener.wait_for("on_disconnected", linked.device_id)
        await listener.wait_for("on_connected", linked.device_id, count=2)
