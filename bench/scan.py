"""Scan throughput on a generated library (SPEC §9): first scan, and rescan of the unchanged library.

Baselines measured in the same run: `os.walk` + `stat` of every file, and XXH3 reading every byte.

    python bench/scan.py                # 100,000 files (70 % JPEG, 30 % text)
    python bench/scan.py --files 5000   # quick
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import xxhash
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from anagnorisis.library.scan import scan  # noqa: E402
from anagnorisis.store import Store  # noqa: E402
from anagnorisis.store.roots import add_root  # noqa: E402

FILES_PER_FOLDER = 500  # a plausible photo-folder size; also keeps directory listings realistic


def _jpeg_templates(count: int) -> list[bytes]:
    templates = []
    for index in range(count):
        buffer = io.BytesIO()
        Image.new("RGB", (64, 48), ((index * 37) % 256, (index * 91) % 256, (index * 53) % 256)).save(buffer, "JPEG")
        templates.append(buffer.getvalue())
    return templates


def make_library(root: Path, files: int) -> None:
    """Small valid files with distinct content: JPEGs with a unique trailer after EOI, and short texts."""
    templates = _jpeg_templates(64)
    for index in range(files):
        folder = root / f"folder{index // FILES_PER_FOLDER:04d}"
        if index % FILES_PER_FOLDER == 0:
            folder.mkdir(parents=True, exist_ok=True)
        if index % 10 < 7:
            data = templates[index % len(templates)] + f"unique {index}".encode()
            (folder / f"img{index:06d}.jpg").write_bytes(data)
        else:
            (folder / f"note{index:06d}.txt").write_text(f"Note number {index}\nSome words about it.\n")


def walk_and_stat(root: Path) -> int:
    count = 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            os.stat(os.path.join(folder, name))
            count += 1
    return count


def hash_every_byte(root: Path) -> int:
    count = 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            with open(os.path.join(folder, name), "rb") as file:
                xxhash.xxh3_128(file.read()).hexdigest()
            count += 1
    return count


def timed(fn, *args):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - started, result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--keep", help="reuse/keep the generated library in this folder")
    args = parser.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="anagnorisis-bench-scan-"))
    library = work / "library"
    try:
        if not library.exists():
            seconds, _ = timed(make_library, library, args.files)
            print(f"generated {args.files} files in {seconds:.1f} s", file=sys.stderr)
        db_path = work / "bench.duckdb"
        for suffix in ("", ".wal"):
            Path(str(db_path) + suffix).unlink(missing_ok=True)
        walk_s, count = timed(walk_and_stat, library)
        hash_s, _ = timed(hash_every_byte, library)
        with Store.open(db_path) as store:
            add_root(store, "images", library)
            add_root(store, "text", library)
            first_s, first = timed(scan, store)
            rescan_s, again = timed(scan, store)
        assert first.new == count, (first.new, count, first.bad[:3])
        assert again.unchanged == count and again.new == 0
        rows = [
            ("os.walk + stat (baseline)", walk_s, count / walk_s, 1.0),
            ("xxh3 of every byte (baseline)", hash_s, count / hash_s, hash_s / walk_s),
            ("first scan (hash + metadata + DB)", first_s, count / first_s, first_s / walk_s),
            ("rescan, unchanged library", rescan_s, count / rescan_s, rescan_s / walk_s),
        ]
        lines = [
            f"# Scan benchmark: {count:,} files ({os.cpu_count()} cores)",
            "",
            "| stage | seconds | files/s | × walk+stat |",
            "|---|---:|---:|---:|",
            *(f"| {name} | {sec:.2f} | {rate:,.0f} | {ratio:.2f} |" for name, sec, rate, ratio in rows),
            "",
            f"first scan / xxh3-every-byte = {first_s / hash_s:.2f}; rescan target ≤ 5 s: "
            f"{'met' if rescan_s <= 5 else 'NOT met'} ({rescan_s:.2f} s). Page cache warm (files just written).",
        ]
        report = "\n".join(lines)
        print(report)
        results = Path(__file__).resolve().parent / "results"
        results.mkdir(exist_ok=True)
        (results / "scan.md").write_text(report + "\n")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
