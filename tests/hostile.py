"""A hostile library: hundreds of damaged, odd, huge, unreadable and tricky files, each with what must happen to it.

`make_hostile_library(root)` returns one `Expect` per path the scanner must either index or report as bad.
Symlinks, loops and the FIFO are reported by the walker; everything else by the readers.
"""
from __future__ import annotations

import io
import os
import random
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from tests.media import (
    make_bad_files, make_odd_names, write_flac, write_gif, write_jpeg, write_mp3, write_ogg, write_png, write_text,
    write_video, write_wav, write_webp,
)

SEED = 7


@dataclass(frozen=True)
class Expect:
    path: bytes  # os.fsencode'd, since some names are not valid UTF-8
    outcome: str  # "bad" or "indexed"
    what: str


def _flip(data: bytes, positions: list[int]) -> bytes:
    damaged = bytearray(data)
    for position in positions:
        damaged[position] ^= 0xFF
    return bytes(damaged)


def _damaged_copies(root: Path, rng: random.Random) -> list[Expect]:
    """Truncated and bit-flipped copies of every format.

    Damage that certainly breaks a file (its signature flipped, all but its first tenth cut off) must be reported;
    milder damage (a cut in the middle, flips in the header) may leave a file a decoder still reads, so it must be
    either reported or indexed, never crash the scan. MP3 decoders resynchronise past garbage, so for MP3 even a
    flipped signature is "either".
    """
    writers = {
        ".jpg": lambda p: write_jpeg(p, size=(96, 64)), ".png": lambda p: write_png(p, size=(96, 64)),
        ".webp": lambda p: write_webp(p, size=(96, 64)), ".gif": lambda p: write_gif(p),
        ".mp3": lambda p: write_mp3(p, seconds=1.0), ".flac": lambda p: write_flac(p, seconds=1.0),
        ".ogg": lambda p: write_ogg(p, seconds=1.0), ".mp4": lambda p: write_video(p, frames=8),
    }
    expectations = []
    folder = root / "damaged"
    folder.mkdir()
    for ext, write in writers.items():
        good = write(folder / f"source{ext}")
        data = good.read_bytes()
        good.unlink()
        for index, fraction in enumerate((0.02, 0.1, 0.2, 0.3, 0.5, 0.6, 0.7)):
            path = folder / f"truncated-{index}{ext}"
            path.write_bytes(data[: max(1, int(len(data) * fraction))])
            expectations.append(Expect(os.fsencode(path), "bad" if fraction <= 0.1 else "either",
                                       f"{ext} cut to {fraction:.0%}"))
        for index in range(3):
            path = folder / f"signature-flipped-{index}{ext}"
            path.write_bytes(_flip(data, [0, 1, 2, 3][: index + 2]))
            expectations.append(Expect(os.fsencode(path), "either" if ext == ".mp3" else "bad",
                                       f"{ext} with its signature flipped"))
        for index in range(3):
            path = folder / f"header-flipped-{index}{ext}"
            path.write_bytes(_flip(data, rng.sample(range(4, min(len(data), 64)), 6)))
            expectations.append(Expect(os.fsencode(path), "either", f"{ext} with header bits flipped"))
    return expectations


def _zero_and_wrong(root: Path) -> list[Expect]:
    folder = root / "names"
    folder.mkdir()
    expectations = []
    for ext in (".jpg", ".png", ".gif", ".webp", ".mp3", ".flac", ".ogg", ".wav", ".mp4", ".mkv", ".webm", ".txt",
                ".md", ".html"):
        path = folder / f"zero{ext}"
        path.write_bytes(b"")
        expectations.append(Expect(os.fsencode(path), "bad", "zero bytes"))
    same_kind = [(write_png, "scratch.png", "png named.jpg"), (write_wav, "scratch.wav", "wav named.mp3"),
                 (write_jpeg, "scratch.jpg", "jpeg named.webp"), (write_ogg, "scratch.ogg", "ogg named.flac")]
    for write, scratch, name in same_kind:
        write(folder / scratch).rename(folder / name)
        expectations.append(Expect(os.fsencode(folder / name), "indexed", "another format of the same kind"))
    other_kind = [(write_jpeg, "photo named.mp3"), (write_wav, "sound named.jpg"), (write_jpeg, "photo named.mp4"),
                  (write_wav, "sound named.txt"), (write_video, "video named.png")]
    for write, name in other_kind:
        made = write(folder / "scratch.mp4") if write is write_video else write(folder / "scratch.wav")
        if write is write_jpeg:
            made = write(folder / "scratch.jpg")
        target = folder / name
        made.rename(target)
        expectations.append(Expect(os.fsencode(target), "bad", "content of another kind"))
    return expectations


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size over a tiny payload: a decompression bomb."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _huge(root: Path) -> list[Expect]:
    folder = root / "huge"
    folder.mkdir()
    bomb = folder / "bomb.png"
    bomb.write_bytes(_png_claiming(200_000, 200_000))
    big = folder / "sixteen-k.png"
    buffer = io.BytesIO()
    Image.new("1", (16_384, 16_384), 1).save(buffer, "PNG")  # 16k × 16k, small on disk
    big.write_bytes(buffer.getvalue())
    sparse = folder / "sparse-1gb.mp4"
    with open(sparse, "wb") as file:
        file.truncate(1 << 30)
    sparse_text = folder / "sparse-1gb.txt"
    with open(sparse_text, "wb") as file:
        file.truncate(1 << 30)
    return [
        Expect(os.fsencode(bomb), "bad", "decompression bomb"),
        Expect(os.fsencode(big), "indexed", "16k × 16k image under the cap"),
        Expect(os.fsencode(sparse), "bad", "1 GB sparse file named .mp4"),
        Expect(os.fsencode(sparse_text), "bad", "1 GB of NUL bytes named .txt"),
    ]


def _tricky_paths(root: Path, outside: Path) -> list[Expect]:
    folder = root / "tricky"
    folder.mkdir()
    expectations = [Expect(os.fsencode(path), "indexed", "odd name") for path in make_odd_names(folder / "odd")]
    deep = folder
    for index in range(12):
        deep = deep / (f"a-rather-long-folder-name-number-{index:02d}-" + "x" * 20)
    deep.mkdir(parents=True)
    long_name = write_jpeg(deep / ("long name " + "y" * 200 + ".jpg"))
    expectations.append(Expect(os.fsencode(long_name), "indexed", f"a path of {len(str(long_name))} characters"))
    fifo = folder / "pipe.mp3"
    os.mkfifo(fifo)
    expectations.append(Expect(os.fsencode(fifo), "bad", "a FIFO"))
    (folder / "loop").symlink_to(folder)
    expectations.append(Expect(os.fsencode(folder / "loop"), "bad", "a symlink loop"))
    (folder / "escape").symlink_to(outside)
    expectations.append(Expect(os.fsencode(folder / "escape"), "bad", "a symlinked folder outside the root"))
    (folder / "escape.jpg").symlink_to(outside / "secret.jpg")
    expectations.append(Expect(os.fsencode(folder / "escape.jpg"), "bad", "a symlinked file outside the root"))
    (folder / "a folder.jpg").mkdir()
    inside = write_jpeg(folder / "a folder.jpg" / "inside.jpg")
    expectations.append(Expect(os.fsencode(inside), "indexed", "a file inside a folder named like a file"))
    (folder / "dangling.png").symlink_to(folder / "nothing-here.png")
    expectations.append(Expect(os.fsencode(folder / "dangling.png"), "bad", "a broken symlink"))
    return expectations


def _unreadable(root: Path) -> list[Expect]:
    folder = root / "locked"
    folder.mkdir()
    expectations = []
    for write, name in ((write_jpeg, "secret.jpg"), (write_mp3, "secret.mp3"), (write_text, "secret.txt")):
        path = write(folder / name) if write is not write_text else write_text(folder / name, "private\n")
        path.chmod(0)
        expectations.append(Expect(os.fsencode(path), "bad", "unreadable for the scanning user"))
    return expectations


def make_hostile_library(root: Path, outside: Path) -> list[Expect]:
    """Build it under root (world-readable, so another user can scan it); `outside` gets a file to escape to."""
    rng = random.Random(SEED)
    outside.mkdir(parents=True, exist_ok=True)
    write_jpeg(outside / "secret.jpg")
    expectations = [
        *_damaged_copies(root, rng), *_zero_and_wrong(root), *_huge(root), *_tricky_paths(root, outside),
        *_unreadable(root),
    ]
    expectations += [Expect(os.fsencode(item.path), "bad", f"{item.badness} ({item.note or item.kind})")
                     for item in make_bad_files(root / "classic")]
    for index in range(10):
        expectations.append(Expect(os.fsencode(write_jpeg(root / "good" / f"fine-{index}.jpg",
                                                          color=(index * 20, 50, 90))), "indexed", "a good photo"))
    return expectations
