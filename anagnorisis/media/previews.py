"""The previews cache: small JPEG thumbnails keyed by content hash, made once, served in place."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from PIL import Image, ImageOps

log = logging.getLogger(__name__)

THUMBNAIL_PIXELS = 320  # longest side of a gallery thumbnail, in pixels: sharp in a 4-6 column grid
JPEG_QUALITY = 82


def thumbnail_path(cache_dir: Path, content_hash: str, size: int = THUMBNAIL_PIXELS) -> Path:
    return Path(cache_dir) / content_hash[:2] / f"{content_hash}_{size}.jpg"


def small_picture(opened: Image.Image, size: int) -> Image.Image:
    """The picture within size × size: decoded at reduced size where the format allows (JPEG DCT scaling),
    oriented by EXIF, transparency laid on dark grey."""
    opened.draft("RGB", (size * 2, size * 2))
    image: Image.Image = ImageOps.exif_transpose(opened)
    image.thumbnail((size, size))
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGBA")
        background = Image.new("RGB", image.size, (32, 32, 32))
        background.paste(image, mask=image.getchannel("A"))
        image = background
    return image


def make_thumbnail(source: str | os.PathLike[str], target: Path, size: int = THUMBNAIL_PIXELS) -> Path:
    """Decode at reduced size where the format allows (JPEG DCT scaling), orient by EXIF, write atomically."""
    with Image.open(source) as opened:
        image = small_picture(opened, size)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        image.save(partial, "JPEG", quality=JPEG_QUALITY)
        os.replace(partial, target)
    return target


def ensure_thumbnail(cache_dir: Path, source: str | os.PathLike[str], content_hash: str,
                     size: int = THUMBNAIL_PIXELS) -> Path | None:
    """The cached thumbnail, made now if missing; None (and a log line) when the file cannot be decoded."""
    target = thumbnail_path(cache_dir, content_hash, size)
    if target.exists():
        return target
    try:
        return make_thumbnail(source, target, size)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        log.warning("no preview for %s: %s", source, error)
        return None
