"""Images made fit to send: upright, flattened, resized and compressed to a byte budget.

Every image is re-encoded as JPEG (which also drops EXIF, GPS position included):
- the EXIF orientation is applied first (`ImageOps.exif_transpose`), so a photo taken
  sideways stays upright once its EXIF is gone;
- transparency (PNG, GIF, WebP) is flattened onto white;
- the longer side is brought down to `max_side` (aspect kept);
- the JPEG quality is binary-searched for the best one under `target_bytes`; when even the
  lowest quality is too big, the image is scaled down by a quarter and searched again.
CPU-bound: call it in a worker thread.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

MIN_QUALITY = 20
MAX_QUALITY = 90
MAX_PIXELS = 60_000_000
"""Refused above this (decompression bombs); a 50 MP photo still fits."""
WHITE = (255, 255, 255)


class InvalidImage(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Compressed:
    data: bytes
    width: int
    height: int
    mime: str = "image/jpeg"


def compress(data: bytes, *, target_bytes: int, max_side: int) -> Compressed:
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                raise InvalidImage(f"image has more than {MAX_PIXELS} pixels")
            opened.load()
            image = _flatten(ImageOps.exif_transpose(opened))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError) as exc:
        if isinstance(exc, InvalidImage):
            raise
        raise InvalidImage(f"the image cannot be read: {exc}") from None
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    while True:
        found = _best_quality(image, target_bytes)
        if found is not None:
            return Compressed(found, image.width, image.height)
        if max(image.size) <= 64:
            raise InvalidImage("the image cannot be made small enough")
        smaller = (max(1, image.width * 3 // 4), max(1, image.height * 3 // 4))
        image = image.resize(smaller, Image.Resampling.LANCZOS)


def _flatten(image: Image.Image) -> Image.Image:
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode in ("I", "I;16", "F"):
        image = image.convert("L")
    return image.convert("RGB")


def _encode(image: Image.Image, quality: int, optimize: bool = False) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, optimize=optimize, progressive=optimize)
    return out.getvalue()


def _best_quality(image: Image.Image, target: int) -> bytes | None:
    """The highest-quality encoding within `target` bytes, None when none is."""
    low, high = MIN_QUALITY, MAX_QUALITY
    best: int | None = None
    while low <= high:
        quality = (low + high) // 2
        if len(_encode(image, quality)) <= target:
            best, low = quality, quality + 1
        else:
            high = quality - 1
    if best is None:
        return None
    final = _encode(image, best, optimize=True)
    return final if len(final) <= target else _encode(image, best)
