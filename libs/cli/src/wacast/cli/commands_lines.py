"""The export format, written and read; a file is checked whole before anything is appended.

A line is `{"stream", "seq", "subject", "time", "headers", "data"}`: `subject` without the
namespace prefix (so an export imports into any namespace), `headers` without the `Nats-*`
ones the server interprets, `data` the event's JSON exactly as stored. A payload that is not
a JSON object (a poison message) is kept as `data_base64` instead, so nothing is lost.

Read back, a line must name a known stream, a positive sequence (increasing per stream), a
subject of that stream, headers that are not `Nats-*`, and data that decodes with the
stream's codec (or, with `keep_undecodable`, any payload at all).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from nats.aio.msg import Msg

from wacast.contracts.streams import BY_KEY, codec

MAX_REPORTED = 20
_SUBJECT = re.compile(r"[^.\s*>]+(?:\.[^.\s*>]+)*")
_HEADER = re.compile(r"(?!(?i:nats-))[!-9;-~]+")  # not one the server interprets
_VALUE = re.compile(r"[^\r\n]*")


class Head(msgspec.Struct):
    stream: str
    seq: int
    subject: str
    time: str
    headers: dict[str, str]


class Line(Head):
    data: msgspec.Raw


class RawLine(Head):
    data_base64: str


_encoder, _any = msgspec.json.Encoder(), msgspec.json.Decoder(msgspec.Raw)


def user_headers(msg: Msg) -> dict[str, str]:
    return {k: v for k, v in (msg.headers or {}).items() if not k.lower().startswith("nats-")}


def is_json_object(data: bytes) -> bool:
    """Valid JSON (checked without building it) that is an object."""
    try:
        _any.decode(data)
    except msgspec.DecodeError:
        return False
    return data.lstrip()[:1] == b"{"


def encode_line(key: str, msg: Msg, skip: int) -> bytes:
    meta = msg.metadata
    seq, subject, headers = meta.sequence.stream, msg.subject[skip:], user_headers(msg)
    when = meta.timestamp.isoformat().replace("+00:00", "Z")
    data = msg.data
    if not is_json_object(data):
        encoded = base64.b64encode(data).decode()
        return _encoder.encode(RawLine(key, seq, subject, when, headers, encoded)) + b"\n"
    if b"\n" in data or b"\r" in data:
        data = _encoder.encode(msgspec.json.decode(data))  # whitespace only: one event, one line
    return _encoder.encode(Line(key, seq, subject, when, headers, msgspec.Raw(data))) + b"\n"


class InLine(msgspec.Struct):
    stream: str
    seq: int
    subject: str
    time: str = ""
    headers: dict[str, str] = {}
    data: msgspec.Raw = msgspec.Raw(b"")
    data_base64: str | None = None


_line = msgspec.json.Decoder(InLine)


class LineError(Exception):
    def __init__(self, number: int, message: str) -> None:
        super().__init__(f"line {number}: {message}")


@dataclass(frozen=True)
class Record:
    number: int
    stream: str
    seq: int
    subject: str
    headers: dict[str, str]
    payload: bytes

    @property
    def msg_id(self) -> str:
        return f"import:{self.stream}:{self.seq}"


@dataclass
class Plan:
    """What validation found: counts per stream, and the bad lines (first few kept)."""

    counts: dict[str, int] = field(default_factory=dict)
    undecodable: int = 0
    errors: list[LineError] = field(default_factory=list)
    bad_lines: int = 0


def parse(
    number: int, raw: bytes, keep_undecodable: bool, decode: bool = True
) -> tuple[Record, bool]:
    """One line as a record, and whether its payload decodes as an event of its stream
    (not tried when `decode` is false: the file was validated already)."""
    try:
        line = _line.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise LineError(number, f"not an event line: {exc}") from None
    spec = BY_KEY.get(line.stream)
    if spec is None:
        raise LineError(number, f"unknown stream {line.stream!r}")
    if line.seq < 1:
        raise LineError(number, f"seq must be positive, not {line.seq}")
    if not _SUBJECT.fullmatch(line.subject) or line.subject.split(".")[0] not in spec.kinds:
        raise LineError(number, f"subject {line.subject!r} does not belong to {spec.key}")
    for name, value in line.headers.items():
        if not _HEADER.fullmatch(name) or not _VALUE.fullmatch(value):
            raise LineError(number, f"header {name!r} is reserved or malformed")
    if line.data_base64 is not None:
        try:
            payload = base64.b64decode(line.data_base64, validate=True)
        except (binascii.Error, ValueError):
            raise LineError(number, "data_base64 is not base64") from None
    else:
        payload = bytes(line.data)
        if not payload:
            raise LineError(number, "no data")
    try:
        if decode:
            codec(spec).decode(payload)
    except Exception as exc:
        if not keep_undecodable:
            raise LineError(number, f"data is not a valid {spec.key} event: {exc}") from None
        decodable = False
    else:
        decodable = True
    return Record(number, spec.key, line.seq, line.subject, line.headers, payload), decodable


def _in_order(record: Record, last: dict[str, int]) -> None:
    before = last.get(record.stream, 0)
    if record.seq <= before:
        raise LineError(record.number, f"{record.stream} seq {record.seq} is not after {before}")
    last[record.stream] = record.seq


def records(path: Path) -> Iterator[Record]:
    """Records of a file `validate` passed, in order; raises `LineError` at a bad line."""
    last: dict[str, int] = {}
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, 1):
            if raw.strip():
                record, _ = parse(number, raw, keep_undecodable=True, decode=False)
                _in_order(record, last)
                yield record


def validate(path: Path, keep_undecodable: bool = False) -> Plan:
    """Read the whole file; every bad line is counted (a bad line does not stop the scan)."""
    plan = Plan()
    last: dict[str, int] = {}
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                record, decodable = parse(number, raw, keep_undecodable)
                _in_order(record, last)
            except LineError as exc:
                plan.bad_lines += 1
                if len(plan.errors) < MAX_REPORTED:
                    plan.errors.append(exc)
                continue
            plan.counts[record.stream] = plan.counts.get(record.stream, 0) + 1
            plan.undecodable += not decodable
    return plan
