"""Reading audio for the encoders: mono float32 at a chosen rate, as deterministic windows spread over a track.

soundfile (libsndfile) reads WAV/FLAC/OGG/Opus/MP3 and seeks cheaply; anything else (m4a, aac, wma, the audio
track of a video) goes through PyAV, imported only when needed. Resampling is scipy's polyphase filter.
Only the windows are decoded where the format can seek, so a three-hour mix costs as much as a song.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
from scipy.signal import resample_poly

# Longest stretch decoded front to back when a file cannot seek (or reports no duration), in seconds:
# enough to reach windows spread over a long song, bounded so a stream of unknown length cannot fill memory.
SEQUENTIAL_LIMIT_SECONDS = 20 * 60.0


class AudioError(Exception):
    """A file that yields no audio; the message is the reason."""


@dataclass(frozen=True)
class AudioWindows:
    """Mono windows at `sample_rate`, in track order, and the whole track's duration in seconds."""

    windows: list[np.ndarray]
    duration: float
    sample_rate: int


def audio_reason(error: BaseException) -> str:
    """The reason shown for a file whose audio could not be read."""
    from anagnorisis.embed.base import describe_error

    return str(error) if isinstance(error, AudioError) else f"cannot decode audio: {describe_error(error)}"


def window_starts(duration: float, window: float, count: int) -> list[float]:
    """Start times of up to `count` windows whose centres sit at (i + 0.5)/n of the track; one from 0 if short."""
    if duration <= window:
        return [0.0]
    count = min(max(1, count), math.ceil(duration / window))
    starts = [(index + 0.5) * duration / count - window / 2 for index in range(count)]
    return [min(max(0.0, start), duration - window) for start in starts]


def to_rate(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Mono float32 resampled with a polyphase filter (exact integer ratio, e.g. 160/147 for 44.1→48 kHz)."""
    samples = np.asarray(samples, dtype=np.float32)
    if source_rate == target_rate or samples.size == 0:
        return samples
    ratio = Fraction(target_rate, source_rate)
    return resample_poly(samples, ratio.numerator, ratio.denominator).astype(np.float32)


def read_windows(path: Path | str, sample_rate: int, window_seconds: float, max_windows: int) -> AudioWindows:
    """Up to `max_windows` windows of `window_seconds` (the whole track if shorter), mono at `sample_rate`."""
    try:
        with soundfile.SoundFile(str(path)) as sound:
            return _windows_from_soundfile(sound, sample_rate, window_seconds, max_windows)
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        # Not a format libsndfile knows (m4a, aac, ...) or one it cannot parse: FFmpeg may still read it.
        return _windows_from_pyav(path, sample_rate, window_seconds, max_windows)


def _mono(block: np.ndarray) -> np.ndarray:
    return block.mean(axis=1) if block.ndim == 2 else block


def _windows_from_soundfile(
    sound: soundfile.SoundFile, sample_rate: int, window_seconds: float, max_windows: int
) -> AudioWindows:
    native = sound.samplerate
    frames = sound.frames
    if frames <= 0 or not sound.seekable():
        samples = _mono(sound.read(int(SEQUENTIAL_LIMIT_SECONDS * native), dtype="float32", always_2d=True))
        return _cut_windows(to_rate(samples, native, sample_rate), sample_rate, window_seconds, max_windows)
    duration = frames / native
    windows = []
    for start in window_starts(duration, window_seconds, max_windows):
        sound.seek(int(start * native))
        block = sound.read(int(round(window_seconds * native)), dtype="float32", always_2d=True)
        windows.append(to_rate(_mono(block), native, sample_rate))
    return _checked(AudioWindows(windows, duration, sample_rate))


def _cut_windows(samples: np.ndarray, sample_rate: int, window_seconds: float, max_windows: int) -> AudioWindows:
    duration = samples.size / sample_rate
    length = int(round(window_seconds * sample_rate))
    windows = []
    for start in window_starts(duration, window_seconds, max_windows):
        first = int(round(start * sample_rate))
        windows.append(samples[first : first + length])
    return _checked(AudioWindows(windows, duration, sample_rate))


def _checked(result: AudioWindows) -> AudioWindows:
    if not result.windows or all(window.size == 0 for window in result.windows):
        raise AudioError("no audio samples could be decoded")
    if not all(np.isfinite(window).all() for window in result.windows):
        raise AudioError("decoded audio holds NaN or infinite samples")
    return AudioWindows([w for w in result.windows if w.size], result.duration, result.sample_rate)


# ---------------------------------------------------------------- PyAV (FFmpeg) for everything else


def _windows_from_pyav(path: Path | str, sample_rate: int, window_seconds: float, max_windows: int) -> AudioWindows:
    import av  # imported here: only files libsndfile cannot read need FFmpeg

    try:
        with _open_container(path) as container:
            if not container.streams.audio:
                raise AudioError("the file has no audio stream")
            stream = container.streams.audio[0]
            duration = _stream_seconds(container, stream)
            if duration is not None and duration > 1.5 * window_seconds * max_windows:
                windows = [
                    _decode_span(container, stream, start, window_seconds, sample_rate)
                    for start in window_starts(duration, window_seconds, max_windows)
                ]
                if all(window.size for window in windows):
                    return _checked(AudioWindows(windows, duration, sample_rate))
                container.seek(0)
            samples = _decode_span(container, stream, 0.0, SEQUENTIAL_LIMIT_SECONDS, sample_rate)
            return _cut_windows(samples, sample_rate, window_seconds, max_windows)
    except av.FFmpegError as error:
        raise AudioError(f"cannot decode audio: {error.strerror or error}") from None


def _open_container(path: Path | str) -> Any:
    """FFmpeg on the file protocol only (a name like "concat:..." is not a protocol; no network)."""
    import av

    return av.open("file:" + os.path.abspath(os.fsdecode(path)), options={"protocol_whitelist": "file"})


def _stream_seconds(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # av.time_base: microseconds
    return None


def _decode_span(container: Any, stream: Any, start: float, seconds: float, sample_rate: int) -> np.ndarray:
    """Mono samples from `start` for `seconds` (seeking first when start > 0), resampled to `sample_rate`."""
    import av

    if start > 0:
        container.seek(int(start * 1_000_000), backward=True, any_frame=False)
    mono = av.AudioResampler(format="fltp", layout="mono")
    pieces: list[np.ndarray] = []
    native = stream.codec_context.sample_rate or stream.rate
    have, wanted = 0, int(seconds * native)
    for frame in container.decode(stream):
        for converted in mono.resample(frame):
            block = converted.to_ndarray()[0]
            offset = 0
            if converted.time is not None and converted.time < start:
                offset = min(block.size, int(round((start - converted.time) * native)))
            pieces.append(block[offset:])
            have += block.size - offset
        if have >= wanted:
            break
    samples = np.concatenate(pieces)[:wanted] if pieces else np.zeros(0, dtype=np.float32)
    return to_rate(samples, native, sample_rate)
