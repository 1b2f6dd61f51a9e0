"""The simulated WhatsApp network: devices, links, sessions, sends, receipts and bans.

Everything here is synchronous and framework-free: a driver frame or a control call comes
in, state changes, frames are pushed onto driver connections' outboxes, and anything that
happens later is a callback on the one timer heap. Per-device state is one slotted object.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from wacast.contracts.sim_protocol import (
    Banned,
    Connect,
    Connected,
    Disconnect,
    Disconnected,
    DriverFrame,
    Error,
    Event,
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
    Typing,
)
from wacast.wa_simulator import metrics
from wacast.wa_simulator.ban_model import BanModel, SendWindow
from wacast.wa_simulator.connection import DriverConnection
from wacast.wa_simulator.errors import bad_request, conflict, not_found
from wacast.wa_simulator.ledger import Ledger
from wacast.wa_simulator.phones import fake_phone, is_e164, jid_of, on_whatsapp_by_rule
from wacast.wa_simulator.profile import Behaviour
from wacast.wa_simulator.sessions import Claims, SessionKey
from wacast.wa_simulator.settings import Settings
from wacast.wa_simulator.timers import Timer, Timers

log = logging.getLogger(__name__)

UNLINKED, PAIRING, LINKED = 0, 1, 2
STATUS_NAMES = ("unlinked", "pairing", "linked")
MAX_PENDING = 1_000
"""Receipts and inbound messages kept for an offline device (the oldest are dropped)."""
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTVWXYZ23456789"
DROP_TICK = 1.0


class Device:
    __slots__ = (
        "banned_until",
        "conn",
        "connected",
        "device_id",
        "generation",
        "in_flight",
        "jid",
        "pair_code",
        "pair_method",
        "pair_phone",
        "pair_timer",
        "pending",
        "phone",
        "qr_timer",
        "status",
        "unavailable_until",
        "window",
    )

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        self.status = UNLINKED
        self.phone = ""
        self.jid = ""
        self.generation = 0
        self.conn: DriverConnection | None = None
        self.connected = False
        self.banned_until = 0.0
        self.unavailable_until = 0.0
        self.in_flight = 0
        self.pair_method = ""
        self.pair_code = ""
        self.pair_phone = ""
        self.pair_timer: Timer | None = None
        self.qr_timer: Timer | None = None
        self.pending: list[Event] | None = None
        self.window: SendWindow | None = None

    def describe(self, now: float) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "status": STATUS_NAMES[self.status],
            "phone": self.phone,
            "jid": self.jid,
            "connected": self.connected,
            "banned": self.banned_until > now,
            "banned_for": round(max(0.0, self.banned_until - now), 3),
            "pairing": self.pair_method,
            "in_flight": self.in_flight,
        }


class Network:
    def __init__(
        self,
        settings: Settings,
        *,
        timers: Timers,
        rng: random.Random | None = None,
        wall: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.behaviour = Behaviour.of(settings)
        self.timers = timers
        self.clock = timers.clock
        self.wall = wall or (lambda: datetime.now(UTC))
        self.rng = rng or random.Random(settings.sim_seed or secrets.randbits(64))
        self.sessions = SessionKey(settings.sim_session_key)
        self.ban_model = BanModel(
            enabled=self.behaviour.ban_model,
            min_gap=settings.sim_ban_min_gap,
            max_per_minute=settings.sim_ban_max_per_minute,
            ban_seconds=settings.sim_ban_seconds,
        )
        self.ledger = Ledger()
        self.devices: dict[str, Device] = {}
        self.phones: dict[str, str] = {}
        """Phone -> device id of linked devices (inbound messages are routed by phone)."""
        self.absent: set[str] = set()
        self.bans = 0
        self.typing = 0
        self.refused: dict[str, int] = {}
        self._conn_ids = itertools.count(1)
        self._handlers: dict[type[Any], Callable[[DriverConnection, Any], None]] = {
            Connect: self._on_connect,
            PairQr: self._on_pair_qr,
            PairCode: self._on_pair_code,
            Typing: self._on_typing,
            Send: self._on_send,
            Disconnect: self._on_disconnect,
            Logout: self._on_logout,
        }
        if settings.sim_drop_rate > 0:
            self.timers.call_later(DROP_TICK, self._random_drops)

    # ---- connections ------------------------------------------------------------------

    def open_connection(self) -> DriverConnection:
        return DriverConnection(next(self._conn_ids))

    def close_connection(self, conn: DriverConnection) -> None:
        """The driver's WebSocket went away: its devices go offline, pairings are abandoned."""
        conn.closed = True
        for device_id in list(conn.devices):
            device = self.devices.get(device_id)
            if device is None or device.conn is not conn:
                continue
            if device.status == PAIRING:
                self._stop_pairing(device)
                device.status = UNLINKED
            self._release(device)
        conn.devices.clear()

    def _attach(self, device: Device, conn: DriverConnection) -> None:
        if device.conn is not None and device.conn is not conn:
            device.conn.devices.discard(device.device_id)
        device.conn = conn
        conn.devices.add(device.device_id)

    def _release(self, device: Device) -> None:
        if device.conn is not None:
            device.conn.devices.discard(device.device_id)
        device.conn = None
        device.connected = False

    def _push(self, device: Device, frame: Event, *, queue: bool = False) -> None:
        """Send `frame` to the device's driver; keep it for later when `queue` and offline."""
        if device.connected and device.conn is not None and not device.conn.closed:
            device.conn.push(frame)
        elif queue:
            if device.pending is None:
                device.pending = []
            if len(device.pending) >= MAX_PENDING:
                del device.pending[0]
            device.pending.append(frame)

    # ---- driver frames ----------------------------------------------------------------

    def handle(self, conn: DriverConnection, frame: DriverFrame) -> None:
        self._handlers[type(frame)](conn, frame)

    def _reply_error(self, conn: DriverConnection, req_id: str, code: str, detail: str) -> None:
        conn.push(Error(req_id=req_id, code=code, detail=detail))

    def _ok(self, conn: DriverConnection, req_id: str) -> None:
        if req_id:
            conn.push(Ok(req_id=req_id))

    def _on_connect(self, conn: DriverConnection, frame: Connect) -> None:
        claims = self.sessions.verify(frame.session)
        if claims is None or claims.device_id != frame.device_id:
            self._reply_error(conn, frame.req_id, "bad_session", "the session token is not valid")
            return
        device = self.devices.get(frame.device_id)
        if device is None:
            device = self._restore(claims)
        if device is None or device.status != LINKED or claims.generation != device.generation:
            conn.push(LoggedOut(device_id=frame.device_id, reason="session_invalid"))
            self._reply_error(conn, frame.req_id, "logged_out", "the session was logged out")
            return
        now = self.clock()
        if device.unavailable_until > now:
            detail = f"the device cannot reach WhatsApp for {device.unavailable_until - now:.1f}s"
            self._reply_error(conn, frame.req_id, "unavailable", detail)
            return
        if device.connected and device.conn is not None and device.conn is not conn:
            device.conn.push(Disconnected(device_id=device.device_id, reason="replaced"))
        self._attach(device, conn)
        device.connected = True
        conn.push(Connected(device_id=device.device_id))
        if device.pending:
            for pending in device.pending:
                conn.push(pending)
            device.pending = None
        if device.banned_until > now:
            conn.push(self._banned_frame(device, "banned"))
        self._ok(conn, frame.req_id)

    def _restore(self, claims: Claims) -> Device | None:
        """A valid token this process never issued: the simulator restarted since."""
        owner = self.phones.get(claims.phone)
        if owner is not None and owner != claims.device_id:
            return None
        device = self.devices[claims.device_id] = Device(claims.device_id)
        device.status = LINKED
        device.phone = claims.phone
        device.jid = jid_of(claims.phone)
        device.generation = claims.generation
        self.phones[claims.phone] = claims.device_id
        return device

    def _on_pair_qr(self, conn: DriverConnection, frame: PairQr) -> None:
        device = self._start_pairing(conn, frame.device_id, frame.req_id)
        if device is None:
            return
        device.pair_method = "qr"
        self._rotate_qr(device.device_id)
        self._ok(conn, frame.req_id)

    def _on_pair_code(self, conn: DriverConnection, frame: PairCode) -> None:
        if not is_e164(frame.phone):
            self._reply_error(conn, frame.req_id, "bad_phone", f"{frame.phone!r} is not E.164")
            return
        device = self._start_pairing(conn, frame.device_id, frame.req_id)
        if device is None:
            return
        device.pair_method = "code"
        device.pair_phone = frame.phone
        chars = "".join(self.rng.choice(CODE_ALPHABET) for _ in range(8))
        device.pair_code = f"{chars[:4]}-{chars[4:]}"
        conn.push(
            PairCodeIssued(req_id=frame.req_id, device_id=device.device_id, code=device.pair_code)
        )

    def _start_pairing(self, conn: DriverConnection, device_id: str, req_id: str) -> Device | None:
        if not device_id:
            self._reply_error(conn, req_id, "bad_device", "device_id is empty")
            return None
        device = self.devices.get(device_id)
        if device is None:
            device = self.devices[device_id] = Device(device_id)
        if device.status == LINKED:
            self._reply_error(conn, req_id, "already_linked", f"{device_id} is already linked")
            return None
        self._stop_pairing(device)
        device.status = PAIRING
        self._attach(device, conn)
        if self.settings.sim_pair_delay > 0:
            device.pair_timer = self.timers.call_later(
                self.settings.sim_pair_delay, self._auto_link, device_id
            )
        return device

    def _stop_pairing(self, device: Device) -> None:
        for timer in (device.pair_timer, device.qr_timer):
            if timer is not None:
                timer.cancel()
        device.pair_timer = device.qr_timer = None
        device.pair_method = device.pair_code = device.pair_phone = ""

    def _rotate_qr(self, device_id: str) -> None:
        device = self.devices.get(device_id)
        if device is None or device.status != PAIRING or device.pair_method != "qr":
            return
        if device.conn is not None:
            device.conn.push(Qr(device_id=device_id, code=self._qr_reference()))
        device.qr_timer = self.timers.call_later(
            self.settings.sim_qr_rotate_seconds, self._rotate_qr, device_id
        )

    def _qr_reference(self) -> str:
        bits = self.rng.getrandbits
        return f"2@{bits(128):032x},{bits(256):064x},{bits(256):064x},{bits(64):016x}"

    def _auto_link(self, device_id: str) -> None:
        device = self.devices.get(device_id)
        if device is not None and device.status == PAIRING:
            self._complete_link(device, device.pair_phone or None)

    def _complete_link(self, device: Device, phone: str | None) -> None:
        conn = device.conn
        self._stop_pairing(device)
        if phone is None:
            attempt = 0
            phone = fake_phone(device.device_id)
            while self.phones.get(phone, device.device_id) != device.device_id:
                attempt += 1
                phone = fake_phone(device.device_id, attempt)
        device.status = LINKED
        device.phone = phone
        device.jid = jid_of(phone)
        device.generation += 1
        self.phones[phone] = device.device_id
        nonce = f"{self.rng.getrandbits(64):016x}"
        session = self.sessions.issue(Claims(device.device_id, phone, device.generation, nonce))
        if conn is None or conn.closed:
            return
        device.connected = True
        conn.push(Paired(device_id=device.device_id, phone=phone, jid=device.jid, session=session))
        conn.push(Connected(device_id=device.device_id))
        metrics.LINKS.inc()

    def _on_typing(self, conn: DriverConnection, frame: Typing) -> None:
        device = self.devices.get(frame.device_id)
        if device is None or not device.connected or device.conn is not conn:
            self._reply_error(conn, frame.req_id, "not_connected", f"{frame.device_id} is offline")
            return
        self.typing += 1
        self._ok(conn, frame.req_id)

    def _on_disconnect(self, conn: DriverConnection, frame: Disconnect) -> None:
        device = self.devices.get(frame.device_id)
        if device is not None and device.conn is conn:
            if device.status == PAIRING:
                self._stop_pairing(device)
                device.status = UNLINKED
            was_connected = device.connected
            self._release(device)
            if was_connected:
                conn.push(Disconnected(device_id=device.device_id, reason="requested"))
        self._ok(conn, frame.req_id)

    def _on_logout(self, conn: DriverConnection, frame: Logout) -> None:
        device = self.devices.get(frame.device_id)
        if device is None:
            self._reply_error(conn, frame.req_id, "unknown_device", f"{frame.device_id} unknown")
            return
        self._unlink(device)
        self._ok(conn, frame.req_id)

    def _unlink(self, device: Device) -> None:
        if device.status == PAIRING:
            self._stop_pairing(device)
        if device.phone and self.phones.get(device.phone) == device.device_id:
            del self.phones[device.phone]
        device.status = UNLINKED
        device.generation += 1
        device.pending = None
        self._release(device)

    # ---- sending ----------------------------------------------------------------------

    def _on_send(self, conn: DriverConnection, frame: Send) -> None:
        device = self.devices.get(frame.device_id)
        now = self.clock()
        if device is None or device.status != LINKED:
            self._refuse(conn, frame, "not_linked", retryable=False)
            return
        if not device.connected or device.conn is not conn:
            self._refuse(conn, frame, "not_connected", retryable=True)
            return
        if not is_e164(frame.to):
            self._refuse(conn, frame, "bad_recipient", retryable=False)
            return
        if not frame.text and frame.media_kind is None:
            self._refuse(conn, frame, "empty_message", retryable=False)
            return
        if device.banned_until > now:
            self._refuse(conn, frame, "banned", retryable=True)
            return
        device.in_flight += 1
        self.ledger.observe_in_flight(device.device_id, device.in_flight)
        result = self._judge(device, frame, now)
        self.timers.call_later(
            self._latency(self.behaviour.send_latency), self._finish_send, device, conn, result
        )

    def _judge(self, device: Device, frame: Send, now: float) -> SendResult:
        """Decide a send's fate the moment it reaches WhatsApp (the ledger records it then)."""
        behaviour = self.behaviour
        if behaviour.ban_model:
            if device.window is None:
                device.window = self.ban_model.window()
            reason = self.ban_model.judge(device.window, now)
            if reason is not None:
                self.ban_model.forgive(device.window)
                self.ban(device.device_id, self.ban_model.ban_seconds, reason)
                return self._refusal(frame, "banned", retryable=True)
        if frame.to in self.absent or not on_whatsapp_by_rule(frame.to):
            return self._refusal(frame, "not_on_whatsapp", retryable=False)
        if behaviour.transient_error_rate and self.rng.random() < behaviour.transient_error_rate:
            return self._refusal(frame, "transient", retryable=True)
        wa_message_id = f"3EB0{self.rng.getrandbits(80):020X}"
        at = self.wall()
        entry = self.ledger.record(
            device_id=device.device_id,
            to=frame.to,
            wa_message_id=wa_message_id,
            kind=frame.media_kind or "text",
            text=frame.text,
            media_len=frame.media_len,
            media_sha256=frame.media_sha256,
            origin_message_id=frame.origin_message_id,
            campaign_id=frame.campaign_id,
            at=at,
            t=now,
        )
        metrics.RECEIVED.inc()
        if entry.duplicate:
            metrics.DUPLICATES.inc()
        self.timers.call_later(
            self._latency(behaviour.delivery_latency),
            self._receipt,
            device.device_id,
            wa_message_id,
            "delivered",
        )
        if self.rng.random() < behaviour.read_probability:
            read_after = max(
                self._latency(behaviour.read_latency), behaviour.delivery_latency * 1.01
            )
            self.timers.call_later(
                read_after, self._receipt, device.device_id, wa_message_id, "read"
            )
        return SendResult(
            req_id=frame.req_id,
            device_id=frame.device_id,
            ok=True,
            wa_message_id=wa_message_id,
            at=at,
            accepted=True,
        )

    def _refusal(self, frame: Send, reason: str, *, retryable: bool) -> SendResult:
        self.refused[reason] = self.refused.get(reason, 0) + 1
        metrics.REFUSED.labels(reason).inc()
        return SendResult(
            req_id=frame.req_id,
            device_id=frame.device_id,
            ok=False,
            reason=reason,
            retryable=retryable,
            accepted=False,
        )

    def _refuse(self, conn: DriverConnection, frame: Send, reason: str, *, retryable: bool) -> None:
        conn.push(self._refusal(frame, reason, retryable=retryable))

    def _finish_send(self, device: Device, conn: DriverConnection, result: SendResult) -> None:
        device.in_flight -= 1
        # A session that dropped meanwhile never hears the outcome (as on the real network).
        if device.connected and device.conn is conn:
            conn.push(result)

    def _latency(self, base: float) -> float:
        jitter = self.behaviour.jitter
        if not jitter or not base:
            return base
        return base * (1.0 + self.rng.uniform(-jitter, jitter))

    def _receipt(self, device_id: str, wa_message_id: str, kind: str) -> None:
        device = self.devices.get(device_id)
        if device is None or device.status != LINKED:
            return
        frame = Receipt(
            device_id=device_id,
            wa_message_id=wa_message_id,
            kind="read" if kind == "read" else "delivered",
            at=self.wall(),
        )
        self._push(device, frame, queue=True)

    # ---- control (HTTP) ---------------------------------------------------------------

    def device(self, device_id: str) -> Device:
        device = self.devices.get(device_id)
        if device is None:
            raise not_found(f"no device {device_id!r} has talked to the simulator")
        return device

    def scan(self, device_id: str, phone: str | None) -> Device:
        device = self._pairing(device_id, "qr")
        if phone is not None and not is_e164(phone):
            raise bad_request("bad_phone", f"{phone!r} is not an E.164 phone number")
        self._complete_link(device, phone)
        return device

    def enter_code(self, device_id: str, code: str, phone: str | None) -> Device:
        device = self._pairing(device_id, "code")
        if phone is not None and not is_e164(phone):
            raise bad_request("bad_phone", f"{phone!r} is not an E.164 phone number")
        if phone is not None and phone != device.pair_phone:
            raise bad_request("wrong_phone", "the code was issued for another phone")
        if _normal_code(code) != _normal_code(device.pair_code):
            raise bad_request("wrong_code", "that is not the code shown for this device")
        self._complete_link(device, device.pair_phone)
        return device

    def _pairing(self, device_id: str, method: str) -> Device:
        device = self.device(device_id)
        if device.status == LINKED:
            raise conflict("already_linked", f"{device_id} is already linked")
        if device.status != PAIRING or device.pair_method != method:
            how = "a QR code" if method == "qr" else "a pairing code"
            raise conflict("not_pairing", f"{device_id} is not waiting to be linked by {how}")
        return device

    def drop(self, device_id: str, seconds: float = 0.0) -> Device:
        device = self.device(device_id)
        if not device.connected:
            raise conflict("not_connected", f"{device_id} is not connected")
        conn = device.conn
        self._release(device)
        device.unavailable_until = self.clock() + seconds
        if conn is not None:
            conn.push(Disconnected(device_id=device_id, reason="connection_lost"))
        metrics.DROPS.inc()
        return device

    def remote_logout(self, device_id: str) -> Device:
        device = self.device(device_id)
        if device.status != LINKED:
            raise conflict("not_linked", f"{device_id} is not linked")
        conn = device.conn if device.connected else None
        self._unlink(device)
        if conn is not None:
            conn.push(LoggedOut(device_id=device_id, reason="remote_logout"))
        return device

    def ban(self, device_id: str, seconds: float, reason: str = "manual") -> Device:
        device = self.device(device_id)
        if device.status != LINKED:
            raise conflict("not_linked", f"{device_id} is not linked")
        device.banned_until = self.clock() + seconds
        self.bans += 1
        metrics.BANS.inc()
        self._push(device, self._banned_frame(device, reason))
        return device

    def _banned_frame(self, device: Device, reason: str) -> Banned:
        remaining = max(0.0, device.banned_until - self.clock())
        until = self.wall() + timedelta(seconds=remaining)
        return Banned(device_id=device.device_id, until=until, reason=reason)

    def inbound(self, sender: str, to: str, text: str) -> dict[str, Any]:
        for name, phone in (("from", sender), ("to", to)):
            if not is_e164(phone):
                raise bad_request("bad_phone", f"{name}: {phone!r} is not an E.164 phone number")
        device_id = self.phones.get(to)
        if device_id is None:
            raise not_found(f"no linked device has the phone {to}")
        device = self.devices[device_id]
        wa_message_id = f"3EB0{self.rng.getrandbits(80):020X}"
        frame = Inbound(
            device_id=device_id, sender=sender, text=text, wa_message_id=wa_message_id,
            at=self.wall(),
        )  # fmt: skip
        delivered = device.connected
        self._push(device, frame, queue=True)
        return {"device_id": device_id, "wa_message_id": wa_message_id, "delivered": delivered}

    def set_absent(self, phone: str, absent: bool) -> None:
        if not is_e164(phone):
            raise bad_request("bad_phone", f"{phone!r} is not an E.164 phone number")
        if absent:
            self.absent.add(phone)
        else:
            self.absent.discard(phone)

    def reset(self) -> None:
        self.ledger.reset()
        self.bans = 0
        self.typing = 0
        self.refused.clear()

    # ---- random drops -----------------------------------------------------------------

    def _random_drops(self) -> None:
        self.timers.call_later(DROP_TICK, self._random_drops)
        connected = self.count_connected()
        if not connected:
            return
        expected = connected * self.settings.sim_drop_rate * DROP_TICK / 3600.0
        count = _poisson(self.rng, expected)
        if not count:
            return
        online = sorted(d.device_id for d in self.devices.values() if d.connected)
        for device_id in self.rng.sample(online, min(count, len(online))):
            log.info("random drop", extra={"device_id": device_id})
            self.drop(device_id)

    # ---- reporting --------------------------------------------------------------------

    def count_linked(self) -> int:
        return sum(1 for d in self.devices.values() if d.status == LINKED)

    def count_connected(self) -> int:
        return sum(1 for d in self.devices.values() if d.connected)

    def stats(self) -> dict[str, Any]:
        now = self.clock()
        stats = self.ledger.stats()
        stats.update(
            profile=self.behaviour.name,
            devices_known=len(self.devices),
            devices_linked=self.count_linked(),
            devices_connected=self.count_connected(),
            devices_banned=sum(1 for d in self.devices.values() if d.banned_until > now),
            bans=self.bans,
            refused=dict(self.refused),
            typing=self.typing,
            timers=len(self.timers),
        )
        return stats


def _normal_code(code: str) -> str:
    return code.replace("-", "").replace(" ", "").upper()


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method; the simulator's rates are small."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
