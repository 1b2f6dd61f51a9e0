"""Opt-out keywords: a message from a lead that is, as a whole, one of its tenant's keywords.

Text and keywords are compared after the same normalisation: Unicode NFKD with combining
marks dropped (so accents do not matter), case folded, inner whitespace collapsed, and
whitespace and punctuation around it trimmed. "Stop", " stop! " and "STÓP" match `STOP`;
"stop sending me ads" does not: only the whole message counts.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

MAX_TEXT = 200
"""Longer messages are never a keyword (and are not normalised at all)."""


def _trimmed(char: str) -> bool:
    return char.isspace() or unicodedata.category(char).startswith("P")


def normalize(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    folded = " ".join(bare.casefold().split())
    start, end = 0, len(folded)
    while start < end and _trimmed(folded[start]):
        start += 1
    while end > start and _trimmed(folded[end - 1]):
        end -= 1
    return folded[start:end]


def matching(text: str, keywords: Iterable[str]) -> str | None:
    """The keyword (as the tenant wrote it) that `text` is, or None."""
    if not text or len(text) > MAX_TEXT:
        return None
    said = normalize(text)
    if not said:
        return None
    return next((k for k in keywords if normalize(k) == said), None)
