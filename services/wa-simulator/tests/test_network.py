"""The network model driven frame by frame on a hand-wound clock (no sockets, no sleeps)."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from wacast.contracts.sim_protocol import (
    Banned,
    Connect,
    Disconnect,
    Disconnected,
    DriverFrame,
    Error,
    Inbound,
    LoggedOut,
    Logout,
    Ok,
    PairCode,
    PairCodeIssued,
    Paired,
    PairQr,
    Qr,
    Receipt,
    Send,
    SendResult,
    SimFrame,
    Typing,
    sim_batch_decoder,
)
from wacast.wa_simulator.connection import DriverConnection
from wacast.wa_simulator.errors import SimProblem
from wacast.wa_simulator.network import Network
from wacast.wa_simulator.settings import Settings
from wacast.wa_simulator.timers import Timers

F = TypeVar("F")
TO = "+4915112345678"


class Sim:
    """A network on a fake clock, with one driver connection and frame helpers."""

    def __init__(self, **settings: Any) -> None:
        self.now = 1_000.0
        self.timers = Timers(lambda: self.now)
        self.settings = Settings(**{"sim_pair_delay": 0.0, "sim_seed": 7, **settings})
        self.net = Network(
            self.settings,
            timers=self.timers,
            rng=random.Random(7),
            wall=lambda: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=self.now),
        )
        self.conn = self.net.open_connection()

    def advance(self, seconds: float) -> None:
        """Move the clock, firing every timer on the way at its own due time."""
        target = self.now + seconds
        while (due := self.timers.next_due()) is not None and due <= target:
            self.now = max(self.now, due)
            self.timers.fire_due()
        self.now = target

    def do(self, frame: DriverFrame, conn: DriverConnection | None = None) -> None:
        self.net.handle(conn or self.conn, frame)

    def frames(self, conn: DriverConnection | None = None) -> list[SimFrame]:
        out: list[SimFrame] = []
        while (batch := (conn or self.conn).take_batch()) is not None:
            out.extend(sim_batch_decoder.decode(batch))
        return out

    def link(self, device_id: str, phone: str | None = None) -> str:
        self.do(PairQr(device_id=device_id))
        self.net.scan(device_id, phone)
        paired = only(self.frames(), Paired)
        return paired.session

    def send(self, device_id: str, req_id: str, to: str = TO, **fields: Any) -> None:
        self.do(Send(req_id=req_id, device_id=device_id, to=to, text="hi", **fields))


def only(frames: list[SimFrame], kind: type[F]) -> F:
    found = [f for f in frames if isinstance(f, kind)]
    assert len(found) == 1, f"expected one {kind.__name__} in {frames}"
    return found[0]


def kinds(frames: list[SimFrame]) -> list[str]:
    return [type(f).__name__ for f in frames]


def test_qr_references_rotate_until_the_code_is_scanned() -> None:
    sim = Sim(sim_qr_rotate_seconds=20)
    sim.do(PairQr(req_id="r1", device_id="d1"))
    first = sim.frames()
    assert kinds(first) == ["Qr", "Ok"]
    sim.advance(19.9)
    assert sim.frames() == []
    sim.advance(0.2)
    second = only(sim.frames(), Qr)
    assert second.code != only(first, Qr).code
    assert second.code.startswith("2@")
    sim.advance(40)
    assert kinds(sim.frames()) == ["Qr", "Qr"]
    sim.net.scan("d1", "+4917700000001")
    frames = sim.frames()
    assert kinds(frames) == ["Paired", "Connected"]
    paired = only(frames, Paired)
    assert (paired.phone, paired.jid) == ("+4917700000001", "4917700000001@s.whatsapp.net")
    sim.advance(60)
    assert sim.frames() == []  # no more rotations once linked


def test_a_started_link_completes_by_itself_after_the_pair_delay_with_a_fixed_phone() -> None:
    phones = []
    for _ in range(2):
        sim = Sim(sim_pair_delay=1.0)
        sim.do(PairQr(device_id="auto-1"))
        sim.advance(0.9)
        assert kinds(sim.frames()) == ["Qr"]
        sim.advance(0.2)
        phones.append(only(sim.frames(), Paired).phone)
    assert phones[0] == phones[1]
    assert re.fullmatch(r"\+1555\d{8}", phones[0])


def test_pairing_by_code_needs_the_right_code() -> None:
    sim = Sim()
    sim.do(PairCode(req_id="r1", device_id="d1", phone="0176 123"))
    error = only(sim.frames(), Error)
    assert (error.req_id, error.code) == ("r1", "bad_phone")
    sim.do(PairCode(req_id="r2", device_id="d1", phone="+4917612345678"))
    issued = only(sim.frames(), PairCodeIssued)
    assert issued.req_id == "r2"
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", issued.code)
    with pytest.raises(SimProblem) as wrong:
        sim.net.enter_code("d1", "AAAA-AAAA", None)
    assert (wrong.value.status, wrong.value.code) == (400, "wrong_code")
    with pytest.raises(SimProblem) as other_phone:
        sim.net.enter_code("d1", issued.code, "+4917600000009")
    assert other_phone.value.code == "wrong_phone"
    with pytest.raises(SimProblem) as by_qr:
        sim.net.scan("d1", None)
    assert (by_qr.value.status, by_qr.value.code) == (409, "not_pairing")
    sim.net.enter_code("d1", issued.code.replace("-", "").lower(), None)
    frames = sim.frames()
    assert kinds(frames) == ["Paired", "Connected"]
    assert only(frames, Paired).phone == "+4917612345678"


def test_a_linked_device_cannot_be_paired_again() -> None:
    sim = Sim()
    sim.link("d1")
    sim.do(PairQr(req_id="r1", device_id="d1"))
    assert only(sim.frames(), Error).code == "already_linked"
    with pytest.raises(SimProblem) as exc:
        sim.net.scan("d1", None)
    assert (exc.value.status, exc.value.code) == (409, "already_linked")
    with pytest.raises(SimProblem) as unknown:
        sim.net.scan("nobody", None)
    assert unknown.value.status == 404


def test_a_dropped_session_comes_back_with_its_token_and_a_logout_voids_it() -> None:
    sim = Sim()
    session = sim.link("d1")
    sim.net.drop("d1", seconds=5)
    assert only(sim.frames(), Disconnected).reason == "connection_lost"
    sim.do(Connect(req_id="c1", device_id="d1", session=session))
    assert only(sim.frames(), Error).code == "unavailable"
    sim.advance(5)
    sim.do(Connect(req_id="c2", device_id="d1", session=session))
    assert kinds(sim.frames()) == ["Connected", "Ok"]
    sim.net.remote_logout("d1")
    assert only(sim.frames(), LoggedOut).reason == "remote_logout"
    sim.do(Connect(req_id="c3", device_id="d1", session=session))
    frames = sim.frames()
    assert only(frames, LoggedOut).reason == "session_invalid"
    assert only(frames, Error).code == "logged_out"
    assert sim.net.stats()["devices_linked"] == 0


def test_a_driver_logout_unlinks_without_an_event_and_a_disconnect_is_reported() -> None:
    sim = Sim()
    session = sim.link("d1")
    sim.do(Disconnect(req_id="x", device_id="d1"))
    frames = sim.frames()
    assert only(frames, Disconnected).reason == "requested"
    assert only(frames, Ok).req_id == "x"
    sim.do(Connect(device_id="d1", session=session))
    sim.do(Logout(req_id="y", device_id="d1"))
    assert kinds(sim.frames()) == ["Connected", "Ok"]
    sim.do(PairQr(req_id="z", device_id="d1"))  # it can be linked afresh
    assert kinds(sim.frames()) == ["Qr", "Ok"]


def test_a_restarted_simulator_accepts_tokens_signed_with_the_same_key() -> None:
    sim = Sim()
    session = sim.link("d1", "+4917700000002")
    restarted = Sim()
    restarted.do(Connect(req_id="c", device_id="d1", session=session))
    assert kinds(restarted.frames()) == ["Connected", "Ok"]
    assert restarted.net.device("d1").phone == "+4917700000002"
    other_key = Sim(sim_session_key="another")
    other_key.do(Connect(req_id="c", device_id="d1", session=session))
    assert only(other_key.frames(), Error).code == "bad_session"
    sim.do(Connect(req_id="c", device_id="d2", session=session))  # someone else's token
    assert only(sim.frames(), Error).code == "bad_session"


def test_a_second_connection_replaces_the_first() -> None:
    sim = Sim()
    session = sim.link("d1")
    other = sim.net.open_connection()
    sim.do(Connect(device_id="d1", session=session), other)
    assert only(sim.frames(), Disconnected).reason == "replaced"
    assert kinds(sim.frames(other)) == ["Connected"]
    sim.send("d1", "s1")
    assert only(sim.frames(), SendResult).reason == "not_connected"


def test_an_accepted_send_gets_an_id_then_delivery_and_read_receipts() -> None:
    sim = Sim(sim_profile="bench")
    sim.link("d1")
    sim.send("d1", "s1", origin_message_id="m1", campaign_id="c1")
    assert sim.frames() == []  # the result takes the send latency
    sim.advance(0.005)
    result = only(sim.frames(), SendResult)
    assert (result.req_id, result.ok, result.accepted) == ("s1", True, True)
    assert result.wa_message_id.startswith("3EB0")
    sim.advance(0.05)
    receipts = sim.frames()
    assert [(r.kind, r.wa_message_id) for r in receipts if isinstance(r, Receipt)] == [
        ("delivered", result.wa_message_id),
        ("read", result.wa_message_id),
    ]
    stats = sim.net.stats()
    assert (stats["received"], stats["unique"], stats["duplicates"]) == (1, 1, 0)
    entry = sim.net.ledger.select("d1")[0]
    assert (entry.to, entry.text, entry.origin_message_id) == (TO, "hi", "m1")


def test_receipts_and_inbound_messages_wait_for_an_offline_device() -> None:
    sim = Sim(sim_profile="bench")
    session = sim.link("d1", "+4917700000003")
    sim.send("d1", "s1")
    sim.advance(0.005)
    wa_id = only(sim.frames(), SendResult).wa_message_id
    sim.net.drop("d1")
    sim.frames()
    sim.advance(1)
    reply = sim.net.inbound("+4915100000009", "+4917700000003", "yes please")
    assert reply["delivered"] is False
    assert sim.frames() == []
    sim.do(Connect(device_id="d1", session=session))
    frames = sim.frames()
    assert kinds(frames) == ["Connected", "Receipt", "Receipt", "Inbound"]
    assert {f.wa_message_id for f in frames if isinstance(f, Receipt)} == {wa_id}
    inbound = only(frames, Inbound)
    assert (inbound.sender, inbound.text) == ("+4915100000009", "yes please")


def test_inbound_needs_valid_phones_and_a_linked_recipient() -> None:
    sim = Sim()
    sim.link("d1", "+4917700000004")
    with pytest.raises(SimProblem) as bad:
        sim.net.inbound("12345", "+4917700000004", "x")
    assert bad.value.status == 400
    with pytest.raises(SimProblem) as nobody:
        sim.net.inbound("+4915100000009", "+4917700000099", "x")
    assert nobody.value.status == 404
    sim.net.inbound("+4915100000009", "+4917700000004", "x")
    assert only(sim.frames(), Inbound).device_id == "d1"


def test_numbers_not_on_whatsapp_fail_for_good() -> None:
    sim = Sim(sim_profile="bench")
    sim.link("d1")
    sim.send("d1", "s1", to="+4915100000000")
    sim.net.set_absent("+4915122222222", True)
    sim.send("d1", "s2", to="+4915122222222")
    sim.send("d1", "s3", to="not-a-phone")
    sim.advance(0.01)
    results = {r.req_id: r for r in sim.frames() if isinstance(r, SendResult)}
    for req_id, reason in (("s1", "not_on_whatsapp"), ("s2", "not_on_whatsapp")):
        assert (results[req_id].reason, results[req_id].retryable) == (reason, False)
        assert results[req_id].accepted is False
    assert results["s3"].reason == "bad_recipient"
    assert sim.net.stats()["received"] == 0


def test_transient_errors_are_retryable_and_not_accepted() -> None:
    sim = Sim(sim_transient_error_rate=1.0, sim_ban_min_gap=0)
    sim.link("d1")
    sim.send("d1", "s1")
    sim.advance(1)
    result = only(sim.frames(), SendResult)
    assert (result.ok, result.reason, result.retryable, result.accepted) == (
        False,
        "transient",
        True,
        False,
    )


def test_sending_faster_than_a_human_gets_the_device_banned() -> None:
    sim = Sim(sim_transient_error_rate=0.0, sim_ban_min_gap=3.0, sim_ban_seconds=600)
    sim.link("d1")
    sim.send("d1", "s1")
    sim.advance(1)
    assert only(sim.frames(), SendResult).ok
    sim.send("d1", "s2")  # one second after the first: too fast
    sim.advance(1)
    frames = sim.frames()
    banned = only(frames, Banned)
    assert banned.reason == "too_fast"
    result = only(frames, SendResult)
    assert (result.reason, result.accepted, result.retryable) == ("banned", False, True)
    sim.advance(300)
    sim.send("d1", "s3")
    assert only(sim.frames(), SendResult).reason == "banned"
    sim.advance(301)
    sim.send("d1", "s4")
    sim.advance(1)
    assert only(sim.frames(), SendResult).ok
    stats = sim.net.stats()
    assert (stats["bans"], stats["received"]) == (1, 2)


def test_a_burst_within_a_minute_gets_the_device_banned() -> None:
    sim = Sim(sim_transient_error_rate=0.0, sim_ban_min_gap=0.0, sim_ban_max_per_minute=3)
    sim.link("d1")
    for n in range(4):
        sim.send("d1", f"s{n}")
        sim.advance(5)
    frames = sim.frames()
    assert only(frames, Banned).reason == "burst"
    assert [r.ok for r in frames if isinstance(r, SendResult)] == [True, True, True, False]


def test_the_bench_profile_has_no_ban_model_and_no_failures() -> None:
    sim = Sim(sim_profile="bench", sim_transient_error_rate=1.0)
    sim.link("d1")
    for n in range(50):
        sim.send("d1", f"s{n}")
        sim.advance(0.01)
    assert all(r.ok for r in sim.frames() if isinstance(r, SendResult))
    assert sim.net.stats()["received"] == 50


def test_concurrent_sends_of_one_device_show_in_in_flight_max() -> None:
    sim = Sim(sim_profile="bench")
    sim.link("d1")
    sim.link("d2")
    sim.send("d1", "a")
    sim.advance(0.01)
    sim.send("d1", "b")
    sim.advance(0.01)
    sim.send("d2", "c")
    sim.send("d2", "d")  # before the first one's result: two in flight
    sim.advance(0.01)
    stats = sim.net.stats()
    assert stats["in_flight_max"] == {"d1": 1, "d2": 2}


def test_a_manual_ban_and_typing_need_a_live_device() -> None:
    sim = Sim()
    sim.link("d1")
    sim.net.ban("d1", 60)
    banned = only(sim.frames(), Banned)
    assert banned.until == datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=1_060)
    sim.do(Typing(req_id="t1", device_id="d1", to=TO, seconds=2))
    assert only(sim.frames(), Ok).req_id == "t1"
    sim.do(Typing(req_id="t2", device_id="ghost", to=TO, seconds=2))
    assert only(sim.frames(), Error).code == "not_connected"
    with pytest.raises(SimProblem) as exc:
        sim.net.ban("ghost", 60)
    assert exc.value.status == 404


def test_a_closed_connection_takes_its_devices_offline_and_abandons_pairings() -> None:
    sim = Sim()
    session = sim.link("d1")
    sim.do(PairQr(device_id="d2"))
    sim.net.close_connection(sim.conn)
    stats = sim.net.stats()
    assert (stats["devices_linked"], stats["devices_connected"]) == (1, 0)
    with pytest.raises(SimProblem):
        sim.net.scan("d2", None)
    again = sim.net.open_connection()
    sim.do(Connect(device_id="d1", session=session), again)
    assert kinds(sim.frames(again)) == ["Connected"]


def test_random_drops_follow_the_seed() -> None:
    def dropped() -> list[str]:
        sim = Sim(sim_drop_rate=3600.0)  # one drop per device per second on average
        for n in range(5):
            sim.link(f"d{n}")
        sim.advance(3)
        return [f.device_id for f in sim.frames() if isinstance(f, Disconnected)]

    first = dropped()
    assert first
    assert first == dropped()
