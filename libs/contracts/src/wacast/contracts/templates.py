"""Message templates: the placeholders a campaign or step text may hold.

`{name}`, `{phone}` and `{attributes.<key>}` are replaced by the lead's values; a value the
lead does not have (an unknown attribute, an empty name) becomes empty, or the default
written after a bar: `{name|friend}`, `{attributes.city|your city}` (the default may be
empty, hold spaces, but no braces). Anything else in braces is left as written, so a text
with a literal `{` needs no escaping. Owners render per lead into each send request; the
gateway sends the text as it gets it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_PLACEHOLDER = re.compile(r"\{(name|phone|attributes\.([A-Za-z0-9_\- ]{1,64}))(?:\|([^{}]*))?\}")


def render(text: str, *, name: str, phone: str, attributes: Mapping[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        if key == "name":
            found = name
        elif key == "phone":
            found = phone
        else:
            found = attributes.get(match.group(2), "")
        return found if found.strip() else (match.group(3) or "")

    return _PLACEHOLDER.sub(value, text)
