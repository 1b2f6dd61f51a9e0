"""The ledger: every message the simulated network accepted, and what tests count from it.

Duplicates are judged two ways: the same wacast origin message id seen again, or the same
device sending the same content to the same recipient again within one campaign. Gaps are
the seconds between consecutive accepted sends of one device (pacing); `in_flight_max` is
the most sends one device ever had open at once (the lane's one-in-flight promise).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import msgspec


class Entry(msgspec.Struct, frozen=True, gc=False):
    seq: int
    device_id: str
    to: str
    wa_message_id: str
    kind: str
    """text, image, video or document."""
    text: str
    media_len: int
    media_sha256: str
    origin_message_id: str
    campaign_id: str
    at: datetime
    duplicate: bool
    gap: float | None
    """Seconds since this device's previous accepted send (None for its first)."""


class GapStats:
    __slots__ = ("count", "last", "max", "min", "total")

    def __init__(self) -> None:
        self.count = 0
        self.min = float("inf")
        self.max = 0.0
        self.total = 0.0
        self.last: float | None = None

    def observe(self, t: float) -> float | None:
        """Record a send at monotonic time `t`; returns the gap to the previous one."""
        last, self.last = self.last, t
        if last is None:
            return None
        gap = t - last
        self.count += 1
        self.total += gap
        self.min = min(self.min, gap)
        self.max = max(self.max, gap)
        return gap

    def as_dict(self) -> dict[str, float | int | None]:
        if self.count == 0:
            return {"count": 0, "min": None, "max": None, "mean": None}
        return {
            "count": self.count,
            "min": round(self.min, 6),
            "max": round(self.max, 6),
            "mean": round(self.total / self.count, 6),
        }


def content_digest(kind: str, text: str, media_sha256: str) -> bytes:
    return hashlib.blake2b(f"{kind}\x00{media_sha256}\x00{text}".encode(), digest_size=16).digest()


class Ledger:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.entries: list[Entry] = []
        self.duplicates = 0
        self._origins: set[str] = set()
        self._contents: set[tuple[str, str, str, bytes]] = set()
        self._gaps: dict[str, GapStats] = {}
        self._in_flight_max: dict[str, int] = {}

    @property
    def received(self) -> int:
        return len(self.entries)

    def observe_in_flight(self, device_id: str, in_flight: int) -> None:
        if in_flight > self._in_flight_max.get(device_id, 0):
            self._in_flight_max[device_id] = in_flight

    def is_duplicate(
        self, device_id: str, to: str, digest: bytes, origin_message_id: str, campaign_id: str
    ) -> bool:
        if origin_message_id and origin_message_id in self._origins:
            return True
        return bool(campaign_id) and (campaign_id, device_id, to, digest) in self._contents

    def record(
        self,
        *,
        device_id: str,
        to: str,
        wa_message_id: str,
        kind: str,
        text: str,
        media_len: int,
        media_sha256: str,
        origin_message_id: str,
        campaign_id: str,
        at: datetime,
        t: float,
    ) -> Entry:
        digest = content_digest(kind, text, media_sha256)
        duplicate = self.is_duplicate(device_id, to, digest, origin_message_id, campaign_id)
        if origin_message_id:
            self._origins.add(origin_message_id)
        if campaign_id:
            self._contents.add((campaign_id, device_id, to, digest))
        gaps = self._gaps.get(device_id)
        if gaps is None:
            gaps = self._gaps[device_id] = GapStats()
        entry = Entry(
            seq=len(self.entries) + 1,
            device_id=device_id,
            to=to,
            wa_message_id=wa_message_id,
            kind=kind,
            text=text,
            media_len=media_len,
            media_sha256=media_sha256,
            origin_message_id=origin_message_id,
            campaign_id=campaign_id,
            at=at,
            duplicate=duplicate,
            gap=gaps.observe(t),
        )
        self.entries.append(entry)
        if duplicate:
            self.duplicates += 1
        return entry

    def select(self, device_id: str = "", after: int = 0, limit: int = 1000) -> list[Entry]:
        """Entries with `seq > after` (oldest first), optionally of one device."""
        found: list[Entry] = []
        for entry in self.entries[max(0, after) :]:
            if device_id and entry.device_id != device_id:
                continue
            found.append(entry)
            if len(found) >= limit:
                break
        return found

    def stats(self) -> dict[str, Any]:
        gaps = {device: g.as_dict() for device, g in self._gaps.items() if g.count}
        overall = GapStats()
        for g in self._gaps.values():
            if g.count:
                overall.count += g.count
                overall.total += g.total
                overall.min = min(overall.min, g.min)
                overall.max = max(overall.max, g.max)
        return {
            "received": self.received,
            "unique": self.received - self.duplicates,
            "duplicates": self.duplicates,
            "gaps": gaps,
            "gap_min": overall.as_dict()["min"],
            "gap_max": overall.as_dict()["max"],
            "gaps_overall": overall.as_dict(),
            "in_flight_max": dict(self._in_flight_max),
            "in_flight_max_overall": max(self._in_flight_max.values(), default=0),
        }
