"""Music/audio encoder: transformers `ClapModel` (default `laion/clap-htsat-fused`), mono 48 kHz.

Each track gives up to five windows of the model's length (10 s) spread over it, the same windows every time;
the window embeddings are averaged and normalised. The feature mode follows
`config.audio_config.enable_fusion`: fused checkpoints get `truncation="fusion"` features (4 channels),
unfused ones single-channel `rand_trunc` features. Every window is at most the model's length, so neither mode
crops at random, and the fused model's `is_longer` flag is set to False for every window (the feature
extractor would otherwise raise it on one window chosen at random).
The feature extractor is called directly: `ClapProcessor` forwards the tokenizer's max_length to it.
"""
from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from anagnorisis.embed.base import (
    kind_served_by,
    EncodeBatch,
    EncodeFailure,
    ModelLoadError,
    Vectors,
    assert_plausible_tokenizer,
    l2_normalise,
    log_failures,
    merge_batches,
)
from anagnorisis.embed.catalog import DEFAULT_AUDIO_MODEL
from anagnorisis.embed.device import DeviceChoice, pick_device
from anagnorisis.embed.imaging import WorkerPool, chunks_of, default_workers
from anagnorisis.embed.siglip import embedding_of

log = logging.getLogger(__name__)

MAX_WINDOWS = 5  # windows per track: enough to hear intro, body and ending; each costs one forward pass
# Windows per forward pass: 256 keeps a GPU busy (STACK-NOTES: 5,400 windows/s); 8 bounds CPU memory.
CUDA_BATCH = 256
CPU_BATCH = 8
# Tracks decoded ahead of the model, per worker: decoding and mel features take longer than the forward
# pass on a GPU, so a couple queued per worker keeps all of them busy without holding many tracks in memory.
TRACKS_IN_FLIGHT_PER_WORKER = 2


@dataclass
class _Loaded:
    model: Any
    feature_extractor: Any
    tokenizer: Any
    fused: bool
    dim: int


def clap_features(paths: Sequence[str], feature_extractor: Any, fused: bool, max_windows: int) -> list[np.ndarray | str]:
    """Worker task: per path, the feature-extractor input of its windows (windows, channels, frames, mels),
    or the reason it could not be decoded."""
    from anagnorisis.embed.audio import audio_reason, read_windows

    rate = int(feature_extractor.sampling_rate)
    length = int(feature_extractor.nb_max_samples)
    results: list[np.ndarray | str] = []
    for path in paths:
        try:
            audio = read_windows(path, rate, length / rate, max_windows)
            windows = [window[:length].astype(np.float64) for window in audio.windows]
            features = feature_extractor(
                windows, sampling_rate=rate, truncation="fusion" if fused else "rand_trunc", padding="repeatpad",
                return_tensors="np",
            )["input_features"]
            results.append(np.asarray(features, dtype=np.float32))
        except Exception as error:  # noqa: BLE001 - any decoder error makes this one file bad, not the batch
            results.append(audio_reason(error))
    return results


def _crashed(path: str) -> str:
    return "the audio decoder crashed on this file"


class ClapEncoder:
    """Audio encoder with a text tower, loaded lazily on first use (see the module docstring)."""

    has_text_tower = True

    def __init__(
        self,
        model: str = DEFAULT_AUDIO_MODEL,
        *,
        path: Path | str | None = None,
        device: str | DeviceChoice = "auto",
        batch_size: int | None = None,
        workers: int | None = None,
        pool: str = "thread",
        max_windows: int = MAX_WINDOWS,
        kind: str | None = None,
    ) -> None:
        self.model_id = str(model)
        self.kind = kind or kind_served_by("clap")
        self.max_windows = max_windows
        self._source = str(path) if path is not None else self.model_id
        self._choice = device if isinstance(device, DeviceChoice) else pick_device(device)
        self.batch_size = batch_size or (CUDA_BATCH if self._choice.is_cuda else CPU_BATCH)
        # Decoding and mel features are numpy/libsndfile work that releases the GIL: threads suffice.
        self._pool = WorkerPool(workers or default_workers(), pool)
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self._load().dim

    def load(self) -> "ClapEncoder":
        self._load()
        return self

    def _load(self) -> _Loaded:
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load_unlocked()
            return self._loaded

    def _load_unlocked(self) -> _Loaded:
        from transformers import AutoProcessor, ClapModel

        repair = f"python -m anagnorisis models download {self.kind} --force"
        try:
            processor = AutoProcessor.from_pretrained(self._source)
            model = ClapModel.from_pretrained(self._source, dtype=self._choice.dtype)
        except Exception as error:  # noqa: BLE001 - any loading failure is reported the same way
            raise ModelLoadError(f"cannot load audio model {self.model_id} from {self._source}: {error}; repair with: {repair}") from error
        tokenizer = getattr(processor, "tokenizer", None)
        config: Any = model.config
        assert_plausible_tokenizer(tokenizer, config.text_config.vocab_size, self.model_id, repair)
        model = model.to(self._choice.device).eval()  # type: ignore[arg-type]
        fused = bool(model.config.audio_config.enable_fusion)
        log.info("loaded %s (%s) on %s", self.model_id, "fused" if fused else "unfused", self._choice.describe())
        return _Loaded(model, processor.feature_extractor, tokenizer, fused, int(model.config.projection_dim))

    # ------------------------------------------------------------ audio

    def encode_files(self, paths: Sequence[Path]) -> EncodeBatch:
        return merge_batches(self.iter_encode_files(paths), self.dim)

    def iter_encode_files(self, paths: Sequence[Path]) -> Iterator[EncodeBatch]:
        """One EncodeBatch per forward pass of about `batch_size` windows."""
        loaded = self._load()
        paths = [Path(path) for path in paths]
        task = functools.partial(
            clap_features, feature_extractor=loaded.feature_extractor, fused=loaded.fused, max_windows=self.max_windows
        )
        in_flight = self._pool.workers * TRACKS_IN_FLIGHT_PER_WORKER
        results = (r for chunk in self._pool.ordered(task, chunks_of([str(p) for p in paths], 1), in_flight, _crashed) for r in chunk)
        good: list[Path] = []
        features: list[np.ndarray] = []
        failures: list[EncodeFailure] = []
        for path, result in zip(paths, results):
            if isinstance(result, str):
                failures.append(EncodeFailure(path, result))
            else:
                good.append(path)
                features.append(result)
            if sum(len(f) for f in features) >= self.batch_size:
                yield self._batch(good, features, failures)
                good, features, failures = [], [], []
        if features or failures:
            yield self._batch(good, features, failures)

    def _batch(self, paths: list[Path], features: list[np.ndarray], failures: list[EncodeFailure]) -> EncodeBatch:
        log_failures(failures)
        if not features:
            return EncodeBatch([], np.zeros((0, self.dim), dtype=np.float32), failures)
        windows = self._embed_windows(np.concatenate(features))
        bounds = np.cumsum([0] + [len(f) for f in features])
        tracks = np.stack([windows[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])])
        return EncodeBatch(paths, l2_normalise(tracks), failures)

    def _embed_windows(self, features: np.ndarray) -> Vectors:
        """Normalised embeddings of windows, forward passes of at most `batch_size`."""
        loaded = self._load()
        rows = []
        for start in range(0, len(features), self.batch_size):
            part = torch.from_numpy(features[start : start + self.batch_size])
            inputs: dict[str, torch.Tensor] = {"input_features": part.to(self._choice.device, self._choice.dtype)}
            if loaded.fused:
                inputs["is_longer"] = torch.zeros((len(part), 1), dtype=torch.bool, device=self._choice.device)
            with torch.inference_mode():
                embedding = embedding_of(loaded.model.get_audio_features(**inputs)).float()
            rows.append(l2_normalise(embedding.cpu().numpy()))
        return np.concatenate(rows)

    # ------------------------------------------------------------ text

    def encode_texts(self, texts: Sequence[str]) -> Vectors:
        loaded = self._load()
        if not texts:
            return np.zeros((0, loaded.dim), dtype=np.float32)
        tokens = loaded.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
        names = ("input_ids", "attention_mask")
        inputs = {key: value.to(self._choice.device) for key, value in tokens.items() if key in names}
        with torch.inference_mode():
            embedding = embedding_of(loaded.model.get_text_features(**inputs)).float()
        return l2_normalise(embedding.cpu().numpy())

    def warm_up(self) -> None:
        self._load()
        self._pool.warm_up()

    def close(self) -> None:
        self._pool.close()
