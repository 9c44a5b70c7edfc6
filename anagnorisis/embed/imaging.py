"""Decoding images for the encoders, in worker processes or threads with a bounded look-ahead.

Everything a worker runs lives here and imports only Pillow and numpy, so spawning a worker is cheap and the
GPU benchmark runs where duckdb, av and gradio are missing. JPEGs are decoded with DCT scaling
(`Image.draft`): a 1920×1080 photo decodes at 1/4 or 1/8 size, several times faster than in full.
"""
from __future__ import annotations

import multiprocessing
import os
from collections import deque
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np
from PIL import Image

from anagnorisis.embed.base import describe_error

Item = TypeVar("Item")
Result = TypeVar("Result")

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
    image.thumbnail((geometry.width, geometry.height), geometry.resample)
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


def image_reason(error: BaseException) -> str:
    """The reason shown for a file whose picture could not be decoded."""
    return f"cannot decode image: {describe_error(error)}"


# ---------------------------------------------------------------- workers with a bounded look-ahead


def default_workers() -> int:
    """Every core: decoding, not the model, limits image indexing (STACK-NOTES: 869 vs 7,400 images/s)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


# Modules the fork server imports once, so every worker forked from it starts with them loaded.
WORKER_PRELOAD = ["numpy", "PIL.Image", "anagnorisis.embed.imaging"]


def _process_context() -> multiprocessing.context.BaseContext:
    if "forkserver" not in multiprocessing.get_all_start_methods():  # Windows
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(WORKER_PRELOAD)
    return context


class WorkerPool:
    """Runs `fn(chunk) -> list of per-item results` over chunks, in order, with at most `in_flight` chunks queued.

    kind: "process" (real parallel decoding; a worker killed by a crashing decoder is replaced and the file
    that crashed it is reported), "thread" (Pillow releases the GIL while decoding) or "inline" (tests).
    Workers are not forked from the caller (it may hold CUDA and torch threads, which a fork copies broken):
    they come from a fork server that imported only this module, so each starts in milliseconds.
    """

    def __init__(self, workers: int | None = None, kind: str = "process") -> None:
        if kind not in ("process", "thread", "inline"):
            raise ValueError(f"unknown worker kind {kind!r}")
        self.workers = max(1, workers or default_workers())
        self.kind = kind
        self._executor: Executor | None = None

    def _pool(self) -> Executor:
        if self._executor is None:
            if self.kind == "process":
                self._executor = ProcessPoolExecutor(self.workers, mp_context=_process_context())
            else:
                self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="decode")
        return self._executor

    def warm_up(self) -> None:
        """Start every worker now (spawning takes a moment), so a timed run measures decoding only."""
        if self.kind == "inline":
            return
        futures = [self._pool().submit(os.getpid) for _ in range(self.workers * 2)]
        for future in futures:
            future.result()

    def ordered(
        self,
        fn: Callable[[list[Item]], list[Result]],
        chunks: Iterable[list[Item]],
        in_flight: int,
        on_crash: Callable[[Item], Result],
    ) -> Iterator[list[Result]]:
        """Results chunk by chunk in input order; never more than `in_flight` chunks submitted and unconsumed."""
        if self.kind == "inline":
            for chunk in chunks:
                yield fn(chunk)
            return
        source = iter(chunks)
        pending: deque[tuple[list[Item], Future[list[Result]]]] = deque()
        try:
            self._top_up(fn, source, pending, in_flight)
            while pending:
                chunk, future = pending.popleft()
                yield self._result_of(fn, chunk, future, pending, on_crash)
                self._top_up(fn, source, pending, in_flight)
        finally:
            for _, future in pending:
                future.cancel()

    def _top_up(self, fn: Callable, source: Iterator[list[Item]], pending: deque, in_flight: int) -> None:
        while len(pending) < max(1, in_flight):
            chunk = next(source, None)
            if chunk is None:
                return
            pending.append((chunk, self._pool().submit(fn, chunk)))

    def _result_of(
        self, fn: Callable, chunk: list[Item], future: Future, pending: deque, on_crash: Callable[[Item], Result]
    ) -> list[Result]:
        try:
            return future.result()
        except BrokenProcessPool:
            self._restart()
            results = [self._run_alone(fn, item, on_crash) for item in chunk]
            for index, (other, _) in enumerate(pending):  # their futures died with the pool: submit them again
                pending[index] = (other, self._pool().submit(fn, other))
            return results

    def _run_alone(self, fn: Callable, item: Item, on_crash: Callable[[Item], Result]) -> Result:
        try:
            return self._pool().submit(fn, [item]).result()[0]
        except BrokenProcessPool:
            self._restart()
            return on_crash(item)

    def _restart(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = None

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def chunks_of(items: Sequence[Item], size: int) -> Iterator[list[Item]]:
    for start in range(0, len(items), max(1, size)):
        yield list(items[start : start + size])
