"""SigLIP and CLIP through the real from_pretrained path, on tiny random models saved to disk."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from anagnorisis.embed.base import Encoder, ModelLoadError, NoTextTowerError
from anagnorisis.embed.siglip import SIGLIP_TEXT_LENGTH, SiglipEncoder, geometry_of
from tests.embed.models import build_tiny_siglip, empty_the_tokenizer
from tests.media import write_jpeg, write_png, write_webp


class TokenizerSpy:
    """Records every call's keyword arguments and passes it on to the real tokenizer."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: list[dict[str, Any]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self.real(*args, **kwargs)

    def __len__(self) -> int:
        return len(self.real)


@pytest.fixture
def pictures(tmp_path: Path) -> list[Path]:
    return [
        write_jpeg(tmp_path / "red.jpg", color=(220, 20, 20), size=(640, 360)),
        write_png(tmp_path / "green.png", color=(20, 200, 20), size=(50, 90)),
        write_webp(tmp_path / "blue.webp", color=(20, 20, 220), size=(100, 100)),
    ]


def test_a_tiny_siglip_loads_through_from_pretrained_and_embeds_images(tiny_siglip: Path, pictures: list[Path]) -> None:
    encoder = SiglipEncoder(str(tiny_siglip), device="cpu", pool="inline")
    assert isinstance(encoder, Encoder) and encoder.has_text_tower
    batch = encoder.encode_files(pictures)
    assert batch.paths == pictures and batch.failures == []
    assert batch.vectors.shape == (3, 32) and batch.vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch.vectors, axis=1), 1, atol=1e-5)
    assert encoder.dim == 32 and encoder.model_id == str(tiny_siglip)


def test_siglip_text_queries_are_padded_to_64_tokens(tiny_siglip: Path) -> None:
    encoder = SiglipEncoder(str(tiny_siglip), device="cpu").load()
    spy = TokenizerSpy(encoder._load().tokenizer)
    encoder._load().tokenizer = spy
    vectors = encoder.encode_texts(["a photo of a dog", "red sunset over the sea"])
    assert vectors.shape == (2, 32) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert spy.calls and all(call["padding"] == "max_length" and call["max_length"] == SIGLIP_TEXT_LENGTH for call in spy.calls)
    assert encoder.tokenize(["dog"])["input_ids"].shape == (1, 64)


def test_a_tiny_clip_uses_its_crop_geometry_and_default_padding(tiny_clip: Path, pictures: list[Path]) -> None:
    encoder = SiglipEncoder(str(tiny_clip), device="cpu", pool="inline")
    batch = encoder.encode_files(pictures)
    assert batch.vectors.shape == (3, 16) and encoder.dim == 16
    geometry = geometry_of(encoder._load().image_processor)
    assert (geometry.mode, geometry.shortest_edge, geometry.height, geometry.width) == ("crop", 32, 32, 32)
    assert encoder.tokenize(["a dog", "a big red dog"])["input_ids"].shape[1] < SIGLIP_TEXT_LENGTH
    texts = encoder.encode_texts(["a dog"])
    assert texts.shape == (1, 16) and abs(np.linalg.norm(texts) - 1) < 1e-5


def test_image_vectors_match_the_processor_on_the_full_picture(tiny_siglip: Path, tmp_path: Path) -> None:
    """Draft-mode decoding plus our resize feeds the model what its own processor would (to a rounding)."""
    from PIL import Image

    photo = write_jpeg(tmp_path / "photo.jpg", color=(180, 90, 40), size=(1024, 768))
    encoder = SiglipEncoder(str(tiny_siglip), device="cpu", pool="inline")
    ours = encoder.encode_files([photo]).vectors[0]
    loaded = encoder._load()
    inputs = loaded.image_processor(images=Image.open(photo).convert("RGB"), return_tensors="pt")
    with torch.inference_mode():
        theirs = loaded.model.get_image_features(pixel_values=inputs["pixel_values"]).pooler_output[0].numpy()
    assert ours @ (theirs / np.linalg.norm(theirs)) > 0.999


def test_a_corrupt_image_is_reported_and_the_batch_goes_on(tiny_siglip: Path, pictures: list[Path], tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff" + b"\x00" * 500)
    encoder = SiglipEncoder(str(tiny_siglip), device="cpu", pool="thread", workers=2, batch_size=2)
    batches = list(encoder.iter_encode_files([pictures[0], corrupt, pictures[1], pictures[2]]))
    assert [len(batch) for batch in batches] == [2, 1]
    assert [f.path for batch in batches for f in batch.failures] == [corrupt]
    assert [p for batch in batches for p in batch.paths] == pictures


def test_decoding_in_worker_processes_gives_the_same_vectors(tiny_siglip: Path, pictures: list[Path]) -> None:
    inline = SiglipEncoder(str(tiny_siglip), device="cpu", pool="inline").encode_files(pictures).vectors
    encoder = SiglipEncoder(str(tiny_siglip), device="cpu", pool="process", workers=2, batch_size=2)
    try:
        in_processes = encoder.encode_files(pictures).vectors
    finally:
        encoder.close()
    assert np.allclose(inline, in_processes, atol=1e-6)


def test_a_near_empty_tokenizer_is_refused_with_the_repair_command(tmp_path: Path) -> None:
    folder = empty_the_tokenizer(build_tiny_siglip(tmp_path / "broken"))
    encoder = SiglipEncoder(str(folder), device="cpu")
    with pytest.raises(ModelLoadError, match=r"nearly empty.*models download images --force"):
        encoder.encode_texts(["a dog"])


def test_a_missing_model_folder_raises_a_clear_error(tmp_path: Path) -> None:
    encoder = SiglipEncoder(str(tmp_path / "nothing-here"), device="cpu")
    with pytest.raises(ModelLoadError, match="cannot load image model"):
        encoder.load()


def test_a_tokenizer_that_cannot_load_costs_text_search_only(tiny_siglip: Path, tmp_path: Path, pictures: list[Path]) -> None:
    """Real SigLIP needs SentencePiece for its tokenizer: without it, images still embed and text says why."""
    import json
    import shutil

    folder = Path(shutil.copytree(tiny_siglip, tmp_path / "no-tokenizer"))
    (folder / "tokenizer.json").unlink()
    (folder / "spiece.model").write_bytes(b"not a sentencepiece model")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["tokenizer_class"] = "SiglipTokenizer"
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    encoder = SiglipEncoder(str(folder), device="cpu", pool="inline")
    assert encoder.encode_files(pictures).vectors.shape == (3, 32)
    with pytest.raises(NoTextTowerError, match="sentencepiece"):
        encoder.encode_texts(["a dog"])
