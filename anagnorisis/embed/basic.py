"""Basic-feature encoders that need no model weights: the offline fallbacks of SPEC §2.

Images (`basic-image-v1`): HSV colour histogram, brightness/contrast/saturation/sharpness statistics, aspect
ratio and a fixed random projection of a tiny thumbnail. Audio (`basic-audio-v1`): loudness, spectral
centroid/rolloff/flatness, MFCC-style band statistics, a tempo estimate and the duration.
Each block is scaled to a comparable share of the vector, then the whole is L2-normalised.
Changing any feature means a new model id (`-v2`), so old and new vectors never mix.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from anagnorisis.embed.base import EncodeBatch, EncodeFailure, NoTextTowerError, Vectors, l2_normalise, log_failures
from anagnorisis.embed.imaging import WorkerPool, chunks_of, default_workers, image_reason, open_rgb

BASIC_IMAGE_MODEL_ID = "basic-image-v1"
BASIC_AUDIO_MODEL_ID = "basic-audio-v1"

# ---------------------------------------------------------------- images

# JPEGs are decoded at the smallest DCT scale that keeps both sides at least this big (1/8 for 1920×1080):
# the features below look at a 64×64 working copy, so more pixels would only cost time.
IMAGE_DRAFT_SIZE = (128, 128)
WORK_SIZE = 64  # pixels per side of the working copy every statistic is computed on
HUE_BINS, SATURATION_BINS, VALUE_BINS = 12, 3, 3
THUMB_SIDE = 8  # the thumbnail projected is THUMB_SIDE × THUMB_SIDE RGB
THUMB_PROJECTED = 64  # dimensions of the thumbnail's random projection
PROJECTION_SEED = 20240517  # fixed forever for basic-image-v1: a new seed would be a new model id
N_IMAGE_STATS = 12
# Relative weight of each block in the final vector (the histogram has unit norm by construction).
HISTOGRAM_WEIGHT, STATS_WEIGHT, THUMB_WEIGHT = 1.0, 0.5, 0.8
# Files per task sent to a decode worker: amortises the hand-off without starving other workers.
IMAGE_FILES_PER_TASK = 16
# Tasks queued ahead per worker: enough that no worker waits for the next task, few enough to bound memory.
TASKS_IN_FLIGHT_PER_WORKER = 3

BASIC_IMAGE_DIM = HUE_BINS * SATURATION_BINS * VALUE_BINS + N_IMAGE_STATS + THUMB_PROJECTED


def _projection() -> np.ndarray:
    rng = np.random.default_rng(PROJECTION_SEED)
    inputs = THUMB_SIDE * THUMB_SIDE * 3
    return (rng.standard_normal((inputs, THUMB_PROJECTED)) / math.sqrt(inputs)).astype(np.float32)


_THUMB_PROJECTION = _projection()


def image_features(image: Image.Image) -> Vectors:
    """The basic-image-v1 vector of a decoded image (any size or mode), L2-normalised, float32."""
    width, height = image.size
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    work = rgb.resize((WORK_SIZE, WORK_SIZE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    pixels = np.asarray(work, dtype=np.float32) / 255.0
    hsv = np.asarray(work.convert("HSV"), dtype=np.uint8)
    parts = (
        HISTOGRAM_WEIGHT * _hsv_histogram(hsv),
        STATS_WEIGHT * _image_statistics(pixels, hsv, width / max(1, height)),
        THUMB_WEIGHT * _thumbnail_projection(work),
    )
    return l2_normalise(np.concatenate(parts))


def _hsv_histogram(hsv: np.ndarray) -> np.ndarray:
    """Joint hue×saturation×value histogram, square-rooted so Euclidean distance is the Hellinger distance."""
    hue = hsv[..., 0].astype(np.int32) * HUE_BINS // 256
    saturation = hsv[..., 1].astype(np.int32) * SATURATION_BINS // 256
    value = hsv[..., 2].astype(np.int32) * VALUE_BINS // 256
    index = (hue * SATURATION_BINS + saturation) * VALUE_BINS + value
    counts = np.bincount(index.ravel(), minlength=HUE_BINS * SATURATION_BINS * VALUE_BINS)
    return np.sqrt(counts / counts.sum()).astype(np.float32)


def _image_statistics(pixels: np.ndarray, hsv: np.ndarray, aspect: float) -> np.ndarray:
    """Twelve global statistics, each mapped to roughly [-1, 1]."""
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    luma = 0.299 * red + 0.587 * green + 0.114 * blue
    saturation = hsv[..., 1] / 255.0
    value = hsv[..., 2] / 255.0
    laplacian = 4 * luma[1:-1, 1:-1] - luma[:-2, 1:-1] - luma[2:, 1:-1] - luma[1:-1, :-2] - luma[1:-1, 2:]
    red_green, yellow_blue = red - green, 0.5 * (red + green) - blue
    colourfulness = math.hypot(red_green.std(), yellow_blue.std()) + 0.3 * math.hypot(red_green.mean(), yellow_blue.mean())
    stats = [
        2 * luma.mean() - 1,  # brightness
        4 * luma.std() - 1,  # contrast
        2 * saturation.mean() - 1,
        4 * saturation.std() - 1,
        math.log1p(20 * np.abs(laplacian).mean()) - 1,  # sharpness: mean edge strength
        math.log1p(200 * laplacian.var()) - 1,  # sharpness: variance of the Laplacian
        2 * colourfulness - 1,
        float(np.clip(math.log(max(aspect, 1e-3)), -1.5, 1.5)),  # aspect ratio (log w/h)
        2 * (value < 0.15).mean() - 1,  # share of dark pixels
        2 * (value > 0.85).mean() - 1,  # share of bright pixels
        2 * (red - blue).mean(),  # warmth
        2 * (np.abs(np.diff(luma, axis=0)).mean() + np.abs(np.diff(luma, axis=1)).mean()) - 0.5,  # texture
    ]
    return np.asarray(stats, dtype=np.float32)


def _thumbnail_projection(work: Image.Image) -> np.ndarray:
    """A fixed random projection of an 8×8 colour thumbnail: the coarse layout of the picture."""
    thumb = np.asarray(work.resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX), dtype=np.float32) / 255.0
    return (thumb.reshape(-1) - 0.5) @ _THUMB_PROJECTION


def basic_image_vectors(paths: Sequence[str]) -> list[np.ndarray | str]:
    """Worker task: per path, its basic-image vector or the reason it could not be decoded."""
    results: list[np.ndarray | str] = []
    for path in paths:
        try:
            results.append(image_features(open_rgb(path, IMAGE_DRAFT_SIZE)))
        except Exception as error:  # noqa: BLE001 - any decoder error makes this one file bad, not the batch
            results.append(image_reason(error))
    return results


def _crashed_decoder(path: str) -> str:
    return "the image decoder crashed on this file"


class BasicImageEncoder:
    """basic-image-v1: no weights, no text tower; decoding and features run in a pool of workers.

    pool: "thread" by default: Pillow and numpy release the GIL for the heavy parts, so on idle cores threads
    match processes (~500 files/s on 2 cores, bench/embed.py) without extra processes, memory or start-up.
    "process" isolates crashing decoders (and held up better on a machine busy with other work); "inline"
    is for tests.
    """

    model_id = BASIC_IMAGE_MODEL_ID
    dim = BASIC_IMAGE_DIM
    has_text_tower = False

    def __init__(self, workers: int | None = None, pool: str = "thread") -> None:
        self._pool = WorkerPool(workers or default_workers(), pool)

    def encode_files(self, paths: Sequence[Path]) -> EncodeBatch:
        paths = [Path(path) for path in paths]
        tasks = chunks_of([str(path) for path in paths], IMAGE_FILES_PER_TASK)
        in_flight = self._pool.workers * TASKS_IN_FLIGHT_PER_WORKER
        results = [r for chunk in self._pool.ordered(basic_image_vectors, tasks, in_flight, _crashed_decoder) for r in chunk]
        return _collect(paths, results, self.dim)

    def encode_texts(self, texts: Sequence[str]) -> Vectors:
        raise NoTextTowerError(
            f"{self.model_id} describes colours and textures only and cannot embed text queries; "
            "download an image model (python -m anagnorisis models download images) for meaning search"
        )

    def encode_images(self, images: Sequence[Image.Image]) -> Vectors:
        """Vectors of already decoded pictures (video frames)."""
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([image_features(image) for image in images])

    def close(self) -> None:
        self._pool.close()


def _collect(paths: list[Path], results: Sequence[np.ndarray | str], dim: int) -> EncodeBatch:
    good_paths: list[Path] = []
    rows: list[np.ndarray] = []
    failures: list[EncodeFailure] = []
    for path, result in zip(paths, results):
        if isinstance(result, str):
            failures.append(EncodeFailure(path, result))
        else:
            good_paths.append(path)
            rows.append(result)
    log_failures(failures)
    vectors = np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), dtype=np.float32)
    return EncodeBatch(good_paths, vectors, failures)


# ---------------------------------------------------------------- audio

AUDIO_RATE = 22050  # Hz: plenty for timbre and rhythm statistics, half the work of 44.1 kHz
AUDIO_WINDOW_SECONDS = 30.0  # analysed stretches: long enough for a tempo, few enough to stay fast
AUDIO_MAX_WINDOWS = 3
FRAME = 2048  # samples per analysis frame (93 ms at 22.05 kHz)
HOP = 512  # samples between frames (23 ms), the usual onset-detection resolution
MEL_BANDS = 40
N_MFCC = 13
OCTAVE_EDGES_HZ = (0, 60, 120, 250, 500, 1000, 2000, 4000, 8000, 11025)
TEMPO_RANGE_BPM = (40.0, 240.0)
N_AUDIO_SCALARS = 14

BASIC_AUDIO_DIM = N_AUDIO_SCALARS + 2 * N_MFCC + (len(OCTAVE_EDGES_HZ) - 1)
# Relative weight of each block in the final vector.
SCALARS_WEIGHT, MFCC_WEIGHT, BANDS_WEIGHT = 1.0, 1.0, 1.0


def _mel_filterbank(rate: int, n_fft: int, bands: int) -> np.ndarray:
    """Triangular filters evenly spaced on the mel scale, shape (bands, n_fft // 2 + 1)."""

    def to_mel(hz: np.ndarray | float) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)

    def to_hz(mel: np.ndarray) -> np.ndarray:
        return 700.0 * (10 ** (mel / 2595.0) - 1.0)

    edges = to_hz(np.linspace(to_mel(20.0), to_mel(rate / 2), bands + 2))
    freqs = np.linspace(0, rate / 2, n_fft // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - lower) / np.maximum(centre - lower, 1e-9)
    falling = (upper - freqs) / np.maximum(upper - centre, 1e-9)
    return np.clip(np.minimum(rising, falling), 0, None).astype(np.float32)


_MEL = _mel_filterbank(AUDIO_RATE, FRAME, MEL_BANDS)
_FREQS = np.linspace(0, AUDIO_RATE / 2, FRAME // 2 + 1).astype(np.float32)
_WINDOW = np.hanning(FRAME).astype(np.float32)


def _power_spectrogram(samples: np.ndarray) -> np.ndarray:
    """|STFT|² of Hann-windowed frames, shape (frames, FRAME // 2 + 1); short clips are zero-padded to a frame."""
    if samples.size < FRAME:
        samples = np.pad(samples, (0, FRAME - samples.size))
    count = 1 + (samples.size - FRAME) // HOP
    frames = np.lib.stride_tricks.as_strided(
        samples, shape=(count, FRAME), strides=(samples.strides[0] * HOP, samples.strides[0])
    )
    return (np.abs(np.fft.rfft(frames * _WINDOW, axis=1)) ** 2).astype(np.float32)


def _tempo(onset: np.ndarray) -> tuple[float, float]:
    """(beats per minute, pulse clarity 0..1) from the autocorrelation of an onset-strength envelope."""
    frame_rate = AUDIO_RATE / HOP
    onset = onset - onset.mean()
    if onset.size < 8 or not np.any(onset):
        return 120.0, 0.0
    spectrum = np.fft.rfft(onset, n=2 * onset.size)
    autocorrelation = np.fft.irfft(np.abs(spectrum) ** 2)[: onset.size]
    lags = np.arange(onset.size)
    low = max(1, int(frame_rate * 60 / TEMPO_RANGE_BPM[1]))
    high = min(onset.size - 1, int(frame_rate * 60 / TEMPO_RANGE_BPM[0]))
    if high <= low:
        return 120.0, 0.0
    bpm = 60 * frame_rate / lags[low : high + 1]
    prior = np.exp(-0.5 * (np.log2(bpm / 120.0) / 1.0) ** 2)  # people tap near 120 BPM; octave errors cost less
    scores = autocorrelation[low : high + 1] * prior
    best = int(np.argmax(scores))
    clarity = float(np.clip(autocorrelation[low + best] / max(autocorrelation[0], 1e-12), 0, 1))
    return float(bpm[best]), clarity


def audio_features(samples: np.ndarray, sample_rate: int, duration: float | None = None) -> Vectors:
    """The basic-audio-v1 vector of mono samples (resampled to 22.05 kHz here), L2-normalised, float32."""
    from anagnorisis.embed.audio import to_rate

    samples = to_rate(np.asarray(samples, dtype=np.float32), sample_rate, AUDIO_RATE)
    duration = samples.size / AUDIO_RATE if duration is None else duration
    power = _power_spectrogram(samples)
    parts = (
        SCALARS_WEIGHT * _audio_scalars(samples, power, duration),
        MFCC_WEIGHT * _mfcc_statistics(power),
        BANDS_WEIGHT * _band_shares(power),
    )
    return l2_normalise(np.concatenate(parts))


def _audio_scalars(samples: np.ndarray, power: np.ndarray, duration: float) -> np.ndarray:
    """Loudness, spectral shape, zero crossings, tempo and duration, each mapped to roughly [-1, 1]."""
    energy = power.sum(axis=1) + 1e-10
    rms_db = 10 * np.log10(energy / (FRAME * (_WINDOW**2).sum() / 2) + 1e-10)
    centroid = (power * _FREQS).sum(axis=1) / energy
    cumulative = np.cumsum(power, axis=1)
    rolloff = _FREQS[np.minimum((cumulative < 0.85 * cumulative[:, -1:]).sum(axis=1), _FREQS.size - 1)]
    flatness = np.exp(np.log(power + 1e-10).mean(axis=1)) / (power.mean(axis=1) + 1e-10)
    zero_crossings = np.mean(np.abs(np.diff(np.signbit(samples).astype(np.int8)))) if samples.size > 1 else 0.0
    log_mel = np.log(_MEL @ power.T + 1e-10)
    onset = np.clip(np.diff(log_mel, axis=1), 0, None).mean(axis=0) if log_mel.shape[1] > 1 else np.zeros(1)
    bpm, clarity = _tempo(onset)
    log_centroid = np.log2(np.maximum(centroid, 20.0) / 1000.0)
    log_rolloff = np.log2(np.maximum(rolloff, 20.0) / 2000.0)
    scalars = [
        (rms_db.mean() + 30) / 30,  # loudness
        rms_db.std() / 10 - 1,  # dynamics
        (np.percentile(rms_db, 10) + 40) / 30,
        (np.percentile(rms_db, 90) + 20) / 30,
        log_centroid.mean() / 2,
        log_centroid.std() - 0.5,
        log_rolloff.mean() / 2,
        log_rolloff.std() - 0.5,
        2 * flatness.mean() - 1,
        4 * flatness.std() - 1,
        8 * zero_crossings - 1,
        float(np.log2(bpm / 120.0)),
        2 * clarity - 1,
        (math.log1p(max(duration, 0.0)) - math.log1p(180.0)) / 2,  # duration, 0 at three minutes
    ]
    return np.nan_to_num(np.asarray(scalars, dtype=np.float32), nan=0.0, posinf=1.0, neginf=-1.0)


def _mfcc_statistics(power: np.ndarray) -> np.ndarray:
    """Mean and spread over time of 13 cepstral coefficients of log mel energies (MFCC-style)."""
    from scipy.fft import dct

    log_mel = np.log(_MEL @ power.T + 1e-10)  # (bands, frames)
    cepstra = dct(log_mel, type=2, norm="ortho", axis=0)[:N_MFCC]
    means = cepstra.mean(axis=1)
    spreads = cepstra.std(axis=1)
    means[0] = (means[0] + 40.0) / 40.0  # c0 is overall log energy, far larger than the rest
    return np.concatenate([means / np.r_[1.0, np.full(N_MFCC - 1, 10.0)], spreads / 10.0]).astype(np.float32)


def _band_shares(power: np.ndarray) -> np.ndarray:
    """Share of energy in each octave band, square-rooted (Hellinger)."""
    total = power.sum(axis=0)
    edges = np.searchsorted(_FREQS, OCTAVE_EDGES_HZ)
    shares = np.array([total[a:b].sum() for a, b in zip(edges[:-1], edges[1:])], dtype=np.float64)
    return np.sqrt(shares / max(shares.sum(), 1e-12)).astype(np.float32)


def basic_audio_vectors(paths: Sequence[str]) -> list[np.ndarray | str]:
    """Worker task: per path, its basic-audio vector or the reason it could not be decoded."""
    from anagnorisis.embed.audio import audio_reason, read_windows

    results: list[np.ndarray | str] = []
    for path in paths:
        try:
            audio = read_windows(path, AUDIO_RATE, AUDIO_WINDOW_SECONDS, AUDIO_MAX_WINDOWS)
            results.append(audio_features(np.concatenate(audio.windows), AUDIO_RATE, audio.duration))
        except Exception as error:  # noqa: BLE001 - any decoder error makes this one file bad, not the batch
            results.append(audio_reason(error))
    return results


class BasicAudioEncoder:
    """basic-audio-v1: no weights, no text tower; files are decoded and analysed in a thread pool."""

    model_id = BASIC_AUDIO_MODEL_ID
    dim = BASIC_AUDIO_DIM
    has_text_tower = False

    def __init__(self, workers: int | None = None, pool: str = "thread") -> None:
        self._pool = WorkerPool(workers or default_workers(), pool)

    def encode_files(self, paths: Sequence[Path]) -> EncodeBatch:
        paths = [Path(path) for path in paths]
        tasks = chunks_of([str(path) for path in paths], 1)
        in_flight = self._pool.workers * TASKS_IN_FLIGHT_PER_WORKER
        results = [r for chunk in self._pool.ordered(basic_audio_vectors, tasks, in_flight, _crashed_audio) for r in chunk]
        return _collect(paths, results, self.dim)

    def encode_texts(self, texts: Sequence[str]) -> Vectors:
        raise NoTextTowerError(
            f"{self.model_id} describes loudness, timbre and tempo only and cannot embed text queries; "
            "download a music model (python -m anagnorisis models download music) for meaning search"
        )

    def close(self) -> None:
        self._pool.close()


def _crashed_audio(path: str) -> str:
    return "the audio decoder crashed on this file"
