"""What a file is, told from its first bytes (magic numbers), never from a header or name.

The file name only refines what the bytes allow (a ZIP container named `.docx` is a Word
document); it never turns bytes of one kind into another. Text documents have no magic:
bytes that decode as UTF-8 without control characters are `text/plain` (or `text/csv` when
so named). Anything else is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

from wacast.contracts.values import MediaKind

SNIFF_BYTES = 4096
"""How many leading bytes `sniff` needs."""


@dataclass(frozen=True, slots=True)
class Sniffed:
    kind: MediaKind
    mime: str
    extension: str


_MAGIC: tuple[tuple[int, bytes, Sniffed], ...] = (
    (0, b"\xff\xd8\xff", Sniffed("image", "image/jpeg", "jpg")),
    (0, b"\x89PNG\r\n\x1a\n", Sniffed("image", "image/png", "png")),
    (0, b"GIF87a", Sniffed("image", "image/gif", "gif")),
    (0, b"GIF89a", Sniffed("image", "image/gif", "gif")),
    (0, b"BM", Sniffed("image", "image/bmp", "bmp")),
    (0, b"%PDF-", Sniffed("document", "application/pdf", "pdf")),
    (0, b"\x1aE\xdf\xa3", Sniffed("video", "video/webm", "webm")),
)
_FTYP_BRANDS = {
    b"qt  ": Sniffed("video", "video/quicktime", "mov"),
    b"3gp4": Sniffed("video", "video/3gpp", "3gp"),
    b"3gp5": Sniffed("video", "video/3gpp", "3gp"),
    b"3gp6": Sniffed("video", "video/3gpp", "3gp"),
    b"M4A ": Sniffed("document", "audio/mp4", "m4a"),
}
_MP4 = Sniffed("video", "video/mp4", "mp4")
_ZIP = Sniffed("document", "application/zip", "zip")
_OFFICE_ZIP = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
}
_OLE = {
    "doc": "application/msword",
    "xls": "application/vnd.ms-excel",
    "ppt": "application/vnd.ms-powerpoint",
}
_TEXT = {"csv": "text/csv", "txt": "text/plain", "vcf": "text/vcard"}


class UnknownType(ValueError):
    """The bytes are none of the kinds WhatsApp media can be."""


def sniff(head: bytes, filename: str = "") -> Sniffed:
    """The type of a file whose first bytes are `head` (at least `SNIFF_BYTES` of them when
    the file is that long)."""
    suffix = PurePath(filename).suffix.lower().lstrip(".")
    for offset, magic, found in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return found
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed("image", "image/webp", "webp")
    if head[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(head[8:12], _MP4)
    if head[:4] == b"PK\x03\x04":
        mime = _OFFICE_ZIP.get(suffix)
        return Sniffed("document", mime, suffix) if mime else _ZIP
    if head[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        mime = _OLE.get(suffix, "application/x-ole-storage")
        return Sniffed("document", mime, suffix if suffix in _OLE else "bin")
    if head[:3] == b"ID3" or head[:2] in (b"\xff\xfb", b"\xff\xf3"):
        return Sniffed("document", "audio/mpeg", "mp3")
    if head[:4] == b"OggS":
        return Sniffed("document", "audio/ogg", "ogg")
    if _looks_like_text(head):
        return Sniffed("document", _TEXT.get(suffix, "text/plain"), suffix or "txt")
    raise UnknownType("the bytes are not an image, video or document type we can send")


def _looks_like_text(head: bytes) -> bool:
    if not head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut off by the end of `head` is still text.
        if exc.start < len(head) - 3:
            return False
        text = head[: exc.start].decode("utf-8")
    return all(ch.isprintable() or ch in "\r\n\t\f" for ch in text)
