"""The neonize driver: the shared contract against the recorded fake, then what is neonize's
own (signatures of the fake, pairing deadline, executor, logging, errors, media, stores)."""

from __future__ import annotations

import asyncio
import inspect
import io
import itertools
import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from wacast.device_gateway.drivers import neonize_events, neonize_sqlite
from wacast.device_gateway.drivers.base import (
    Driver,
    DriverError,
    Outbound,
    SendError,
)
from wacast.device_gateway.drivers.neonize_client import (
    CLIENT_METHODS,
    EVENT_METHODS,
    NeonizeClient,
    NeonizeClientFactory,
)
from wacast.device_gateway.drivers.neonize_driver import (
    NeonizeDriver,
    NeonizeOptions,
)
from wacast.device_gateway.drivers.neonize_loader import (
    bot_tag_problem,
    launch_environment,
)
from wacast.device_gateway.drivers.neonize_store import SqliteSessionStore

from .driver_contract import (
    DriverContract,
    Harness,
    RecordingListener,
    link,
    new_device_id,
    some_phone,
    text_to,
)
from .neonize_fake import FakeAClient, FakeEvent, FakeNetwork, api

SRC = Path(__file__).parents[1] / "src"


class FakeController:
    """The contract's `Network`, played by the fake."""

    def __init__(self, network: FakeNetwork) -> None:
        self.network = network

    async def complete_link(self, device_id: str, code: str | None = None) -> None:
        self.network.complete_link(device_id, code)

    async def drop(self, device_id: str) -> None:
        self.network.drop(device_id)

    async def logout_remotely(self, device_id: str) -> None:
        self.network.logout_remotely(device_id)

    async def ban(self, device_id: str, seconds: float) -> None:
        self.network.ban(device_id, int(seconds))

    async def mark_absent(self, phone: str) -> None:
        self.network.absent.add(phone)

    async def deliver(self, device_id: str, wa_message_id: str) -> None:
        self.network.receipt(device_id, wa_message_id)

    async def inbound(self, sender: str, to: str, text: str) -> None:
        self.network.inbound(sender, to, text)


DriverMaker = Callable[..., Awaitable[tuple[NeonizeDriver, RecordingListener]]]


@pytest.fixture
def network() -> FakeNetwork:
    return FakeNetwork(time_scale=0.05)


@pytest.fixture
async def make_driver(network: FakeNetwork, tmp_path: Path) -> AsyncIterator[DriverMaker]:
    drivers: list[NeonizeDriver] = []
    serial = itertools.count()

    async def make(**options: Any) -> tuple[NeonizeDriver, RecordingListener]:
        options.setdefault("sessions", str(tmp_path / f"sessions-{next(serial)}"))
        clients = NeonizeClientFactory(
            api, client_class=network.client_class, list_devices=network.list_devices
        )
        driver = NeonizeDriver(NeonizeOptions(**options), clients=clients)
        listener = RecordingListener()
        await driver.start(listener)
        drivers.append(driver)
        return driver, listener

    yield make
    for driver in drivers:
        await driver.close()
    network.shutdown()


class TestNeonizeDriverContract(DriverContract):
    @pytest.fixture
    async def harness(self, network: FakeNetwork, make_driver: DriverMaker) -> Harness:
        driver, listener = await make_driver()

        async def restart() -> tuple[Driver, RecordingListener]:
            return await make_driver()

        return Harness(driver, listener, FakeController(network), restart)


async def linked(make_driver: DriverMaker, network: FakeNetwork, **options: Any) -> Any:
    driver, listener = await make_driver(**options)
    harness = Harness(driver, listener, FakeController(network), make_driver)
    return harness, await link(harness)


# ---- the fake cannot drift from neonize 0.5.2 ------------------------------------------------


def _parameters(function: Any) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize("method", ["__init__", *CLIENT_METHODS])
def test_the_fake_client_has_the_real_clients_parameters(method: str) -> None:
    real = getattr(api.NewAClient, method)
    fake = getattr(FakeAClient, method)
    assert _parameters(fake) == _parameters(real)
    assert inspect.iscoroutinefunction(fake) == inspect.iscoroutinefunction(real)


@pytest.mark.parametrize("method", EVENT_METHODS)
def test_the_fake_event_registry_has_the_real_ones_parameters(method: str) -> None:
    assert _parameters(getattr(FakeEvent, method)) == _parameters(getattr(api.events.Event, method))


@pytest.mark.parametrize("method", CLIENT_METHODS)
def test_what_the_driver_calls_is_a_prefix_of_the_real_signature(method: str) -> None:
    used = _parameters(getattr(NeonizeClient, method))
    assert used == _parameters(getattr(api.NewAClient, method))[: len(used)]


def test_a_real_client_can_be_made_without_touching_the_network(tmp_path: Path) -> None:
    client = NeonizeClientFactory(api).new_client(
        str(tmp_path / "s.sqlite3"), jid="15550001:7@s.whatsapp.net", uuid="dev#1", new_device=False
    )
    assert client.uuid == b"dev#1"
    assert not client._stop_finalizer.alive  # type: ignore[attr-defined]
    assert not (tmp_path / "s.sqlite3").exists()


# ---- pairing --------------------------------------------------------------------------------


async def test_an_unscanned_qr_link_is_stopped_at_the_pairing_deadline(
    network: FakeNetwork, make_driver: DriverMaker
) -> None:
    network.time_scale = 0.002  # the six codes are over in 0.32 s; whatsmeow drops the socket
    driver, listener = await make_driver(pair_timeout=0.6)
    device_id = new_device_id()
    await driver.pair_qr(device_id)
    client = network.current(device_id)
    await listener.wait_for("on_qr", device_id, count=6)
    _, reason = await listener.wait_for("on_disconnected", device_id)
    assert reason == "pairing_timeout"
    assert client.uuid in network.stops
    assert client.connect_task is not None
    await asyncio.wait_for(client.connect_task, 5)  # its executor thread is free again
    with pytest.raises(LookupError):
        network.current(device_id)


async def test_a_pairing_code_is_asked_for_once_the_linking_socket_is_up(
    network: FakeNetwork, make_driver: DriverMaker
) -> None:
    driver, _ = await make_driver()
    device_id = new_device_id()
    phone = some_phone()
    code = await driver.pair_code(device_id, phone)
    issued, for_phone = network.codes[network.current(device_id).uuid]
    assert code == issued
    assert for_phone == phone[1:]


async def test_pairing_a_linked_device_again_is_refused(
    network: FakeNetwork, make_driver: DriverMaker
) -> None:
    harness, device = await linked(make_driver, network)
    with pytest.raises(DriverError) as refused:
        await harness.driver.pair_qr(device.device_id)
    assert refused.value.code == "already_linked"


# ---- threads, logging, environment ------------------------------------------------------------


@pytest.mark.asyncio(loop_scope="function")
async def test_the_default_executor_is_sized_and_connections_leave_threads_for_calls(
    network: FakeNetwork, make_driver: DriverMaker
) -> None:
    driver, _ = await make_driver(executor_workers=6, executor_reserve=2)
    for _ in range(4):  # each running client holds one executor thread
        await driver.pair_qr(new_device_id())
    with pytest.raises(DriverError) as refused:
        await driver.pair_qr(new_device_id())
    assert refused.value.code == "capacity"
    worker = await asyncio.wait_for(asyncio.to_thread(lambda: threading.current_thread().name), 5)
    assert worker.startswith("neonize")


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(SRC), **env},
        check=False,
    )


def test_importing_neonize_directly_would_take_over_the_root_logger() -> None:
    run = _python("import logging, neonize; print(len(logging.getLogger().handlers))")
    assert run.stdout.strip() == "1", run.stderr


def test_loading_neonize_leaves_the_root_logger_as_it_was() -> None:
    run = _python(
        "import logging\n"
        "root = logging.getLogger()\n"
        "before = (list(root.handlers), root.level)\n"
        "from wacast.device_gateway.drivers.neonize_loader import load_neonize\n"
        "load_neonize()\n"
        "assert (list(root.handlers), root.level) == before, (root.handlers, root.level)\n"
        "mine = logging.NullHandler(); root.addHandler(mine); root.setLevel(logging.ERROR)\n"
        "print('ok')\n"
    )
    assert run.stdout.strip() == "ok", run.stderr


def test_neonizes_go_runtime_sees_only_the_launch_environment() -> None:
    """Why `NEONIZE_BOT_TAG` cannot be set from Python: GODEBUG=inittrace=1 makes the Go
    runtime print its package inits, when it sees the variable."""
    set_late = _python("import os; os.environ['GODEBUG'] = 'inittrace=1'; import neonize")
    launched = _python("import neonize", GODEBUG="inittrace=1")
    assert "init " not in set_late.stderr
    assert "init " in launched.stderr


def test_the_bot_tag_check_reads_the_launch_environment(tmp_path: Path) -> None:
    environ = tmp_path / "environ"
    environ.write_bytes(b"PATH=/bin\0NEONIZE_BOT_TAG=off\0HOME=/root\0")
    assert launch_environment("NEONIZE_BOT_TAG", environ) == "off"
    assert launch_environment("MISSING", environ) is None
    assert bot_tag_problem("off", "off") is None
    assert bot_tag_problem("off", " OFF ") is None
    assert bot_tag_problem("on", None) is None
    assert bot_tag_problem("off", None) is not None
    assert bot_tag_problem("off", "on") is not None
    assert bot_tag_problem("on", "off") is not None


# ---- sending ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "reason", "retryable", "accepted"),
    [
        ("client is nil", "not_connected", True, False),
        ("the store doesn't contain a device JID", "not_connected", True, False),
        ("failed to send message node: websocket not connected", "not_connected", True, False),
        (
            "failed to get device list: failed to send usync query: websocket not connected",
            "send_failed",
            True,
            False,
        ),
        ("failed to encrypt for 1555:3@s.whatsapp.net: no session", "send_failed", True, False),
        ("can't send message to unknown server g.us2", "bad_recipient", False, False),
        ("server returned error 479", "rejected", False, False),
        ("timed out waiting for message send response", "unknown", False, None),
        ("message send was interrupted by websocket disconnection", "unknown", False, None),
        ("websocket not connected", "unknown", False, None),
        ("context deadline exceeded", "unknown", False, None),
    ],
)
def test_send_errors_tell_whether_the_message_may_have_left(
    error: str, reason: str, retryable: bool, accepted: bool | None
) -> None:
    failure = neonize_events.send_error(error)
    assert (failure.reason, failure.retryable, failure.accepted) == (reason, retryable, accepted)


@pytest.mark.parametrize(
    ("error", "accepted"),
    [("failed to get device list: no such user", False), ("server timed out", None)],
)
async def test_a_failed_send_carries_its_classification(
    network: FakeNetwork, make_driver: DriverMaker, error: str, accepted: bool | None
) -> None:
    harness, device = await linked(make_driver, network)
    network.send_failures.append(error)
    with pytest.raises(SendError) as failure:
        await harness.driver.send(device.device_id, text_to(some_phone()))
    assert failure.value.accepted is accepted
    assert failure.value.retryable is (accepted is False)


async def test_a_send_with_no_answer_in_time_is_unknown(
    network: FakeNetwork, make_driver: DriverMaker
) -> None:
    harness, device = await linked(make_driver, network, send_timeout=0.2)
    network.hold_sends = asyncio.Event()
    with pytest.raises(SendError) as failure:
        await harness.driver.send(device.device_id, text_to(some_phone()))
    assert (failure.value.reason, failure.value.accepted) == ("timeout", None)
    network.hold_sends.set()


async def test_a_recipient_is_looked_up_once_and_the_absent_are_never_sent_to(
    network: FakeNetwork, make_driver: DriverMaker
) -> None:
    harness, device = await linked(make_driver, network)
    phone, absent = some_phone(), "+14155550000"
    network.absent.add(absent)
    await harness.driver.send(device.device_id, text_to(phone))
    await harness.driver.send(device.device_id, text_to(phone))
    for _ in range(2):
        with pytest.raises(SendError):
            await harness.driver.send(device.device_id, text_to(absent))
    assert network.lookups == 2
    assert [sent.to for sent in network.sent] == [f"{phone[1:]}@s.whatsapp.net"] * 2


def _png() -> bytes:
    image = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(image, format="PNG")
    return image.getvalue()


async def test_media_goes_as_bytes_with_caption_name_and_type(
    network: FakeNetwork, make_driver: DriverMaker
) -> None:
    harness, device = await linked(make_driver, network)
    to = some_phone()
    await harness.driver.send(
        device.device_id, Outbound(to=to, text="see", media=_png(), media_kind="image")
    )
    await harness.driver.send(
        device.device_id,
        Outbound(
            to=to,
            text="terms",
            media=b"%PDF-1.4",
            media_kind="document",
            mime="application/pdf",
            filename="terms.pdf",
        ),
    )
    await harness.driver.send(
        device.device_id, Outbound(to=to, media=b"\0\0\0 ftypisom", media_kind="video")
    )
    image, document, video = (sent.message for sent in network.sent)
    assert image.imageMessage.caption == "see"
    assert (document.documentMessage.fileName, document.documentMessage.mimetype) == (
        "terms.pdf",
        "application/pdf",
    )
    assert document.documentMessage.caption == "terms"
    assert video.videoMessage.fileLength == 12


async def test_media_neonize_cannot_prepare_fails_before_anything_is_sent(
    network: FakeNetwork, make_driver: DriverMaker
) -> None:
    harness, device = await linked(make_driver, network)
    network.ffmpeg_missing = True
    bad = [
        Outbound(to=some_phone(), media=b"not an image", media_kind="image"),
        Outbound(to=some_phone(), media=b"\0\0\0 ftypisom", media_kind="video"),
        Outbound(to=some_phone()),
    ]
    for message in bad:
        with pytest.raises(SendError) as failure:
            await harness.driver.send(device.device_id, message)
        assert (failure.value.retryable, failure.value.accepted) == (False, False)
    assert network.sent == []


async def test_typing_composes_then_pauses(network: FakeNetwork, make_driver: DriverMaker) -> None:
    harness, device = await linked(make_driver, network)
    to = some_phone()
    await harness.driver.typing(device.device_id, to, 0.01)
    jid = f"{to[1:]}@s.whatsapp.net"
    assert network.presence == [
        (jid, "CHAT_PRESENCE_COMPOSING"),
        (jid, "CHAT_PRESENCE_PAUSED"),
    ]


# ---- sessions and clients -----------------------------------------------------------------------


async def test_every_client_of_a_device_has_its_own_go_key(
    network: FakeNetwork, make_driver: DriverMaker
) -> None:
    harness, device = await linked(make_driver, network)
    session = device.session(harness.listener)
    await harness.driver.disconnect(device.device_id)
    await harness.driver.connect(device.device_id, session)
    await harness.listener.wait_for("on_connected", device.device_id, count=2)
    first, second = (c.uuid for c in network.started if c.uuid.startswith(b"dev-"))
    assert first != second
    assert first in network.stops


async def test_a_client_that_fails_to_start_is_reported_disconnected(
    network: FakeNetwork, make_driver: DriverMaker
) -> None:
    harness, device = await linked(make_driver, network)
    session = device.session(harness.listener)
    await harness.driver.disconnect(device.device_id)
    network.refuse_start = "unable to open database file"
    await harness.driver.connect(device.device_id, session)
    _, reason = await harness.listener.wait_for(
        "on_disconnected", device.device_id, where=lambda args: args[1] != "requested"
    )
    assert reason == "client_failed: unable to open database file"


async def test_logout_unlinks_the_device_and_forgets_its_local_session(
    network: FakeNetwork, make_driver: DriverMaker
) -> None:
    harness, device = await linked(make_driver, network)
    await harness.driver.disconnect(device.device_id)  # offline: it is brought online to unlink
    await harness.driver.logout(device.device_id)
    assert device.jid not in network.linked
    with pytest.raises(DriverError) as failure:
        await harness.driver.connect(device.device_id, None)
    assert failure.value.code == "no_session"


async def test_a_connected_session_file_is_restored_byte_for_byte_elsewhere(
    network: FakeNetwork, make_driver: DriverMaker, tmp_path: Path
) -> None:
    harness, device = await linked(make_driver, network)
    session = device.session(harness.listener)
    assert neonize_sqlite.linked_device(session) == device.jid
    store = SqliteSessionStore(tmp_path / "elsewhere")
    store.path(device.device_id).parent.mkdir()
    stale = store.path(device.device_id).with_name(f"{device.device_id}.sqlite3-journal")
    stale.write_bytes(b"a journal of some older file")
    await store.restore(device.device_id, session)
    assert store.path(device.device_id).read_bytes() == session
    assert not stale.exists()


async def test_a_snapshot_includes_what_is_still_in_the_write_ahead_log(tmp_path: Path) -> None:
    path = tmp_path / "wal.sqlite3"
    writer = sqlite3.connect(path)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("CREATE TABLE whatsmeow_device (jid TEXT PRIMARY KEY)")
    writer.execute("INSERT INTO whatsmeow_device VALUES ('15550002:9@s.whatsapp.net')")
    writer.commit()
    try:
        data = await neonize_sqlite.snapshot(path)
    finally:
        writer.close()
    assert neonize_sqlite.linked_device(data) == "15550002:9@s.whatsapp.net"


async def test_a_session_that_is_not_a_whatsmeow_store_is_refused(
    network: FakeNetwork, make_driver: DriverMaker
) -> None:
    driver, _ = await make_driver()
    with pytest.raises(DriverError) as refused:
        await driver.connect(new_device_id(), b"not a database")
    assert refused.value.code == "bad_session"


async def test_postgres_sessions_are_pointers_and_resume_by_jid(
    network: FakeNetwork, make_driver: DriverMaker
) -> None:
    url = "postgres://wacast@localhost/sessions"
    harness, device = await linked(make_driver, network, sessions=url)
    session = device.session(harness.listener)
    assert json.loads(session) == {"jid": device.jid}
    await harness.driver.close()
    driver, listener = await make_driver(sessions=url)
    await driver.connect(device.device_id, session)
    await listener.wait_for("on_connected", device.device_id)
    assert api.jid_to_string(network.current(device.device_id).jid) == device.jid
    network.logout_remotely(device.device_id)
    await listener.wait_for("on_logged_out", device.device_id)
    with pytest.raises(DriverError) as refused:
        await driver.connect(device.device_id, session)
    assert refused.value.code == "logged_out"
    await listener.wait_for("on_logged_out", device.device_id, count=2)


async def test_connecting_a_running_device_again_starts_no_second_client(
    network: FakeNetwork, make_driver: DriverMaker
) -> None:
    harness, device = await linked(make_driver, network)
    await harness.driver.connect(device.device_id, device.session(harness.listener))
    assert len(network.started) == 1
    assert len(harness.listener.of("on_connected", device.device_id)) == 1


# ---- what whatsmeow reports ---------------------------------------------------------------------


async def test_a_replaced_stream_is_not_fought_over(
    network: FakeNetwork, make_driver: DriverMaker
) -> None:
    harness, device = await linked(make_driver, network)
    client = network.current(device.device_id)
    network.replace_stream(device.device_id)
    _, reason = await harness.listener.wait_for("on_disconnected", device.device_id)
    assert reason == "replaced"
    assert client.uuid in network.stops


async def test_a_temporary_ban_also_takes_the_device_offline(
    network: FakeNetwork, make_driver: DriverMaker
) -> None:
    harness, device = await linked(make_driver, network)
    network.ban(device.device_id, 3600)
    _, until, reason = await harness.listener.wait_for("on_banned", device.device_id)
    _, offline = await harness.listener.wait_for("on_disconnected", device.device_id)
    assert reason == "send_to_too_many_people"
    assert until > datetime.now(UTC) + timedelta(minutes=59)
    assert offline == "banned"
    with pytest.raises(SendError) as failure:
        await harness.driver.send(device.device_id, text_to(some_phone()))
    assert (failure.value.reason, failure.value.accepted) == ("not_connected", False)


@pytest.mark.parametrize(
    ("receipt", "kind"), [("DELIVERED", "delivered"), ("READ", "read"), ("PLAYED", "read")]
)
async def test_receipts_of_the_recipient_are_reported(
    network: FakeNetwork, make_driver: DriverMaker, receipt: str, kind: str
) -> None:
    harness, device = await linked(make_driver, network)
    sent = await harness.driver.send(device.device_id, text_to(some_phone()))
    network.receipt(device.device_id, sent.wa_message_id, "SENDER")  # our own other devices
    network.receipt(device.device_id, sent.wa_message_id, receipt)
    _, wa_message_id, reported, _ = await harness.listener.wait_for("on_receipt", device.device_id)
    assert (wa_message_id, reported) == (sent.wa_message_id, kind)
    assert len(harness.listener.of("on_receipt", device.device_id)) == 1


def test_a_message_from_a_hidden_number_is_reported_with_its_phone() -> None:
    from neonize.proto.Neonize_pb2 import Message as MessageEvent

    message = MessageEvent()
    source = message.Info.MessageSource
    source.Sender.User, source.Sender.Server = "93847561029384", "lid"
    source.SenderAlt.User, source.SenderAlt.Server = "14155550123", "s.whatsapp.net"
    message.Info.ID, message.Info.Timestamp = "3A0F", 1_764_000_000_000
    message.Message.conversation = "stop"
    inbound = neonize_events.inbound(message, api.extract_text)
    assert inbound is not None
    assert (inbound.sender, inbound.text, inbound.wa_message_id) == ("+14155550123", "stop", "3A0F")
    assert inbound.at is not None
    assert inbound.at.year == 2025
    source.IsGroup = True
    assert neonize_events.inbound(message, api.extract_text) is None


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("", ""), ("url", ""), ("image", "image"), ("gif", "video"), ("ptt", "audio"),
     ("document", "document"), ("sticker", "sticker"), ("vcard", "other")],
)  # fmt: skip
def test_an_inbound_message_reports_its_media_type(kind: str, expected: str) -> None:
    from neonize.proto.Neonize_pb2 import Message as MessageEvent

    message = MessageEvent()
    source = message.Info.MessageSource
    source.Sender.User, source.Sender.Server = "14155550123", "s.whatsapp.net"
    message.Info.ID, message.Info.MediaType = "3A10", kind
    inbound = neonize_events.inbound(message, api.extract_text)
    assert inbound is not None
    assert inbound.media_kind == expected
