"""Image-text encoders through transformers: SigLIP (default `google/siglip-base-patch16-224`), SigLIP 2, CLIP.

Files are decoded and resized by workers (JPEG DCT scaling, see imaging.py) with a bounded look-ahead, so the
model never waits for pixels; the main process only stacks uint8 pixels into a (pinned) buffer, copies them to
the device and normalises them there. Text queries go through the model's own tokenizer: SigLIP with
`padding="max_length", max_length=64`, as it was trained; CLIP with its default padding.

Imports torch, transformers, Pillow and numpy only (the GPU benchmark runs without duckdb, av or gradio).
"""
from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from anagnorisis.embed.base import (
    kind_served_by,
    EncodeBatch,
    EncodeFailure,
    ModelLoadError,
    NoTextTowerError,
    Vectors,
    assert_plausible_tokenizer,
    describe_error,
    l2_normalise,
    log_failures,
    merge_batches,
)
from anagnorisis.embed.catalog import DEFAULT_IMAGE_MODEL
from anagnorisis.embed.device import DeviceChoice, pick_device
from anagnorisis.embed.imaging import ImageGeometry, WorkerPool, decoded_images, default_workers, fit_geometry

log = logging.getLogger(__name__)

SIGLIP_TYPES = ("siglip", "siglip2")
SIGLIP_TEXT_LENGTH = 64  # tokens: SigLIP's text tower was trained on exactly this padded length

# Images per forward pass: 256 saturates an H100/H200 with a base-size tower in half precision (STACK-NOTES);
# on the CPU a small batch keeps memory low and lets progress move.
CUDA_BATCH = 256
CPU_BATCH = 16
# Files per task handed to a decode worker: each hand-off needs the parent's result thread, which competes for
# the GIL with the model's Python code; 16 decodes (~100 ms) per task keep 16 workers fed with few hand-offs,
# and a batch of 256 is still 16 tasks spread over all workers. (Measured on 16 cores: 8 or 16 equal within noise.)
FILES_PER_TASK = 16
# Decode work ahead of the model, in batches: while the model runs batch n, workers decode n+1..n+4, and the
# window is twice what 16 workers hold at once (2 tasks each), so one slow task at its head never leaves the
# others idle; bounded, so shared memory stays at 4 batches of pixels (4 × 256 × 150 KB ≈ 150 MB at 224 px)
# however long the file list is.
LOOKAHEAD_BATCHES = 4
# The `keep` geometry (processors without a fixed size, e.g. SigLIP 2 NaFlex) gets at most this many pixels per side.
KEEP_MAX_SIDE = 512


@dataclass
class _Loaded:
    model: Any
    image_processor: Any
    tokenizer: Any  # None when it could not be loaded: text_problem says why
    text_problem: str | None
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


class _Staged:
    """The batch being assembled: paths, failures, and pixels already in one of the encoder's two staging
    buffers (or, for processors without a fixed size, in a list)."""

    def __init__(self, encoder: "SiglipEncoder", geometry: ImageGeometry) -> None:
        self.encoder = encoder
        self.geometry = geometry
        self.fixed = geometry.mode != "keep"
        self.slot = 0  # which staging buffer
        self.buffer = encoder._staging_buffer(geometry, self.slot).numpy() if self.fixed else None
        self.paths: list[Path] = []
        self.failures: list[EncodeFailure] = []
        self.pictures: list[np.ndarray] = []

    @property
    def count(self) -> int:
        return len(self.paths)

    def add(self, path: Path, pixels: np.ndarray) -> None:
        if self.buffer is not None:
            self.buffer[self.count] = pixels
        else:
            self.pictures.append(np.array(pixels))
        self.paths.append(path)

    def launch(self) -> "_Launched":
        """Start embedding this batch (asynchronously on CUDA) and move on to the other staging buffer."""
        if self.fixed and self.count:
            launched = self.encoder._launch(self.slot, self.count, self.paths, self.failures)
        else:
            loaded = self.encoder._load()
            vectors = (self.encoder._forward_generic(loaded.model, loaded.image_processor, self.pictures) if self.count
                       else np.zeros((0, loaded.dim), dtype=np.float32))
            launched = _Launched(self.paths, self.failures, torch.from_numpy(vectors), None)
        self.paths, self.failures, self.pictures = [], [], []
        if self.fixed:
            self.slot = 1 - self.slot
            self.buffer = self.encoder._staging_buffer(self.geometry, self.slot).numpy()
        return launched


@dataclass
class _Launched:
    """A batch on its way through the model: its vectors are ready once `done` (a CUDA event) has happened."""

    paths: list[Path]
    failures: list[EncodeFailure]
    output: torch.Tensor  # (n, dim) float32 on the CPU (pinned on CUDA, filled by an asynchronous copy)
    done: Any

    def finish(self) -> EncodeBatch:
        if self.done is not None:
            self.done.synchronize()  # a blocking-sync event: sleeps, does not spin a core the decoders need
        return EncodeBatch(self.paths, self.output.numpy().copy(), self.failures)


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
        files_per_task: int = FILES_PER_TASK,
        kind: str | None = None,
    ) -> None:
        self.model_id = str(model)
        self.files_per_task = max(1, files_per_task)
        self.kind = kind or kind_served_by("siglip")
        self._source = str(path) if path is not None else self.model_id
        self._choice = device if isinstance(device, DeviceChoice) else pick_device(device)
        self.batch_size = batch_size or (CUDA_BATCH if self._choice.is_cuda else CPU_BATCH)
        # With a GPU, decoding is the bottleneck: every core decodes in its own process. On the CPU the model
        # is, and threads (no start-up, no copies) keep a core or two decoding beside it.
        pool = pool or ("process" if self._choice.is_cuda else "thread")
        self._pool = WorkerPool(workers or (default_workers() if pool == "process" else 2), pool)
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()
        self._staging: list[torch.Tensor] = []  # two pinned (batch, H, W, 3) uint8 buffers, used in turn
        self.stats: dict[str, float] = {}  # of the last run: seconds waiting for decoders, seconds in the model

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
        from transformers import AutoModel

        repair = f"python -m anagnorisis models download {self.kind} --force"
        try:
            model = AutoModel.from_pretrained(self._source, dtype=self._choice.dtype)
        except Exception as error:  # noqa: BLE001 - any loading failure is reported the same way
            raise ModelLoadError(f"cannot load image model {self.model_id} from {self._source}: {error}; repair with: {repair}") from error
        if not hasattr(model, "get_image_features"):
            raise ModelLoadError(f"{self.model_id} ({type(model).__name__}) is not an image-text model such as SigLIP or CLIP")
        image_processor, tokenizer, text_problem = self._load_processors(repair)
        if tokenizer is not None:
            text_config = getattr(model.config, "text_config", None)
            assert_plausible_tokenizer(tokenizer, getattr(text_config, "vocab_size", None), self.model_id, repair)
        model = model.to(self._choice.device).eval()
        geometry = geometry_of(image_processor)
        scale, shift = _normaliser(image_processor, self._choice.device) if geometry.mode != "keep" else (None, None)
        dim = self._probe_dim(model, image_processor, geometry)
        log.info("loaded %s on %s", self.model_id, self._choice.describe())
        return _Loaded(model, image_processor, tokenizer, text_problem, model.config.model_type, geometry, scale, shift, dim)

    def _load_processors(self, repair: str) -> tuple[Any, Any, str | None]:
        """(image processor, tokenizer or None, why there is no tokenizer). A tokenizer whose library is missing
        (SigLIP's SentencePiece) costs text search only; images still embed."""
        from transformers import AutoImageProcessor, AutoProcessor

        try:
            processor = AutoProcessor.from_pretrained(self._source)
            return processor.image_processor, getattr(processor, "tokenizer", None), None
        except Exception as error:  # noqa: BLE001 - retried below without the tokenizer
            text_error = error
        try:
            image_processor = AutoImageProcessor.from_pretrained(self._source)
        except Exception as error:  # noqa: BLE001 - any loading failure is reported the same way
            raise ModelLoadError(f"cannot load the image processor of {self.model_id}: {error}; repair with: {repair}") from error
        problem = (
            f"the text tokenizer of {self.model_id} cannot be loaded ({describe_error(text_error)}); images still embed, "
            "text search needs it: pip install sentencepiece protobuf (SigLIP), or repair with: " + repair
        )
        log.warning("%s", problem)
        return image_processor, None, problem

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
        """One EncodeBatch per model batch, while workers keep decoding the next ones.

        Each decoded picture is copied at once into a staging buffer (pinned memory on CUDA): workers hand
        pixels over through shared memory, and a full batch goes to the GPU asynchronously while the next one
        fills the other buffer; its vectors are read back only when that next batch is full, by which time the
        GPU has long finished, so the parent never spins waiting for it. One run at a time per encoder.
        """
        loaded = self._load()
        paths = [Path(path) for path in paths]
        in_flight = LOOKAHEAD_BATCHES * math.ceil(self.batch_size / self.files_per_task)
        decoded = decoded_images(self._pool, paths, loaded.geometry, self.files_per_task, in_flight)
        self.stats = {"waiting_for_decode_s": 0.0, "model_s": 0.0}
        staged = _Staged(self, loaded.geometry)
        previous: _Launched | None = None
        try:
            for path, result in self._timed(decoded):
                if isinstance(result, str):
                    staged.failures.append(EncodeFailure(path, result))
                    continue
                staged.add(path, result)
                if staged.count >= self.batch_size:
                    launched = self._timed_launch(staged)
                    if previous is not None:
                        yield self._timed_finish(previous)
                    previous = launched
            if staged.count or staged.failures:
                launched = self._timed_launch(staged)
                if previous is not None:
                    yield self._timed_finish(previous)
                previous = launched
            if previous is not None:
                yield self._timed_finish(previous)
        finally:
            decoded.close()  # cancels decodes queued for batches nobody will take

    def _timed(self, decoded: Iterator[tuple[Path, np.ndarray | str]]) -> Iterator[tuple[Path, np.ndarray | str]]:
        """The decoded files, adding the time spent waiting for workers to `stats` (where the pipeline stalls)."""
        while True:
            started = time.perf_counter()
            item = next(decoded, None)
            self.stats["waiting_for_decode_s"] += time.perf_counter() - started
            if item is None:
                return
            yield item

    def _timed_launch(self, staged: _Staged) -> _Launched:
        started = time.perf_counter()
        launched = staged.launch()
        self.stats["model_s"] += time.perf_counter() - started
        return launched

    def _timed_finish(self, launched: _Launched) -> EncodeBatch:
        started = time.perf_counter()
        batch = launched.finish()
        log_failures(batch.failures)
        self.stats["model_s"] += time.perf_counter() - started
        return batch

    def encode_images(self, images: Sequence[Image.Image]) -> Vectors:
        """Vectors of pictures already decoded (video frames), resized here as the workers would."""
        loaded = self._load()
        if not images:
            return np.zeros((0, loaded.dim), dtype=np.float32)
        pixels = [np.asarray(fit_geometry(image.convert("RGB"), loaded.geometry), dtype=np.uint8) for image in images]
        if loaded.geometry.mode == "keep":
            return self._forward_generic(loaded.model, loaded.image_processor, pixels)
        rows = []
        staged = _Staged(self, loaded.geometry)
        for start in range(0, len(pixels), self.batch_size):
            for index, picture in enumerate(pixels[start : start + self.batch_size]):
                staged.add(Path(str(index)), picture)
            rows.append(staged.launch().finish().vectors)
        return np.concatenate(rows)

    def _staging_buffer(self, geometry: ImageGeometry, slot: int) -> torch.Tensor:
        """One of two uint8 (batch, H, W, 3) buffers used in turn; pinned on CUDA so copies to the GPU are
        asynchronous. A buffer is refilled only after the batch launched from it was read back."""
        shape = (self.batch_size, geometry.height, geometry.width, 3)
        if len(self._staging) != 2 or tuple(self._staging[0].shape) != shape:
            buffers = [torch.empty(shape, dtype=torch.uint8) for _ in range(2)]
            self._staging = [buffer.pin_memory() for buffer in buffers] if self._choice.is_cuda else buffers
        return self._staging[slot]

    def _launch(self, slot: int, count: int, paths: list[Path], failures: list[EncodeFailure]) -> _Launched:
        """Queue the embedding of the first `count` pictures of a staging buffer; on CUDA nothing waits here."""
        loaded = self._load()
        assert loaded.scale is not None and loaded.shift is not None
        batch = self._staging[slot][:count].to(self._choice.device, non_blocking=True)
        with torch.inference_mode():
            values = (batch.permute(0, 3, 1, 2).float() * loaded.scale + loaded.shift).to(self._choice.dtype)
            embedding = embedding_of(loaded.model.get_image_features(pixel_values=values))
            embedding = torch.nn.functional.normalize(embedding.float(), dim=-1)
            if not self._choice.is_cuda:
                return _Launched(paths, failures, embedding, None)
            output = torch.empty(embedding.shape, dtype=torch.float32, pin_memory=True)
            output.copy_(embedding, non_blocking=True)
        done = torch.cuda.Event(blocking=True)
        done.record()
        return _Launched(paths, failures, output, done)

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
        if loaded.tokenizer is None:
            raise NoTextTowerError(loaded.text_problem or f"{self.model_id} has no tokenizer")
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
