"""Images: Pillow reads the header and EXIF, and decodes cheaply (JPEG at reduced size) to prove the file is whole."""
from __future__ import annotations

import functools
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image, TiffImagePlugin

from anagnorisis.kinds.probing import IMAGES, read_head, refuse_other_kinds, short_reason, sniff_file
from anagnorisis.kinds.registry import MediaError, MediaKind, Metadata, Probe, register

# Bytes of RAM per pixel we allow an image to have: a decoded RGBA pixel takes 4 bytes, and a pipeline holds
# several copies at once (decode, convert, resize) in several workers; 32 keeps a worst-case file from swapping.
RAM_BYTES_PER_ALLOWED_PIXEL = 32
FALLBACK_RAM_BYTES = 8 * 1024**3  # assumed when the platform does not say how much RAM it has
# Pixels above which an image (other than JPEG and PNG, which have cheaper checks) is only verified, not decoded:
# a full decode of 50 MP takes about a second and 200 MB, too much per file for a first scan of a big library.
FULL_DECODE_MAX_PIXELS = 50_000_000
JPEG_DRAFT_SIZE = (256, 256)  # the JPEG decoder scales by 1/2..1/8 to about this while checking integrity

# Formats Pillow may try: only ones with a real signature, so text or noise is never mistaken for an image
# (Pillow would otherwise try header-less formats such as TGA on anything).
OPEN_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "ICO", "PPM", "JPEG2000", "AVIF", "PSD", "QOI")

# The formats each extension may hold without a warning.
EXPECTED_FORMATS: dict[str, frozenset[str]] = {
    ".jpg": frozenset({"JPEG"}),
    ".jpeg": frozenset({"JPEG"}),
    ".png": frozenset({"PNG"}),
    ".webp": frozenset({"WEBP"}),
    ".gif": frozenset({"GIF"}),
    ".bmp": frozenset({"BMP"}),
    ".tif": frozenset({"TIFF"}),
    ".tiff": frozenset({"TIFF"}),
}

# EXIF tags worth showing, by id: (IFD0 tags, Exif sub-IFD tags).
_BASE_TAGS = (0x010F, 0x0110, 0x0112, 0x0131, 0x0132, 0x013B)  # Make Model Orientation Software DateTime Artist
_EXIF_IFD = 0x8769
_EXIF_TAGS = (0x9003, 0x9004, 0x9011, 0x829A, 0x829D, 0x8827, 0x920A, 0xA434)
# DateTimeOriginal DateTimeDigitized OffsetTimeOriginal ExposureTime FNumber ISO FocalLength LensModel
_DATE_TAGS = ("DateTimeOriginal", "DateTime", "DateTimeDigitized")
# EXIF date layouts seen in the wild, with the characters each takes (sub-second and zone suffixes are cut off).
_DATE_PATTERNS = (("%Y:%m:%d %H:%M:%S", 19), ("%Y-%m-%d %H:%M:%S", 19), ("%Y-%m-%dT%H:%M:%S", 19), ("%Y:%m:%d", 10))
MAX_EXIF_TEXT = 120  # characters kept of a text tag; makers fill some with kilobytes of padding


def total_ram_bytes() -> int:
    """Physical RAM, or the container's memory limit when that is lower."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        physical = FALLBACK_RAM_BYTES
    return min(physical, _cgroup_memory_limit() or physical)


def _cgroup_memory_limit() -> int | None:
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:  # cgroup v1 writes a huge number for "no limit"
            return int(text)
    return None


@functools.lru_cache(maxsize=1)
def max_image_pixels() -> int:
    """The decompression-bomb cap: images with more pixels than this are refused."""
    return total_ram_bytes() // RAM_BYTES_PER_ALLOWED_PIXEL


@functools.lru_cache(maxsize=1)
def _formats_pillow_has() -> tuple[str, ...]:
    """OPEN_FORMATS less those this Pillow build lacks (Image.open raises KeyError on an unknown name)."""
    Image.init()
    return tuple(name for name in OPEN_FORMATS if name in Image.OPEN)


def use_pixel_cap_in_pillow() -> None:
    """Make Pillow's own bomb check agree with ours, for every later Image.open in this process.

    Pillow refuses above twice its limit (default ~179 MP) before we could look; with our cap in its place,
    large images under our cap open, and everything else (embedding, previews) is protected the same way.
    """
    Image.MAX_IMAGE_PIXELS = max_image_pixels()


def read_image(path: Path) -> Probe:
    """Metadata of an image file, after proving it decodes; MediaError with the reason otherwise."""
    head = read_head(path)
    content = sniff_file(path, head)
    refuse_other_kinds(content, IMAGES, "an image")
    try:
        with Image.open(path, formats=_formats_pillow_has()) as image:
            return _probe_open_image(image, path)
    except MediaError:
        raise
    except Image.DecompressionBombError as error:
        raise MediaError(_too_large_message(_pixels_in_bomb_message(str(error)))) from error
    except Image.UnidentifiedImageError as error:
        if content is not None:  # the signature says which format; the header behind it is broken
            raise MediaError(f"damaged image: its {content.label} header cannot be read") from error
        raise MediaError("not a recognised image format") from error
    except Exception as error:  # noqa: BLE001 - decoders raise anything on hostile input; all mean "damaged"
        raise MediaError(f"damaged image: {short_reason(error)}") from error


def _probe_open_image(image: Image.Image, path: Path) -> Probe:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise MediaError(f"image has no pixels ({width}×{height})")
    if width * height > max_image_pixels():
        raise MediaError(_too_large_message(width * height, (width, height)))
    metadata = _describe(image)
    _check_that_it_decodes(image, path)
    return Probe(metadata, _format_warning(metadata["format"], path))


def _too_large_message(pixels: int | None, size: tuple[int, int] | None = None) -> str:
    dims = f"{size[0]}×{size[1]} = " if size else ""
    count = f"{dims}{pixels:,} pixels" if pixels else "too many pixels"
    cap = f"{max_image_pixels():,} pixels (RAM / {RAM_BYTES_PER_ALLOWED_PIXEL})"
    return f"image too large: {count}, over the cap of {cap}"


def _pixels_in_bomb_message(message: str) -> int | None:
    found = re.search(r"\((\d+) pixels\)", message)
    return int(found.group(1)) if found else None


def _describe(image: Image.Image) -> Metadata:
    fmt = "JPEG" if image.format == "MPO" else str(image.format)
    metadata: Metadata = {"width": image.size[0], "height": image.size[1], "format": fmt, "mode": image.mode}
    exif = _readable_exif(image)
    if exif:
        metadata["exif"] = exif
        date = _exif_date(exif)
        if date:
            metadata["date"] = date
    if fmt in ("GIF", "WEBP", "PNG", "TIFF"):
        frames = int(getattr(image, "n_frames", 1))
        if fmt == "GIF" or frames > 1:
            metadata["animated"] = frames > 1
            metadata["frames"] = frames
    return metadata


def _check_that_it_decodes(image: Image.Image, path: Path) -> None:
    """Do as little as proves the file whole: a JPEG decoded at 1/8 scale, a PNG's checksums verified,
    other images decoded when not huge (verified when they are)."""
    if image.format in ("JPEG", "MPO"):
        image.draft("RGB", JPEG_DRAFT_SIZE)
        image.load()
    elif image.format == "PNG":
        # Every PNG chunk carries a CRC: checking them reads the file once without inflating it, 15-40x
        # cheaper than a decode, and a cut or flipped byte anywhere fails it.
        image.verify()
    elif image.size[0] * image.size[1] <= FULL_DECODE_MAX_PIXELS:
        image.load()
        if image.format == "GIF" and not _ends_with_gif_trailer(path):
            image.seek(int(getattr(image, "n_frames", 1)) - 1)  # a cut-off GIF fails on its last frame
            image.load()
    else:
        image.verify()


def _ends_with_gif_trailer(path: Path) -> bool:
    with open(path, "rb") as file:
        file.seek(-1, os.SEEK_END)
        return file.read(1) == b";"


def _readable_exif(image: Image.Image) -> dict[str, Any]:
    """A small JSON-safe dict of the EXIF tags a person cares about; damaged EXIF just yields fewer tags."""
    if image.format == "PNG" and "exif" not in image.info:
        return {}  # Pillow would decode the whole PNG to look for EXIF after the pixels
    try:
        exif = image.getexif()
        tags = {tag: exif.get(tag) for tag in _BASE_TAGS}
        sub_ifd = exif.get_ifd(_EXIF_IFD)
        tags.update({tag: sub_ifd.get(tag) for tag in _EXIF_TAGS})
    except Exception:  # noqa: BLE001 - broken EXIF must not make a viewable image bad
        return {}
    readable = {}
    for tag, value in tags.items():
        clean = _json_value(value)
        if clean is not None:
            readable[ExifTags.TAGS.get(tag, str(tag))] = clean
    return readable


def _json_value(value: Any) -> str | int | float | None:
    if isinstance(value, str):
        text = value.replace("\x00", "").strip()
        return text[:MAX_EXIF_TEXT] or None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, (float, TiffImagePlugin.IFDRational)):
        number = float(value)
        return round(number, 6) if number == number and abs(number) != float("inf") else None
    return None


def _exif_date(exif: dict[str, Any]) -> str | None:
    """ISO-8601 local time from the first EXIF date that parses, with its offset when the camera stored one."""
    for name in _DATE_TAGS:
        value = exif.get(name)
        if not isinstance(value, str):
            continue
        for pattern, length in _DATE_PATTERNS:
            try:
                parsed = datetime.strptime(value.strip()[:length], pattern)
            except ValueError:
                continue
            offset = exif.get("OffsetTimeOriginal") if name == "DateTimeOriginal" else None
            suffix = offset if isinstance(offset, str) and re.fullmatch(r"[+-]\d\d:\d\d", offset) else ""
            return parsed.isoformat() + suffix
    return None


def _format_warning(fmt: str, path: Path) -> str | None:
    extension = path.suffix.lower()
    expected = EXPECTED_FORMATS.get(extension)
    if expected is None or fmt in expected:
        return None
    return f"content is {fmt}, extension says {extension}"


use_pixel_cap_in_pillow()

IMAGES_KIND = register(
    MediaKind(
        name=IMAGES,
        extensions=frozenset(EXPECTED_FORMATS),
        encoder="siglip",
        fallback_encoder="basic-image",
        read_metadata=read_image,
        extra_sorts=("resolution", "proportion"),
        noun=("image", "images"),
        default_model="google/siglip-base-patch16-224",
        tab="Images",
    )
)
