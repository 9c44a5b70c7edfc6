"""Image-text encoders through transformers: SigLIP (default `google/siglip-base-patch16-224`), SigLIP 2, CLIP.

Files are decoded and resized by workers (JPEG DCT scaling, see imaging.py) with a bounded look-ahead, so the
model never waits for pixels; the main process only stacks uint8 pixels into a (pinned) buffer, copies them to
the device and normalises them there. Text queries go through the model's own tokenizer: SigLIP with
`padding="max_length", max_length=64`, as it was trained; CLIP with its default padding.

Imports torch, transformers, Pillow and numpy only (the GPU benchmark runs without duckdb, av or gradio).
"""
from __future__ import annotations

import functools
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from anagnorisis.embed.base import (
    EncodeBatch,
    EncodeFailure,
    ModelLoadError,
    Vectors,
    assert_plausible_tokenizer,
    l2_normalise,
    log_failures,
    merge_batches,
)
from anagnorisis.embed.catalog import DEFAULT_IMAGE_MODEL
from anagnorisis.embed.device import DeviceChoice, pick_device
from anagnorisis.embed.imaging import ImageGeometry, WorkerPool, chunks_of, decode_for_model, default_workers, fit_geometry

log = logging.getLogger(__name__)

SIGLIP_TYPES = ("siglip", "siglip2")
SIGLIP_TEXT_LENGTH = 64  # tokens: SigLIP's text tower was trained on exactly this padded length

# Images per forward pass: 256 saturates an H100/H200 with a base-size tower in half precision (STACK-NOTES);
# on the CPU a small batch keeps memory low and lets progress move.
CUDA_BATCH = 256
CPU_BATCH = 16
# Files per task handed to a decode worker: amortises inter-process hand-off (~0.1 ms) over several 5 ms decodes.
FILES_PER_TASK = 8
# Batches of decode tasks queued ahead of the model, in batches: while the model runs batch n and the pixels of
# n are copied, workers already decode n+1..n+3, so no worker idles; bounded, so memory stays at ~4 batches of
# pixels (4 × 256 × 150 KB ≈ 150 MB at 224 px) however long the file list is.
LOOKAHEAD_BATCHES = 3
# The `keep` geometry (processors without a fixed size, e.g. SigLIP 2 NaFlex) gets at most this many pixels per side.
KEEP_MAX_SIDE = 512


@dataclass
class _Loaded:
    model: Any
    processor: Any
    tokenizer: Any
    model_type: str
    geometry: ImageGeometry
    scale: torch.Tensor | None  # per channel: multiply uint8 pixels by this ...
    shift: torch.Tensor | None  # ... then add this, to get the processor's normalised input
    dim: int


def _size_field(size: Any, key: str) -> int | None:
    if size is None:
        return None
    value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
    return int(value) if value else None


def geometry_of(image_processor: Any) -> ImageGeometry:
    """How the processor sizes images: resize (SigLIP), shortest edge + centre crop (CLIP), or keep (others)."""
    resample = int(getattr(image_processor, "resample", None) or Image.Resampling.BICUBIC)
    size = getattr(image_processor, "size", None)
    crop = getattr(image_processor, "crop_size", None)
    shortest = _size_field(size, "shortest_edge")
    if getattr(image_processor, "do_center_crop", False) and shortest and _size_field(crop, "height"):
        return ImageGeometry("crop", _size_field(crop, "height") or 0, _size_field(crop, "width") or 0, shortest, resample)
    height, width = _size_field(size, "height"), _size_field(size, "width")
    fixed = height and width and getattr(image_processor, "do_resize", True) and not hasattr(image_processor, "max_num_patches")
    if fixed:
        return ImageGeometry("resize", height or 0, width or 0, 0, resample)
    return ImageGeometry("keep", KEEP_MAX_SIDE, KEEP_MAX_SIDE, 0, resample)


def _normaliser(image_processor: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    rescale = float(getattr(image_processor, "rescale_factor", 1 / 255)) if getattr(image_processor, "do_rescale", True) else 1.0
    if getattr(image_processor, "do_normalize", True):
        mean = np.asarray(getattr(image_processor, "image_mean", (0.5, 0.5, 0.5)), dtype=np.float32)
        std = np.asarray(getattr(image_processor, "image_std", (0.5, 0.5, 0.5)), dtype=np.float32)
    else:
        mean, std = np.zeros(3, np.float32), np.ones(3, np.float32)
    scale = torch.tensor(rescale / std, device=device).view(1, 3, 1, 1)
    shift = torch.tensor(-mean / std, device=device).view(1, 3, 1, 1)
    return scale, shift


def embedding_of(output: Any) -> torch.Tensor:
    """The projected embedding from get_*_features: a tensor (transformers 4) or `.pooler_output` (5)."""
    if isinstance(output, torch.Tensor):
        return output
    pooled = getattr(output, "pooler_output", None)
    if pooled is not None:
        return pooled
    for name in ("image_embeds", "text_embeds", "audio_embeds"):
        if getattr(output, name, None) is not None:
            return getattr(output, name)
    raise TypeError(f"cannot find the embedding in a {type(output).__name__}")


def _crashed(path: str) -> str:
    return "the image decoder crashed on this file"


class SiglipEncoder:
    """An image encoder with a text tower (SigLIP, SigLIP 2 or CLIP), loaded lazily on first use.

    model: the id vectors are stored under (a hub id, or a folder); path: where to load it from when that is
    not `model` itself (a snapshot in the HF cache). Constructor arguments default to the settings' values
    and can be overridden by tests.
    """

    has_text_tower = True

    def __init__(
        self,
        model: str = DEFAULT_IMAGE_MODEL,
        *,
        path: Path | str | None = None,
        device: str | DeviceChoice = "auto",
        batch_size: int | None = None,
        workers: int | None = None,
        pool: str | None = None,
        kind: str = "images",
    ) -> None:
        self.model_id = str(model)
        self.kind = kind
        self._source = str(path) if path is not None else self.model_id
        self._choice = device if isinstance(device, DeviceChoice) else pick_device(device)
        self.batch_size = batch_size or (CUDA_BATCH if self._choice.is_cuda else CPU_BATCH)
        # With a GPU, decoding is the bottleneck: every core decodes in its own process. On the CPU the model
        # is, and threads (no start-up, no copies) keep a core or two decoding beside it.
        pool = pool or ("process" if self._choice.is_cuda else "thread")
        self._pool = WorkerPool(workers or (default_workers() if pool == "process" else 2), pool)
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()
        self._staging: torch.Tensor | None = None

    # ------------------------------------------------------------ loading

    @property
    def device(self) -> DeviceChoice:
        return self._choice

    @property
    def dim(self) -> int:
        return self._load().dim

    def load(self) -> "SiglipEncoder":
        """Load now (otherwise the first encode does); raises ModelLoadError with the repair command."""
        self._load()
        return self

    def _load(self) -> _Loaded:
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load_unlocked()
            return self._loaded

    def _load_unlocked(self) -> _Loaded:
        from transformers import AutoModel, AutoProcessor

        repair = f"python -m anagnorisis models download {self.kind} --force"
        try:
            processor = AutoProcessor.from_pretrained(self._source)
            model = AutoModel.from_pretrained(self._source, dtype=self._choice.dtype)
        except Exception as error:  # noqa: BLE001 - any loading failure is reported the same way
            raise ModelLoadError(f"cannot load image model {self.model_id} from {self._source}: {error}; repair with: {repair}") from error
        if not hasattr(model, "get_image_features"):
            raise ModelLoadError(f"{self.model_id} ({type(model).__name__}) is not an image-text model such as SigLIP or CLIP")
        tokenizer = getattr(processor, "tokenizer", None)
        text_config = getattr(model.config, "text_config", None)
        assert_plausible_tokenizer(tokenizer, getattr(text_config, "vocab_size", None), self.model_id, repair)
        model = model.to(self._choice.device).eval()
        image_processor = processor.image_processor
        geometry = geometry_of(image_processor)
        scale, shift = _normaliser(image_processor, self._choice.device) if geometry.mode != "keep" else (None, None)
        dim = self._probe_dim(model, image_processor, geometry)
        log.info("loaded %s on %s", self.model_id, self._choice.describe())
        return _Loaded(model, processor, tokenizer, model.config.model_type, geometry, scale, shift, dim)

    def _probe_dim(self, model: Any, image_processor: Any, geometry: ImageGeometry) -> int:
        config = model.config
        projection = getattr(config, "projection_dim", None)
        if projection and config.model_type not in SIGLIP_TYPES:
            return int(projection)
        vision = getattr(config, "vision_config", None)
        if vision is not None and config.model_type in SIGLIP_TYPES:
            return int(vision.hidden_size)
        side = geometry.height or 224
        probe = np.zeros((1, side, side, 3), dtype=np.uint8)
        return int(self._forward_generic(model, image_processor, [probe[0]]).shape[1])

    # ------------------------------------------------------------ images

    def encode_files(self, paths: Sequence[Path]) -> EncodeBatch:
        return merge_batches(self.iter_encode_files(paths), self.dim)

    def iter_encode_files(self, paths: Sequence[Path]) -> Iterator[EncodeBatch]:
        """One EncodeBatch per model batch, while workers keep decoding the next ones."""
        loaded = self._load()
        paths = [Path(path) for path in paths]
        decode = functools.partial(decode_for_model, geometry=loaded.geometry)
        tasks = chunks_of([str(path) for path in paths], FILES_PER_TASK)
        in_flight = LOOKAHEAD_BATCHES * math.ceil(self.batch_size / FILES_PER_TASK)
        results = (r for chunk in self._pool.ordered(decode, tasks, in_flight, _crashed) for r in chunk)
        good_paths: list[Path] = []
        pixels: list[np.ndarray] = []
        failures: list[EncodeFailure] = []
        for path, result in zip(paths, results):
            if isinstance(result, str):
                failures.append(EncodeFailure(path, result))
            else:
                good_paths.append(path)
                pixels.append(result)
            if len(pixels) >= self.batch_size:
                yield self._batch(good_paths, pixels, failures)
                good_paths, pixels, failures = [], [], []
        if pixels or failures:
            yield self._batch(good_paths, pixels, failures)

    def _batch(self, paths: list[Path], pixels: list[np.ndarray], failures: list[EncodeFailure]) -> EncodeBatch:
        log_failures(failures)
        vectors = self._embed_pixels(pixels) if pixels else np.zeros((0, self.dim), dtype=np.float32)
        return EncodeBatch(paths, vectors, failures)

    def encode_images(self, images: Sequence[Image.Image]) -> Vectors:
        """Vectors of pictures already decoded (video frames), resized here as the workers would."""
        loaded = self._load()
        if not images:
            return np.zeros((0, loaded.dim), dtype=np.float32)
        pixels = [np.asarray(fit_geometry(image.convert("RGB"), loaded.geometry), dtype=np.uint8) for image in images]
        return np.concatenate([self._embed_pixels(pixels[i : i + self.batch_size]) for i in range(0, len(pixels), self.batch_size)])

    def _embed_pixels(self, pixels: list[np.ndarray]) -> Vectors:
        loaded = self._load()
        if loaded.geometry.mode == "keep":
            return self._forward_generic(loaded.model, loaded.processor.image_processor, pixels)
        batch = self._to_device(pixels)
        with torch.inference_mode():
            values = (batch.permute(0, 3, 1, 2).float() * loaded.scale + loaded.shift).to(self._choice.dtype)
            embedding = embedding_of(loaded.model.get_image_features(pixel_values=values))
            embedding = torch.nn.functional.normalize(embedding.float(), dim=-1)
        return embedding.cpu().numpy().astype(np.float32, copy=False)

    def _to_device(self, pixels: list[np.ndarray]) -> torch.Tensor:
        """uint8 (n, H, W, 3) on the device; on CUDA staged through a reused pinned buffer, copied asynchronously."""
        count = len(pixels)
        if not self._choice.is_cuda:
            return torch.from_numpy(np.stack(pixels))
        shape = (max(count, self.batch_size), *pixels[0].shape)
        if self._staging is None or tuple(self._staging.shape) != shape:
            self._staging = torch.empty(shape, dtype=torch.uint8).pin_memory()
        np.stack(pixels, out=self._staging.numpy()[:count])
        # The previous batch's copy out of this buffer has finished: its result was read back before we got here.
        return self._staging[:count].to(self._choice.device, non_blocking=True)

    def _forward_generic(self, model: Any, image_processor: Any, pixels: list[np.ndarray]) -> Vectors:
        inputs = image_processor(images=list(pixels), return_tensors="pt")
        inputs = {
            key: value.to(self._choice.device, dtype=self._choice.dtype if value.is_floating_point() else None)
            for key, value in inputs.items()
        }
        with torch.inference_mode():
            embedding = embedding_of(model.get_image_features(**inputs))
            embedding = torch.nn.functional.normalize(embedding.float(), dim=-1)
        return embedding.cpu().numpy().astype(np.float32, copy=False)

    # ------------------------------------------------------------ text

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Token ids as the model was trained on: SigLIP padded to 64 tokens, CLIP to the longest query."""
        loaded = self._load()
        texts = list(texts)
        if loaded.model_type in SIGLIP_TYPES:
            if loaded.model_type == "siglip2":
                texts = [text.lower() for text in texts]  # SigLIP 2 was trained on lower-cased captions
            return loaded.tokenizer(texts, padding="max_length", max_length=SIGLIP_TEXT_LENGTH, truncation=True, return_tensors="pt")
        return loaded.tokenizer(texts, padding=True, truncation=True, return_tensors="pt")

    def encode_texts(self, texts: Sequence[str]) -> Vectors:
        loaded = self._load()
        if not texts:
            return np.zeros((0, loaded.dim), dtype=np.float32)
        # Tokenizers return an attention mask only where the model was trained with one (SigLIP's is not: it
        # attends to its padding), so everything they return is passed on.
        tokens = self.tokenize(texts)
        names = ("input_ids", "attention_mask", "position_ids")
        inputs = {key: value.to(self._choice.device) for key, value in tokens.items() if key in names}
        with torch.inference_mode():
            embedding = embedding_of(loaded.model.get_text_features(**inputs)).float()
        return l2_normalise(embedding.cpu().numpy())

    def warm_up(self) -> None:
        """Load the model and start the decode workers now, so the first batch does not pay for either."""
        self._load()
        self._pool.warm_up()

    def close(self) -> None:
        self._pool.close()
