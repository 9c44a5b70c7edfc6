"""Choosing encoders: the configured model when whole, else the fallback with a message that says what to do."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from anagnorisis.config import load_settings
from anagnorisis.embed import registry
from anagnorisis.embed.base import ModelLoadError
from anagnorisis.embed.basic import BasicAudioEncoder, BasicImageEncoder
from anagnorisis.embed.clap import ClapEncoder
from anagnorisis.embed.device import pick_device
from anagnorisis.embed.sentence import SentenceEncoder
from anagnorisis.embed.siglip import SiglipEncoder
from anagnorisis.embed.video import VideoEncoder
from tests.embed.models import empty_the_tokenizer, truncate_the_weights
from tests.media import write_jpeg


@pytest.fixture(autouse=True)
def fresh_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test resolves anew, against an empty Hugging Face cache."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    registry.forget_encoders()


def _settings(**models: str) -> object:
    return load_settings({f"{kind}_model": model for kind, model in models.items()}, environ={}, dotenv_path=None)


def test_a_missing_model_falls_back_to_basic_features_with_a_status_message() -> None:
    encoder, status = registry.resolve_encoder("images", _settings(images="google/siglip-base-patch16-224"))
    assert isinstance(encoder, BasicImageEncoder)
    assert status.available is False and status.wanted_model == "google/siglip-base-patch16-224"
    assert status.active_model == "basic-image-v1"
    assert "not downloaded" in status.message and "python -m anagnorisis models download images" in status.message


def test_every_kind_has_an_encoder_offline() -> None:
    settings = _settings()
    assert isinstance(registry.encoder_for("music", settings), BasicAudioEncoder)
    videos = registry.encoder_for("videos", settings)
    assert isinstance(videos, VideoEncoder) and videos.model_id == "basic-image-v1+frames8"
    text, status = registry.resolve_encoder("text", settings)
    assert isinstance(text, SentenceEncoder) and status.available, "the packaged MiniLM serves text offline"


def test_a_configured_local_model_folder_is_used(tiny_siglip: Path, tiny_clap_fused: Path) -> None:
    settings = _settings(images=str(tiny_siglip), music=str(tiny_clap_fused), videos=str(tiny_siglip))
    images, status = registry.resolve_encoder("images", settings)
    assert isinstance(images, SiglipEncoder) and status.available and status.active_model == str(tiny_siglip)
    assert images._loaded is None, "weights load lazily, on first use"
    assert isinstance(registry.encoder_for("music", settings), ClapEncoder)
    videos = registry.encoder_for("videos", settings)
    assert isinstance(videos, VideoEncoder) and videos.model_id == f"{tiny_siglip}+frames8"


def test_the_same_encoder_is_reused_within_a_process(tiny_siglip: Path) -> None:
    settings = _settings(images=str(tiny_siglip))
    assert registry.encoder_for("images", settings) is registry.encoder_for("images", settings)


def test_a_near_empty_tokenizer_is_detected_and_reported(tiny_siglip: Path, tmp_path: Path) -> None:
    broken = empty_the_tokenizer(Path(shutil.copytree(tiny_siglip, tmp_path / "broken")))
    assert registry.model_folder_problem(broken, "image") is not None
    encoder, status = registry.resolve_encoder("images", _settings(images=str(broken)))
    assert isinstance(encoder, BasicImageEncoder) and not status.available
    assert "tokenizer is nearly empty" in status.message
    assert "python -m anagnorisis models download images --force" in status.message


def test_truncated_weights_are_detected(tiny_clap_unfused: Path, tmp_path: Path) -> None:
    broken = truncate_the_weights(Path(shutil.copytree(tiny_clap_unfused, tmp_path / "cut")))
    assert "truncated" in (registry.model_folder_problem(broken, "audio") or "")
    encoder, status = registry.resolve_encoder("music", _settings(music=str(broken)))
    assert isinstance(encoder, BasicAudioEncoder) and "truncated" in status.message and "--force" in status.message


def test_whole_model_folders_pass_the_check(tiny_siglip: Path, tiny_clip: Path, tiny_clap_fused: Path) -> None:
    for folder, family in ((tiny_siglip, "image"), (tiny_clip, "image"), (tiny_clap_fused, "audio")):
        assert registry.model_folder_problem(folder, family) is None, folder
    packaged = registry.model_location("sentence-transformers/all-MiniLM-L6-v2")
    assert packaged is not None and registry.model_folder_problem(packaged, "text") is None


def test_a_model_in_the_hugging_face_cache_is_found(tiny_siglip: Path, tmp_path: Path) -> None:
    snapshot = tmp_path / "hf-cache" / "models--someone--tiny-siglip" / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_siglip, snapshot)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0" * 40)
    assert registry.model_location("someone/tiny-siglip") == snapshot
    encoder, status = registry.resolve_encoder("images", _settings(images="someone/tiny-siglip"))
    assert isinstance(encoder, SiglipEncoder) and status.available and encoder.model_id == "someone/tiny-siglip"


def test_basic_features_can_be_chosen_on_purpose() -> None:
    encoder, status = registry.resolve_encoder("images", _settings(images="basic"))
    assert isinstance(encoder, BasicImageEncoder) and status.available and "as configured" in status.message
    with pytest.raises(ModelLoadError):
        registry.resolve_encoder("text", _settings(text="basic"))


def test_known_models_say_what_is_downloaded(tiny_siglip: Path) -> None:
    rows = registry.known_models(_settings(images=str(tiny_siglip)))
    assert {"id", "kind", "approx_size_mb", "downloaded", "path"} <= set(rows[0])
    by_key = {(row["kind"], row["id"]): row for row in rows}
    assert by_key[("text", "sentence-transformers/all-MiniLM-L6-v2")]["downloaded"] is True
    assert by_key[("images", "google/siglip-base-patch16-224")]["downloaded"] is False
    configured = by_key[("images", str(tiny_siglip))]
    assert configured["downloaded"] and configured["configured"]
    assert by_key[("music", "basic-audio-v1")]["downloaded"] is True


def test_downloads_are_refused_in_offline_mode() -> None:
    settings = load_settings({"offline": True}, environ={}, dotenv_path=None)
    with pytest.raises(registry.DownloadRefused, match="ANAGNORISIS_OFFLINE"):
        registry.download_for_kind("images", settings)


def test_the_device_is_chosen_in_one_place() -> None:
    choice = pick_device("cpu")
    assert choice.device.type == "cpu" and str(choice.dtype) == "torch.float32" and not choice.is_cuda
    with choice.autocast():
        pass
    assert pick_device("cuda").device.type in ("cuda", "cpu"), "cuda without a GPU falls back with a warning"
    with pytest.raises(ValueError):
        pick_device("tpu")


def test_an_encoder_from_the_registry_embeds_a_file(tmp_path: Path) -> None:
    photo = write_jpeg(tmp_path / "p.jpg", color=(1, 2, 250))
    vectors = registry.encoder_for("images", _settings()).encode_files([photo]).vectors
    assert vectors.shape == (1, BasicImageEncoder.dim) and np.isfinite(vectors).all()


def test_a_download_asks_the_hub_for_one_weight_format_and_is_online_only_meanwhile(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import huggingface_hub
    import huggingface_hub.constants as hub_constants

    calls: dict[str, object] = {}

    class FakeApi:
        def list_repo_files(self, repo_id: str) -> list[str]:
            calls["online_while_listing"] = hub_constants.HF_HUB_OFFLINE is False
            return ["config.json", "model.safetensors", "pytorch_model.bin", "tf_model.h5"]

    def fake_snapshot(repo_id: str, **options: object) -> str:
        calls["repo"], calls["options"] = repo_id, options
        return str(tmp_path / "snapshot")

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    folder = registry.download_for_kind("music", _settings(music="laion/clap-htsat-unfused"), force=True)
    assert folder == tmp_path / "snapshot" and calls["repo"] == "laion/clap-htsat-unfused"
    options = calls["options"]
    assert isinstance(options, dict) and options["force_download"] is True
    assert "*.safetensors" in options["allow_patterns"] and "*.bin" not in options["allow_patterns"]
    assert calls["online_while_listing"] is True
    assert hub_constants.HF_HUB_OFFLINE is True, "offline again once the download is done"
    assert registry.download_for_kind("text", _settings()) == registry.model_location("sentence-transformers/all-MiniLM-L6-v2")
