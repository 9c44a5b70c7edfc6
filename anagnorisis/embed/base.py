"""The one small interface every encoder offers: files (or texts) in, L2-normalised float32 vectors out.

Only numpy at import time: the GPU benchmark imports this module on a machine without duckdb, av or gradio.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generator, Iterable, Iterator, Protocol, Sequence, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]

# SPEC §2: a file's score for a query is m + log(mean(exp(16 (s − m)))) / 16 over its chunk scores s, m = max(s).
# Here (numpy only) so that the search, which must not import torch, scores with the same constant.
SMOOTH_MAX_SHARPNESS = 16.0

log = logging.getLogger(__name__)

T = TypeVar("T")


class EncoderError(RuntimeError):
    """Base of the errors an encoder raises on purpose; the message is meant for the user."""


class NoTextTowerError(EncoderError):
    """The encoder embeds files only (the basic-feature fallbacks): text queries cannot be embedded."""


class ModelLoadError(EncoderError):
    """A model folder that is missing, truncated or has a near-empty tokenizer; the message names the repair."""


@dataclass(frozen=True)
class EncodeFailure:
    """A file that could not be embedded, and why (shown as `skipping <path>: <reason>`)."""

    path: Path
    reason: str


@dataclass(frozen=True)
class FileChunks:
    """The passages a file's vector averages: character spans into the text as read, and one vector per span."""

    spans: list[tuple[int, int]]
    vectors: Vectors


@dataclass
class EncodeBatch:
    """Vectors for the files that worked (row i belongs to paths[i]) plus one failure per file that did not.

    Encoders that cut files into passages (the text encoder) also give each good file's chunk vectors
    (chunks[i] belongs to paths[i]); the others leave ``chunks`` None.
    """

    paths: list[Path]
    vectors: Vectors
    failures: list[EncodeFailure] = field(default_factory=list)
    chunks: list[FileChunks] | None = None

    @classmethod
    def empty(cls, dim: int, failures: Iterable[EncodeFailure] = ()) -> "EncodeBatch":
        return cls([], np.zeros((0, dim), dtype=np.float32), list(failures))

    def __len__(self) -> int:
        return len(self.paths)


@runtime_checkable
class Encoder(Protocol):
    """What scan/embed/search/train need from a model; `model_id` keys the stored vectors."""

    @property
    def model_id(self) -> str:
        """Keys the stored vectors: vectors of two model ids never meet in one search or training set."""
        ...

    @property
    def dim(self) -> int:
        ...

    @property
    def has_text_tower(self) -> bool:
        ...

    def encode_files(self, paths: Sequence[Path]) -> EncodeBatch:
        """Vectors of the good files; a bad file becomes a failure with a reason and the batch goes on."""
        ...

    def encode_texts(self, texts: Sequence[str]) -> Vectors:
        """Query vectors in the same space as the file vectors; raises NoTextTowerError without a text tower."""
        ...


def l2_normalise(matrix: np.ndarray) -> Vectors:
    """Rows scaled to unit length (a zero row stays zero instead of becoming NaN), as contiguous float32."""
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim == 1:
        return l2_normalise(matrix[None, :])[0]
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.ascontiguousarray(matrix / np.maximum(norms, 1e-12), dtype=np.float32)


# A real text tower's vocabulary has tens of thousands of entries; a tokenizer loaded from an incomplete folder
# can come back with little more than its special tokens, and without raising (STACK-NOTES).
PLAUSIBLE_VOCABULARY = 1000


def assert_plausible_tokenizer(tokenizer: object, expected_size: int | None, model_id: str, repair: str) -> None:
    """Raise ModelLoadError when a tokenizer is missing or nearly empty, instead of silently embedding garbage.

    The bar is 1,000 entries, or half the model's own vocabulary size when that is smaller (tiny test models).
    """
    if tokenizer is None:
        raise ModelLoadError(f"model {model_id} has no tokenizer; repair with: {repair}")
    size = len(tokenizer)  # type: ignore[arg-type]
    needed = PLAUSIBLE_VOCABULARY if not expected_size else min(PLAUSIBLE_VOCABULARY, max(2, expected_size // 2))
    if size < needed:
        raise ModelLoadError(
            f"the tokenizer of model {model_id} is nearly empty ({size} entries, expected at least {needed}): "
            f"the model folder is incomplete or corrupt; repair with: {repair}"
        )


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), max(1, size)):
        yield items[start : start + size]


def merge_batches(batches: Iterable[EncodeBatch], dim: int) -> EncodeBatch:
    """One EncodeBatch from several, rows kept in order."""
    paths: list[Path] = []
    rows: list[Vectors] = []
    failures: list[EncodeFailure] = []
    chunks: list[FileChunks] = []
    every_batch_has_chunks = True
    for batch in batches:
        paths.extend(batch.paths)
        rows.append(batch.vectors)
        failures.extend(batch.failures)
        every_batch_has_chunks = every_batch_has_chunks and batch.chunks is not None
        chunks.extend(batch.chunks or [])
    vectors = np.concatenate(rows) if rows else np.zeros((0, dim), dtype=np.float32)
    return EncodeBatch(paths, np.ascontiguousarray(vectors, dtype=np.float32), failures,
                       chunks if rows and every_batch_has_chunks else None)


def iter_encode_files(encoder: Encoder, paths: Sequence[Path], batch_size: int = 64) -> Generator[EncodeBatch, None, None]:
    """Batches of an encoder's output; encoders with a streaming pipeline of their own override this."""
    own = getattr(encoder, "iter_encode_files", None)
    if own is not None:
        yield from own(paths)
        return
    for part in chunked(list(paths), batch_size):
        yield encoder.encode_files(part)


def describe_error(error: BaseException) -> str:
    """A one-line reason for a failed file, without a traceback."""
    message = getattr(error, "strerror", None) or str(error)  # OSError and FFmpeg errors: without errno and path
    text = str(message).strip().splitlines()[0] if str(message).strip() else ""
    name = type(error).__name__
    return f"{name}: {text}" if text else name


def log_failures(failures: Iterable[EncodeFailure]) -> None:
    for failure in failures:
        log.warning("skipping %s: %s", failure.path, failure.reason)


def kind_served_by(encoder_key: str) -> str:
    """The first registered media kind whose encoder this is: the kind an encoder built without one names in its
    messages (e.g. the `models download KIND` that repairs it)."""
    from anagnorisis.kinds import all_kinds

    return next((kind.name for kind in all_kinds() if kind.encoder == encoder_key), encoder_key)
