"""Request and response shapes of `/api/v1/media`."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from wacast.contracts import queries as q

Filename = Annotated[str, Meta(max_length=200)]


class MediaJson(msgspec.Struct, frozen=True, kw_only=True):
    """Exactly one of `base64` (the file's bytes) or `url` (fetched by the server: http or
    https, private and internal addresses refused)."""

    base64: str = ""
    url: Annotated[str, Meta(max_length=2000)] = ""
    filename: Filename = ""


class MediaResult(q.Media, frozen=True, kw_only=True):
    """The media item after it was stored, with the write's `seq` and `stream`."""

    seq: int
    stream: str
