"""Tiny random models built offline from configs, saved with `save_pretrained` so encoders load them through
the same `from_pretrained` path a real hub id takes. Each folder is a few hundred KB."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import (
    ClapConfig,
    ClapFeatureExtractor,
    ClapModel,
    ClapProcessor,
    CLIPConfig,
    CLIPImageProcessor,
    CLIPModel,
    CLIPProcessor,
    PreTrainedTokenizerFast,
    SiglipConfig,
    SiglipImageProcessor,
    SiglipModel,
    SiglipProcessor,
)

SEED = 1234  # every tiny model's weights come from this seed, so test vectors are reproducible

# A few hundred everyday words, so the tiny tokenizer has a plausible (if small) vocabulary.
WORDS = (
    "a an the of in on at to and or with for from by is are was be photo picture image drawing painting sketch "
    "cat cats dog dogs bird birds fish horse cow car cars bus train plane boat bike house tree trees flower "
    "flowers sky sea beach mountain river lake forest city street road night day sun moon star stars snow rain "
    "red green blue yellow black white orange purple pink brown grey gray dark bright light big small old new "
    "man woman child children people person face portrait group family friend music song piano guitar drum "
    "voice rock jazz pop classical ambient calm loud quiet fast slow happy sad sound noise tone beat dance "
    "text book page letter note story poem news article word words sentence food fruit apple banana bread "
    "cake coffee tea water fire ice stone wood glass metal paper room kitchen garden park field sunset sunrise"
).split()
SPECIAL = ("<pad>", "<unk>", "<s>", "</s>")


def _word_level_tokenizer(words: tuple[str, ...] | list[str] = WORDS) -> PreTrainedTokenizerFast:
    """Whitespace word-level tokenizer that appends `</s>`, wrapped for transformers."""
    vocab = {token: index for index, token in enumerate([*SPECIAL, *dict.fromkeys(words)])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", vocab["</s>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>",
        model_max_length=64,
    )


def _text_config(vocab_size: int, **extra: object) -> dict[str, object]:
    return dict(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=80, **extra,
    )


def _vision_config(**extra: object) -> dict[str, object]:
    return dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32,
        patch_size=8, **extra,
    )


def build_tiny_siglip(folder: Path) -> Path:
    """A SigLIP with 32-wide towers on 32×32 images; image and text embeddings are 32-d."""
    torch.manual_seed(SEED)
    tokenizer = _word_level_tokenizer()
    config = SiglipConfig(
        text_config=_text_config(len(tokenizer), pad_token_id=0, bos_token_id=2, eos_token_id=3),
        vision_config=_vision_config(),
    )
    model = SiglipModel(config).eval()
    processor = SiglipProcessor(SiglipImageProcessor(size={"height": 32, "width": 32}), tokenizer)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def build_tiny_clip(folder: Path) -> Path:
    """A CLIP with 32-wide towers, a 16-d projection, shortest-edge resize and a 32×32 centre crop."""
    torch.manual_seed(SEED)
    tokenizer = _word_level_tokenizer()
    config = CLIPConfig(
        text_config=_text_config(len(tokenizer), pad_token_id=0, bos_token_id=2, eos_token_id=3),
        vision_config=_vision_config(),
        projection_dim=16,
    )
    model = CLIPModel(config).eval()
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = CLIPProcessor(image_processor, tokenizer)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def build_tiny_clap(folder: Path, *, fused: bool) -> Path:
    """A CLAP with a 1-block-per-stage HTSAT (fused or not) and a 2-layer RoBERTa-style text tower; 16-d output."""
    torch.manual_seed(SEED)
    tokenizer = _word_level_tokenizer()
    config = ClapConfig(
        text_config=_text_config(len(tokenizer), pad_token_id=0, bos_token_id=2, eos_token_id=3),
        audio_config=dict(
            patch_embeds_hidden_size=16, hidden_size=128, depths=[1, 1, 1, 1], num_attention_heads=[1, 2, 4, 8],
            window_size=8, spec_size=256, num_mel_bins=64, enable_fusion=fused,
        ),
        projection_dim=16,
    )
    model = ClapModel(config).eval()
    features = ClapFeatureExtractor(truncation="fusion" if fused else "rand_trunc")
    processor = ClapProcessor(feature_extractor=features, tokenizer=tokenizer)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def empty_the_tokenizer(folder: Path) -> Path:
    """Replace a model folder's tokenizer with one that knows only its special tokens (the offline failure mode)."""
    tokenizer = _word_level_tokenizer(words=[])
    tokenizer.save_pretrained(folder)
    return folder


def truncate_the_weights(folder: Path) -> Path:
    """Cut a saved model's safetensors file in half, as an interrupted copy would."""
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    return folder


def folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


if __name__ == "__main__":  # pragma: no cover - a manual check of the recipes
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for name, build in (("siglip", build_tiny_siglip), ("clip", build_tiny_clip)):
            path = build(Path(tmp) / name)
            print(name, folder_size(path), json.loads((path / "config.json").read_text())["model_type"])
        for fused in (True, False):
            path = build_tiny_clap(Path(tmp) / f"clap{fused}", fused=fused)
            print("clap", fused, folder_size(path))
