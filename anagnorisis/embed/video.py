"""Videos through an image encoder: frames spread over the video, embedded, averaged, normalised.

The model id is the image model's id plus `+frames8` (e.g. `google/siglip-base-patch16-224+frames8`,
`basic-image-v1+frames8`): an averaged video vector lives near, not in, the image distribution, so it is kept
apart from plain image vectors, and a different frame count is a different id. Text queries go to the image
model's text tower (same space), when it has one.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from PIL import Image

from anagnorisis.embed.base import EncodeBatch, EncodeFailure, Vectors, describe_error, l2_normalise, log_failures, merge_batches
from anagnorisis.embed.imaging import WorkerPool, chunks_of, default_workers

log = logging.getLogger(__name__)

FRAMES_PER_VIDEO = 8  # frames averaged per video: scenes of a typical clip, 8 decodes with seeking
FRAME_MAX_SIDE = 448  # pixels: twice a 224 px model input, so the model's own resize still antialiases
# Frames decoded forward from a seek point before giving up on reaching the wanted time (long GOPs).
MAX_FRAMES_PER_SEEK = 600
VIDEOS_IN_FLIGHT_PER_WORKER = 2  # videos decoded ahead per worker: keeps them busy, bounds memory to a few frames


def frames_model_id(image_model_id: str, frames: int = FRAMES_PER_VIDEO) -> str:
    return f"{image_model_id}+frames{frames}"


def _scaled(frame: Any) -> Image.Image:
    width, height = frame.width, frame.height
    scale = min(1.0, FRAME_MAX_SIDE / max(width, height))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return frame.to_image(width=size[0], height=size[1])


def _open(path: str) -> Any:
    try:
        from anagnorisis.kinds.avtools import open_container
    except ImportError:  # pragma: no cover - the kinds package is part of the app
        import av

        return av.open(path)
    return open_container(Path(path))


def _streams(container: Any) -> Any:
    import av

    attached = av.stream.Disposition.attached_pic
    streams = [stream for stream in container.streams.video if not stream.disposition & attached]
    if not streams:
        raise ValueError("no video stream")
    return streams[0]


def _seconds(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / 1_000_000
    return None


def video_frames(path: str, count: int = FRAMES_PER_VIDEO) -> list[Image.Image]:
    """Up to `count` frames at (i + 0.5)/count of the video, as RGB pictures at most 448 px on a side."""
    with _open(path) as container:
        stream = _streams(container)
        stream.thread_type = "AUTO"
        duration = _seconds(container, stream)
        if duration:
            frames = _frames_by_seeking(container, stream, duration, count)
            if frames:
                return frames
            container.seek(0)
        return _frames_in_order(container, stream, count)


def _frames_by_seeking(container: Any, stream: Any, duration: float, count: int) -> list[Image.Image]:
    import av

    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    frames: list[Image.Image] = []
    for index in range(count):
        wanted = start + (index + 0.5) * duration / count
        try:
            container.seek(int(wanted / stream.time_base), stream=stream, backward=True)
        except av.FFmpegError:
            return []
        frame = _first_frame_from(container, stream, wanted)
        if frame is not None:
            frames.append(_scaled(frame))
    return frames


def _first_frame_from(container: Any, stream: Any, wanted: float) -> Any:
    last = None
    for decoded, frame in enumerate(container.decode(stream)):
        last = frame
        if frame.time is None or frame.time >= wanted - 1e-3 or decoded >= MAX_FRAMES_PER_SEEK:
            return frame
    return last


def _frames_in_order(container: Any, stream: Any, count: int) -> list[Image.Image]:
    """For files that cannot seek or state no duration: decode from the start (bounded) and spread the picks."""
    decoded = []
    for index, frame in enumerate(container.decode(stream)):
        if index >= MAX_FRAMES_PER_SEEK * count:
            break
        decoded.append(frame)
    if not decoded:
        raise ValueError("no video frame could be decoded")
    picks = sorted({min(len(decoded) - 1, int((i + 0.5) * len(decoded) / count)) for i in range(count)})
    return [_scaled(decoded[i]) for i in picks]


def video_frames_task(paths: Sequence[str], count: int = FRAMES_PER_VIDEO) -> list[list[Image.Image] | str]:
    """Worker task: per path, its frames or the reason it could not be decoded."""
    results: list[list[Image.Image] | str] = []
    for path in paths:
        try:
            results.append(video_frames(path, count))
        except Exception as error:  # noqa: BLE001 - a damaged video is reported, the batch goes on
            results.append(f"cannot decode video: {describe_error(error)}")
    return results


def _crashed(path: str) -> str:
    return "the video decoder crashed on this file"


class VideoEncoder:
    """Any encoder with `encode_images` (SiglipEncoder, BasicImageEncoder) applied to frames of videos."""

    def __init__(self, image_encoder: Any, *, frames: int = FRAMES_PER_VIDEO, workers: int | None = None) -> None:
        self.image_encoder = image_encoder
        self.frames = frames
        self.model_id = frames_model_id(image_encoder.model_id, frames)
        self.has_text_tower = bool(image_encoder.has_text_tower)
        # FFmpeg decodes with the GIL released: threads decode several videos at once.
        self._pool = WorkerPool(workers or default_workers(), "thread")
        self.batch_frames = int(getattr(image_encoder, "batch_size", 64))

    @property
    def dim(self) -> int:
        return int(self.image_encoder.dim)

    def encode_files(self, paths: Sequence[Path]) -> EncodeBatch:
        return merge_batches(self.iter_encode_files(paths), self.dim)

    def iter_encode_files(self, paths: Sequence[Path]) -> Iterator[EncodeBatch]:
        """One EncodeBatch per forward pass of about `batch_frames` frames."""
        paths = [Path(path) for path in paths]
        in_flight = self._pool.workers * VIDEOS_IN_FLIGHT_PER_WORKER
        tasks = chunks_of([str(path) for path in paths], 1)
        task = _FramesTask(self.frames)
        results = (r for chunk in self._pool.ordered(task, tasks, in_flight, _crashed) for r in chunk)
        good: list[Path] = []
        frames: list[list[Image.Image]] = []
        failures: list[EncodeFailure] = []
        for path, result in zip(paths, results):
            if isinstance(result, str):
                failures.append(EncodeFailure(path, result))
            else:
                good.append(path)
                frames.append(result)
            if sum(len(f) for f in frames) >= self.batch_frames:
                yield self._batch(good, frames, failures)
                good, frames, failures = [], [], []
        if frames or failures:
            yield self._batch(good, frames, failures)

    def _batch(self, paths: list[Path], frames: list[list[Image.Image]], failures: list[EncodeFailure]) -> EncodeBatch:
        log_failures(failures)
        if not frames:
            return EncodeBatch([], np.zeros((0, self.dim), dtype=np.float32), failures)
        vectors = self.image_encoder.encode_images([frame for video in frames for frame in video])
        bounds = np.cumsum([0] + [len(video) for video in frames])
        means = np.stack([vectors[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])])
        return EncodeBatch(paths, l2_normalise(means), failures)

    def encode_texts(self, texts: Sequence[str]) -> Vectors:
        return self.image_encoder.encode_texts(texts)

    def close(self) -> None:
        self._pool.close()
        closer = getattr(self.image_encoder, "close", None)
        if closer is not None:
            closer()


class _FramesTask:
    """Worker task with the frame count bound in (picklable, should the pool ever be one of processes)."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __call__(self, paths: list[str]) -> list[list[Image.Image] | str]:
        return video_frames_task(paths, self.count)

