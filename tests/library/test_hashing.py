"""Our content hash must equal the original Anagnorisis' `xxh3s:s5m1048576:v1.2` byte for byte."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import xxhash

from anagnorisis.library.hashing import HASH_ALGORITHM, content_hash

MIB = 1 << 20


def reference_hash(data: bytes) -> str:
    """SPEC §3 written out independently: whole file up to 5 MiB; else five 1 MiB samples + size (8 bytes LE)."""
    size = len(data)
    if size <= 5 * MIB:
        return xxhash.xxh3_128(data).hexdigest()
    gap = (size - MIB) // 4
    starts = [0, gap, gap * 2, gap * 3, size - MIB]
    sampled = b"".join(data[start:start + MIB] for start in starts) + size.to_bytes(8, "little")
    return xxhash.xxh3_128(sampled).hexdigest()


def _random_bytes(size: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def test_the_hash_of_a_small_file_is_xxh3_128_of_its_bytes(tmp_path: Path) -> None:
    data = _random_bytes(12_345, 1)
    (tmp_path / "small.bin").write_bytes(data)
    assert content_hash(tmp_path / "small.bin") == reference_hash(data)
    assert len(content_hash(tmp_path / "small.bin")) == 32


def test_a_file_of_exactly_five_mib_is_hashed_whole(tmp_path: Path) -> None:
    data = _random_bytes(5 * MIB, 2)
    (tmp_path / "edge.bin").write_bytes(data)
    assert content_hash(tmp_path / "edge.bin") == xxhash.xxh3_128(data).hexdigest()


def test_the_hash_of_a_large_file_samples_five_blocks_and_the_size(tmp_path: Path) -> None:
    data = _random_bytes(7 * MIB + 333, 3)
    (tmp_path / "large.bin").write_bytes(data)
    assert content_hash(tmp_path / "large.bin") == reference_hash(data)
    assert content_hash(tmp_path / "large.bin") != xxhash.xxh3_128(data).hexdigest()


def test_a_change_between_the_samples_of_a_large_file_keeps_the_hash(tmp_path: Path) -> None:
    data = bytearray(_random_bytes(9 * MIB, 4))
    (tmp_path / "a.bin").write_bytes(bytes(data))
    data[1 * MIB + 17] ^= 0xFF  # inside no sampled block (gap is 2 MiB)
    (tmp_path / "b.bin").write_bytes(bytes(data))
    assert content_hash(tmp_path / "a.bin") == content_hash(tmp_path / "b.bin")


def test_the_algorithm_label_is_the_original_apps() -> None:
    assert HASH_ALGORITHM == "xxh3s:s5m1048576:v1.2"
