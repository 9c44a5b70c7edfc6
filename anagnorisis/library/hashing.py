"""Content identity, the same as the original Anagnorisis (`xxh3s:s5m1048576:v1.2`), so imported hashes match."""
from __future__ import annotations

import os

import xxhash

HASH_ALGORITHM = "xxh3s:s5m1048576:v1.2"
WHOLE_FILE_LIMIT = 5 * 1024 * 1024  # bytes: files up to this size are hashed whole
BLOCK = 1024 * 1024  # bytes per sampled block of a larger file
READ_CHUNK = 1024 * 1024  # bytes per read while hashing a whole file


def sample_offsets(size: int) -> list[int]:
    """Five 1 MiB blocks: the start, three evenly spaced, and the end."""
    step = (size - BLOCK) // 4
    return [0, step, 2 * step, 3 * step, size - BLOCK]


def content_hash(path: str | bytes | os.PathLike[str]) -> str:
    """32 lowercase hex characters of XXH3-128 over the file (or its five samples plus its size)."""
    digest = xxhash.xxh3_128()
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size <= WHOLE_FILE_LIMIT:
            while chunk := file.read(READ_CHUNK):
                digest.update(chunk)
        else:
            for offset in sample_offsets(size):
                file.seek(offset)
                digest.update(file.read(BLOCK))
            digest.update(size.to_bytes(8, "little"))
    return digest.hexdigest()
