"""A campaign's message, rendered for one lead.

Placeholders (shared with sequences, see `wacast.contracts.templates`):

- `{name}`, `{phone}` (E.164), `{attributes.<key>}` (any free attribute of the lead; a CSV
  import names attributes after their column headers, in lower case);
- a value the lead does not have renders empty, or as the default after a bar:
  `Hi {name|there}`, `{attributes.city|your city}`;
- anything else in braces stays as written, so `{` needs no escaping.

A text that renders blank, without media, is no message: that lead is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping

from wacast.contracts.templates import render
from wacast.contracts.values import MessageContent


def personalise(
    message: MessageContent, *, name: str, phone: str, attributes: Mapping[str, str]
) -> MessageContent | None:
    text = render(message.text, name=name, phone=phone, attributes=attributes)
    if not text.strip() and not message.media_id:
        return None
    return MessageContent(text=text, media_id=message.media_id)
