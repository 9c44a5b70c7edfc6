"""Decoding images for the encoders, in worker processes or threads (workers.py) with a bounded look-ahead.

Everything a worker runs lives here and imports only Pillow and numpy, so starting a worker is cheap and the
GPU benchmark runs where duckdb, av and gradio are missing. JPEGs are decoded with DCT scaling
(`Image.draft`): a 1920×1080 photo decodes at 1/4 or 1/8 size, several times faster than in full.
"""
from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Generator, Iterator, Sequence

import numpy as np
from PIL import Image

from anagnorisis.embed.base import describe_error
from anagnorisis.embed.workers import WorkerPool, chunks_of, default_workers  # noqa: F401 - encoders import them from here

CRASHED = "the image decoder crashed or hung on this file"
# EXIF tag of the orientation a camera recorded; 1 means upright, 2-8 name the flip/rotation that rights it.
EXIF_ORIENTATION = 0x0112
_ORIENTATION_FIX = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


# ---------------------------------------------------------------- decoding


def open_rgb(path: Path | str, draft_size: tuple[int, int] | None = None) -> Image.Image:
    """An image as upright RGB; a JPEG is decoded at the smallest DCT scale still at least `draft_size`.

    Transparent pixels are laid on white (as a viewer shows them), not on whatever colour they hide.
    """
    with Image.open(path) as image:
        if draft_size is not None:
            image.draft("RGB", draft_size)
        image.load()
        orientation = image.getexif().get(EXIF_ORIENTATION, 1) if image.format in ("JPEG", "TIFF", "WEBP") else 1
        rgb = _flatten_to_rgb(image)
    method = _ORIENTATION_FIX.get(orientation)
    return rgb.transpose(method) if method is not None else rgb


def _flatten_to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image.copy()
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


@dataclass(frozen=True)
class ImageGeometry:
    """How a model wants its pixels: `resize` squashes to height×width (SigLIP); `crop` scales the shortest edge
    to `shortest_edge` and centre-crops height×width (CLIP); `keep` only bounds the size (other processors)."""

    mode: str  # "resize" | "crop" | "keep"
    height: int
    width: int
    shortest_edge: int = 0
    resample: int = Image.Resampling.BICUBIC

    @property
    def draft_size(self) -> tuple[int, int]:
        if self.mode == "crop":
            return (self.shortest_edge, self.shortest_edge)
        return (self.width, self.height)


def fit_geometry(image: Image.Image, geometry: ImageGeometry) -> Image.Image:
    """The image resized (and cropped) as the model's processor would."""
    if geometry.mode == "resize":
        return image.resize((geometry.width, geometry.height), geometry.resample)
    if geometry.mode == "crop":
        width, height = image.size
        scale = geometry.shortest_edge / min(width, height)
        size = (max(geometry.width, round(width * scale)), max(geometry.height, round(height * scale)))
        resized = image.resize(size, geometry.resample)
        left, top = (size[0] - geometry.width) // 2, (size[1] - geometry.height) // 2
        return resized.crop((left, top, left + geometry.width, top + geometry.height))
    image = image.copy()
    image.thumbnail((geometry.width, geometry.height), Image.Resampling(geometry.resample))
    return image


def decode_for_model(paths: Sequence[str], geometry: ImageGeometry) -> list[np.ndarray | str]:
    """Per path: uint8 pixels (H, W, 3) shaped for the model, or the reason the file could not be decoded."""
    results: list[np.ndarray | str] = []
    for path in paths:
        try:
            image = open_rgb(path, geometry.draft_size)
            results.append(np.asarray(fit_geometry(image, geometry), dtype=np.uint8))
        except Exception as error:  # noqa: BLE001 - any decoder error makes this one file bad, not the batch
            results.append(image_reason(error))
    return results


# ---------------------------------------------------------------- pixels handed over in shared memory


@dataclass(frozen=True)
class SlotSpec:
    """A file of `slots` fixed-size pixel slots (slots, height, width, 3) that workers decode into."""

    path: str
    slots: int
    height: int
    width: int


_ATTACHED: dict[str, np.ndarray] = {}


def _attach(spec: SlotSpec) -> np.ndarray:
    """The slot file mapped into this worker (only the latest one is kept mapped)."""
    if spec.path not in _ATTACHED:
        _ATTACHED.clear()
        _ATTACHED[spec.path] = np.memmap(spec.path, np.uint8, "r+", shape=(spec.slots, spec.height, spec.width, 3))
    return _ATTACHED[spec.path]


def decode_into_slots(items: Sequence[tuple[str, int]], spec: SlotSpec, geometry: ImageGeometry) -> list[tuple[int, str | None]]:
    """Worker task: decode each (path, slot) into its slot; per item (slot, None) or (slot, reason)."""
    slots = _attach(spec)
    results: list[tuple[int, str | None]] = []
    for path, slot in items:
        try:
            slots[slot] = np.asarray(fit_geometry(open_rgb(path, geometry.draft_size), geometry), dtype=np.uint8)
            results.append((slot, None))
        except Exception as error:  # noqa: BLE001 - any decoder error makes this one file bad, not the batch
            results.append((slot, image_reason(error)))
    return results


def _crashed_in_slot(item: tuple[str, int]) -> tuple[int, str | None]:
    return item[1], CRASHED


class SlotBuffer:
    """Shared memory the parent reads decoded pixels from: no pickling of pixels through a pipe, whose reader
    thread would wait for the GIL while the model's Python code runs (and stall every worker writing to it).

    A file in /dev/shm (RAM) when it has room, else in the temporary folder; removed on close.
    """

    def __init__(self, slots: int, height: int, width: int) -> None:
        size = slots * height * width * 3
        fd, path = tempfile.mkstemp(prefix="anagnorisis-pixels-", dir=_shared_folder(size))
        try:
            os.ftruncate(fd, size)
        finally:
            os.close(fd)
        self.spec = SlotSpec(path, slots, height, width)
        self.array = np.memmap(path, np.uint8, "r+", shape=(slots, height, width, 3))
        self.free: deque[int] = deque(range(slots))

    def take(self, count: int) -> list[int]:
        if count > len(self.free):
            raise RuntimeError(f"pixel slots exhausted: {count} wanted, {len(self.free)} free")
        return [self.free.popleft() for _ in range(count)]

    def close(self) -> None:
        del self.array
        with contextlib.suppress(OSError):
            os.unlink(self.spec.path)


def _shared_folder(size: int) -> str:
    # Containers often give /dev/shm only 64 MB: a file bigger than what is free there would fault on write.
    try:
        stats = os.statvfs("/dev/shm")
        if stats.f_bavail * stats.f_frsize > 2 * size:
            return "/dev/shm"
    except OSError:
        pass
    return tempfile.gettempdir()


Decoded = tuple[Path, "np.ndarray | str"]


def decoded_images(
    pool: "WorkerPool", paths: Sequence[Path], geometry: ImageGeometry, files_per_task: int, in_flight: int
) -> Generator[Decoded, None, None]:
    """(path, pixels or reason) per file, in order, decoded by the pool with at most `in_flight` tasks queued.

    With a process pool the pixels are a view into shared memory, valid until the iterator is advanced:
    copy them out before asking for the next file.
    """
    if pool.kind != "process" or geometry.mode == "keep":
        decode = functools.partial(decode_for_model, geometry=geometry)
        chunks = pool.ordered(decode, chunks_of([str(p) for p in paths], files_per_task), in_flight, image_reason_for_crash)
        yield from zip(paths, (result for chunk in chunks for result in chunk))
        return
    buffer = SlotBuffer((in_flight + 1) * files_per_task, geometry.height, geometry.width)
    try:
        yield from _from_slots(pool, paths, geometry, files_per_task, in_flight, buffer)
    finally:
        buffer.close()


def _from_slots(
    pool: "WorkerPool", paths: Sequence[Path], geometry: ImageGeometry, per_task: int, in_flight: int, buffer: SlotBuffer
) -> Iterator[Decoded]:
    def tasks() -> Iterator[list[tuple[str, int]]]:
        for chunk in chunks_of([str(p) for p in paths], per_task):
            yield list(zip(chunk, buffer.take(len(chunk))))  # slots are taken only when the task is submitted

    decode = functools.partial(decode_into_slots, spec=buffer.spec, geometry=geometry)
    results = (item for chunk in pool.ordered(decode, tasks(), in_flight, _crashed_in_slot) for item in chunk)
    for path, (slot, reason) in zip(paths, results):
        yield path, reason if reason is not None else buffer.array[slot]
        buffer.free.append(slot)


def image_reason_for_crash(path: str) -> str:
    return CRASHED


def image_reason(error: BaseException) -> str:
    """The reason shown for a file whose picture could not be decoded."""
    return f"cannot decode image: {describe_error(error)}"
