"""Schema versions and upcasters.

A stored event keeps the `v` it was written with. When an event type's shape changes in a
breaking way, its class `version` goes up by one and an upcaster is registered that turns
the previous version's JSON object into the next one. Reading an old payload runs the chain
of upcasters before the typed decode; current payloads take the fast typed path only.

A payload without `v` that does not fit the current shape is taken as version 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from wacast.contracts.base import Event

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_upcasters: dict[tuple[str, int], Upcaster] = {}


def upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register `fn` to turn `event_type` v`from_version` into v`from_version + 1`."""

    def register(fn: Upcaster) -> Upcaster:
        key = (event_type, from_version)
        if key in _upcasters:
            raise ValueError(f"an upcaster for {event_type} v{from_version} exists already")
        _upcasters[key] = fn
        return fn

    return register


def stored_version(raw: dict[str, Any]) -> int:
    version = raw.get("v", 1)
    if type(version) is not int or version < 1:
        raise msgspec.ValidationError(f"schema version must be a positive integer, got {version!r}")
    return version


def upcast(raw: dict[str, Any], current: int) -> dict[str, Any]:
    event_type = str(raw.get("type"))
    version = stored_version(raw)
    while version < current:
        step = _upcasters.get((event_type, version))
        if step is None:
            raise msgspec.ValidationError(f"no upcaster for {event_type} v{version}")
        raw = step(dict(raw))
        version += 1
        raw["v"] = version
    return raw


class StreamCodec:
    """Decodes one stream's payloads into its tagged union of events."""

    def __init__(self, union: Any) -> None:
        self.union = union
        self._decoder: msgspec.json.Decoder[Event] = msgspec.json.Decoder(union)
        self._versions: dict[str, int] = {}
        for cls in _members(union):
            tag = cls.__struct_config__.tag
            self._versions[str(tag)] = cls.version

    def decode(self, data: bytes | memoryview) -> Event:
        try:
            event = self._decoder.decode(data)
        except msgspec.ValidationError:
            return self._decode_old(data)
        if event.v < type(event).version:
            return self._decode_old(data)
        return event

    def _decode_old(self, data: bytes | memoryview) -> Event:
        raw = msgspec.json.decode(data)
        if not isinstance(raw, dict):
            raise msgspec.ValidationError("an event must be a JSON object")
        current = self._versions.get(str(raw.get("type")))
        if current is None or stored_version(raw) >= current:
            # Not an old shape, just a bad one: report the typed decoder's error.
            self._decoder.decode(data)
        result: Event = msgspec.convert(upcast(raw, current or 1), self.union)
        return result

    @property
    def event_types(self) -> list[type[Event]]:
        return list(_members(self.union))


def _members(union: Any) -> tuple[type[Event], ...]:
    args = getattr(union, "__args__", None)
    return tuple(args) if args else (union,)
