"""Message templates: the placeholders a campaign or step text may hold.

`{name}`, `{phone}` and `{attributes.<key>}` are replaced by the lead's values; a value the
lead does not have (an unknown attribute, an empty name) becomes empty, or the default
written after a bar: `{name|friend}`, `{attributes.city|your city}` (the default may be
empty, hold spaces, but no braces). Anything else in braces is left as written, so a text
with a literal `{` needs no escaping. Owners render per lead into each send request; the
gateway sends the text as it gets it.

A text is parsed once (and cached), then filled per lead: a fan-out renders it a million
times.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

_PLACEHOLDER = re.compile(r"\{(name|phone|attributes\.([A-Za-z0-9_\- ]{1,64}))(?:\|([^{}]*))?\}")

Part = str | tuple[str, str]
"""Literal text, or (field, default): field `name`, `phone` or an attribute key after `.`."""


@functools.lru_cache(maxsize=1024)
def parse(text: str) -> tuple[Part, ...]:
    parts: list[Part] = []
    last = 0
    for match in _PLACEHOLDER.finditer(text):
        if match.start() > last:
            parts.append(text[last : match.start()])
        key = match.group(1) if match.group(2) is None else "." + match.group(2)
        parts.append((key, match.group(3) or ""))
        last = match.end()
    if last < len(text):
        parts.append(text[last:])
    return tuple(parts)


def render(text: str, *, name: str, phone: str, attributes: Mapping[str, str]) -> str:
    out: list[str] = []
    for part in parse(text):
        if isinstance(part, str):
            out.append(part)
            continue
        key, default = part
        if key == "name":
            found = name
        elif key == "phone":
            found = phone
        else:
            found = attributes.get(key[1:], "")
        out.append(found if found.strip() else default)
    return "".join(out)
