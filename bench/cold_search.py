"""Cold meaning search (issue #21): a fresh process's first search and an app restart on a 1M × 768 library,
with the vector index rebuilt from the database (before) and with the index saved beside it (after).

The library is a real data dir: DuckDB with one `files` row per file (content hashes, paths under the default
images root; the files themselves are not on disk, and search never stats them) and one 768-d vector per file
stored through `store.vectors.save_vectors`, drawn like set (a) of bench/search.py. The image model is a
randomly initialised SigLIP of siglip-base-patch16-224's exact architecture and size (203M parameters, fp32
safetensors), since the real weights are not on this offline machine: its load time is the real model's, its
answers are meaningless (timing only). Measured, each in fresh subprocesses of the same run:

  (a) `python -m anagnorisis --data-dir D search images "QUERY" --json`: process start → result printed, with the
      saved index removed (before: the vectors load from DuckDB and the index is rebuilt) and present (after);
  (b) warm: p50/p95 of meaning searches through one Session after its index serves from the ANN;
  (c) restart: a Session (the object the app keeps; Gradio itself not started) from process start until a
      meaning search answers from the ANN index, not the exact fallback, before and after.

    python bench/cold_search.py              # 1M × 768 (~10-20 min on 2 cores, ~9 GB of temporary disk, ≤ 13 GB RAM)
    python bench/cold_search.py --n 100000   # quick check
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.search import DIM, centres_for, clustered_chunks, rss_mb  # noqa: E402

KIND = "images"
QUERY = "a photo of a cat on the beach"
WARM_QUERIES = ("a photo of a cat on the beach", "red car in the city at night", "portrait of an old man",
                "snow on the mountain", "a bowl of fruit", "children playing in the park", "sunset over the sea",
                "a dog running", "a painting of flowers", "a glass of water")
GENERATE_CHUNK_ROWS = 50_000  # files and vectors inserted per transaction: ≈ 150 MB of vectors at 768-d
RESTART_POLL_SECONDS = 0.05
LOAD_AT_START = os.getloadavg()[0]


# --------------------------------------------------------------------------------------------- the library


def build_model(folder: Path) -> Path:
    """A SigLIP of siglip-base-patch16-224's config (768-d, 32k-token vocabulary), random weights, word tokenizer."""
    if (folder / "model.safetensors").exists():
        return folder
    import torch
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    from tests.embed.models import WORDS, _word_level_tokenizer

    torch.manual_seed(0)
    config = SiglipConfig()  # the defaults are siglip-base-patch16-224's towers
    vocabulary = config.text_config.vocab_size
    tokenizer = _word_level_tokenizer([*WORDS, *(f"w{i}" for i in range(vocabulary - len(WORDS) - 4))])
    config.text_config.pad_token_id, config.text_config.bos_token_id, config.text_config.eos_token_id = 0, 2, 3
    model = SiglipModel(config).eval()
    model.save_pretrained(folder)
    SiglipProcessor(SiglipImageProcessor(), tokenizer).save_pretrained(folder)
    return folder


def build_library(data_dir: Path, model_id: str, n: int) -> None:
    """n files with one stored vector each, through the store's own writer and `save_vectors`."""
    import numpy as np
    import pyarrow as pa

    from anagnorisis.cli import DB_FILE_NAME
    from anagnorisis.library.hashing import HASH_ALGORITHM
    from anagnorisis.private import make_private
    from anagnorisis.store import Store
    from anagnorisis.store.db import utc_now
    from anagnorisis.store.vectors import save_vectors

    make_private(data_dir)
    root = data_dir / "library" / KIND
    root.mkdir(parents=True, exist_ok=True)
    store = Store.open(data_dir / DB_FILE_NAME)
    try:
        for start, vectors in zip(range(0, n, GENERATE_CHUNK_ROWS), clustered_chunks(n, 1, centres_for(n))):
            numbers = range(start, start + len(vectors))
            hashes = [hashlib.blake2b(i.to_bytes(8, "little"), digest_size=16).hexdigest() for i in numbers]
            relative = [f"{i // 1000:04d}/IMG_{i:07d}.jpg" for i in numbers]
            files = pa.table({
                "relative_path": relative, "display_path": [f"{root}/{r}" for r in relative],
                "path_bytes": pa.array([f"{root}/{r}".encode() for r in relative], pa.binary()),
                "size": pa.array([100_000 + i % 5_000_000 for i in numbers], pa.int64()),
                "mtime": pa.array([1.6e9 + i for i in numbers], pa.float64()), "content_hash": hashes,
            })
            store.write(lambda conn: _insert_files(conn, files, str(root), HASH_ALGORITHM, utc_now()))
            save_vectors(store, model_id, hashes, np.asarray(vectors))
            print(f"  {start + len(vectors):,} files", file=sys.stderr, flush=True)
        store.checkpoint()
    finally:
        store.close()


def _insert_files(conn: Any, files: Any, root: str, algorithm: str, now: Any) -> None:
    conn.register("new_files", files)
    try:
        conn.execute("INSERT INTO files (kind, root, relative_path, path_bytes, display_path, size, mtime,"
                     " content_hash, hash_algorithm, first_seen, last_seen, missing, metadata)"
                     " SELECT $kind, $root, relative_path, path_bytes, display_path, size, mtime, content_hash,"
                     " $algorithm, $now, $now, false, '{}' FROM new_files",
                     {"kind": KIND, "root": root, "algorithm": algorithm, "now": now})
    finally:
        conn.unregister("new_files")


# --------------------------------------------------------------------------------------------- probes


def probe(kind: str, data_dir: Path) -> dict[str, Any]:
    """Run in a fresh process by the parent: ``encoder``, ``restart`` or ``warm``; returns what it measured."""
    from anagnorisis.cli import open_library
    from anagnorisis.config import load_settings
    from anagnorisis.search import SearchRequest
    from anagnorisis.session import Session

    settings = load_settings({"data_dir": str(data_dir)})
    if kind == "encoder":
        from anagnorisis.embed.registry import resolve_encoder

        encoder, _status = resolve_encoder(KIND, settings)
        resolved = time.time()
        encoder.encode_texts([QUERY])
        encoded = time.time()
        encoder.encode_texts([WARM_QUERIES[1]])
        return {"resolved_at": resolved, "encoded_at": encoded, "next_encode_s": time.time() - encoded,
                "model_id": encoder.model_id}
    session = Session(settings, open_library(settings))
    request = SearchRequest(kind=KIND, query=QUERY, mode="meaning", limit=24)
    if kind == "index":
        return search_without_the_model(session, request)
    first = session.search(request).to_dict()
    first_at = time.time()
    index = session.index(KIND)
    answered_exact = not index.uses_ann
    index.wait_until_ready()
    answer = session.search(request).to_dict()
    ann_at = time.time()
    session.wait_for_saves()
    out = {"first_answer_at": first_at, "ann_answer_at": ann_at, "first_was_exact": answered_exact,
           "saved_at": time.time(), "engine": index.stats()["engine"], "rss_mb": rss_mb()[0],
           "build_s": index.stats()["last_build_seconds"],
           "hashes": [item["content_hash"] for item in answer["results"]]}
    if kind == "warm":
        out.update(warm_latencies(session, SearchRequest))
    return out


def search_without_the_model(session: Any, request: Any) -> dict[str, Any]:
    """The first search from process start with the text model replaced by a fixed query vector: what the
    index, the store and the CLI cost, apart from loading the model (which overlaps them in a real search)."""
    import numpy as np

    from anagnorisis.embed.registry import wanted_model

    class Resolved:  # stands for the configured model, resolved and loaded
        model_id = wanted_model(KIND, session.settings)

    vector = np.random.default_rng(7).standard_normal(DIM).astype(np.float32)
    session._encode_query = lambda kind, query: (Resolved, vector)
    answer = session.search(request).to_dict()
    return {"answered_at": time.time(), "engine": session.index(KIND).stats()["engine"],
            "results": len(answer["results"]), "rss_mb": rss_mb()[0]}


def warm_latencies(session: Any, request_type: Any) -> dict[str, Any]:
    """Meaning searches through one session whose index serves: whole search and the query encoding alone."""
    encoder, _status = session.encoder(KIND)
    searches, encodes = [], []
    for round_ in range(5):
        for query in WARM_QUERIES:
            request = request_type(kind=KIND, query=f"{query} {round_}", mode="meaning", limit=24)
            started = time.perf_counter()
            session.search(request)
            searches.append(time.perf_counter() - started)
            started = time.perf_counter()
            encoder.encode_texts([f"{query} {round_} again"])
            encodes.append(time.perf_counter() - started)
    return {"search_ms": _percentiles(searches), "encode_ms": _percentiles(encodes)}


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {"p50": statistics.median(ordered) * 1e3, "p95": ordered[int(0.95 * (len(ordered) - 1))] * 1e3}


# --------------------------------------------------------------------------------------------- the parent


def run_probe(kind: str, data_dir: Path, env: dict[str, str]) -> dict[str, Any]:
    started = time.time()
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--probe", kind, "--data-dir",
                           str(data_dir)], env=env, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"probe {kind} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["started"] = started  # the parent's clock before the process started: times are from process start
    if "answered_at" in result:
        result["seconds"] = result["answered_at"] - started
    if "encoded_at" in result:
        result["resolve_s"], result["load_and_first_encode_s"] = (result["resolved_at"] - started,
                                                                  result["encoded_at"] - result["resolved_at"])
    return result


def cli_search(data_dir: Path, env: dict[str, str]) -> dict[str, Any]:
    """`python -m anagnorisis … search images QUERY --json` in a fresh process: wall time and peak RSS."""
    command = [sys.executable, "-m", "anagnorisis", "--data-dir", str(data_dir), "search", KIND, QUERY, "--json",
               "--limit", "24"]
    timed = ["/usr/bin/time", "-f", "%M"] if Path("/usr/bin/time").exists() else []
    started = time.perf_counter()
    done = subprocess.run(timed + command, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"search failed:\n{done.stderr[-3000:]}")
    answer = json.loads(done.stdout)
    peak = int(done.stderr.strip().splitlines()[-1]) / 1024 if timed else float("nan")
    return {"seconds": seconds, "rss_mb": peak, "total": answer["total"],
            "hashes": [item["content_hash"] for item in answer["results"]]}


def remove_saved_index(data_dir: Path) -> None:
    shutil.rmtree(data_dir / "index", ignore_errors=True)


def measure(data_dir: Path, env: dict[str, str], runs: int, before_runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {"encoder": run_probe("encoder", data_dir, env)}
    print("  encoder:", json.dumps(out["encoder"]), file=sys.stderr, flush=True)
    remove_saved_index(data_dir)
    out["index_before"] = run_probe("index", data_dir, env)
    print("  index before:", json.dumps(out["index_before"]), file=sys.stderr, flush=True)
    out["cli_before"] = []
    for _ in range(before_runs):
        remove_saved_index(data_dir)
        out["cli_before"].append(cli_search(data_dir, env))
        print("  cli before:", out["cli_before"][-1]["seconds"], file=sys.stderr, flush=True)
    remove_saved_index(data_dir)
    out["restart_before"] = run_probe("restart", data_dir, env)  # builds, serves from the ANN, saves
    print("  restart before:", json.dumps(out["restart_before"])[:300], file=sys.stderr, flush=True)
    out["index_after"] = run_probe("index", data_dir, env)
    print("  index after:", json.dumps(out["index_after"]), file=sys.stderr, flush=True)
    out["cli_after"] = []
    for _ in range(runs):
        out["cli_after"].append(cli_search(data_dir, env))
        print("  cli after:", out["cli_after"][-1]["seconds"], file=sys.stderr, flush=True)
    out["restart_after"] = run_probe("restart", data_dir, env)
    out["warm"] = run_probe("warm", data_dir, env)
    print("  warm:", json.dumps(out["warm"])[:300], file=sys.stderr, flush=True)
    return out


# --------------------------------------------------------------------------------------------- the report


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def _overlap(a: list[str], b: list[str]) -> float:
    return len(set(a) & set(b)) / max(len(a), 1)


def report(n: int, runs: int, m: dict[str, Any], build_s: float | None) -> str:
    from anagnorisis.search.vector_index import ANN_MIN_ITEMS

    enc = m["encoder"]
    before, after = _median(m["cli_before"], "seconds"), _median(m["cli_after"], "seconds")
    rb, ra = m["restart_before"], m["restart_after"]
    restart_before, restart_after = rb["ann_answer_at"] - rb["started"], ra["ann_answer_at"] - ra["started"]
    warm = m["warm"]
    lines = [
        f"# Cold meaning search, {n:,} × {DIM} (issue #21)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores ({platform.processor() or 'cpu'}), "
        f"{_ram_gb():.0f} GB RAM, Python {platform.python_version()}. Load average (1 min) at the start and end: "
        f"{LOAD_AT_START:.1f} and {os.getloadavg()[0]:.1f} (other jobs shared the cores). Page cache warm: every "
        "file was read earlier in the run. Before = the saved index removed (vectors loaded from DuckDB and the "
        "index rebuilt, as every start did until now); after = the index saved beside the database. "
        "Medians of fresh processes where it says so; every number from this run.",
        "",
        f"Library: {n:,} image records and {n:,} stored 768-d vectors (bench/search.py's clustered set) in "
        "DuckDB, written through the store's writer and `save_vectors`" + (f" in {build_s:.0f} s" if build_s else "")
        + "; the files themselves are not on disk (search never opens them). Text model: a randomly "
        "initialised SigLIP of siglip-base-patch16-224's size (203M parameters, 813 MB of fp32 weights), since "
        "the real weights are not on this offline machine; it loads as the real one would, its answers mean "
        "nothing.",
        "",
        "| measurement | before | after | after / before |",
        "|---|---|---|---|",
        f"| (a) CLI `search images QUERY --json`, process start → result, median of {len(m['cli_before'])} before"
        f" and {len(m['cli_after'])} after | {before:.1f} s | "
        f"{after:.1f} s | {after / before:.2f} |",
        f"| (a) the same search with the text model replaced by a fixed vector (index, store, CLI only) | "
        f"{m['index_before']['seconds']:.1f} s ({m['index_before']['engine']}) | "
        f"{m['index_after']['seconds']:.2f} s ({m['index_after']['engine']}) | "
        f"{m['index_after']['seconds'] / m['index_before']['seconds']:.3f} |",
        f"| (a) peak RSS of the CLI process | {_median(m['cli_before'], 'rss_mb'):,.0f} MB | "
        f"{_median(m['cli_after'], 'rss_mb'):,.0f} MB | "
        f"{_median(m['cli_after'], 'rss_mb') / _median(m['cli_before'], 'rss_mb'):.2f} |",
        f"| (c) restart: Session start → a meaning search answered by the ANN index (exact below "
        f"{ANN_MIN_ITEMS:,} rows) | {restart_before:.1f} s ({rb['engine']}) | {restart_after:.1f} s ({ra['engine']})"
        f" | {restart_after / restart_before:.2f} |",
        f"| (c) restart: first answer (exact until the ANN serves) | {rb['first_answer_at'] - rb['started']:.1f} s"
        f" ({'exact' if rb['first_was_exact'] else 'ann'}) | {ra['first_answer_at'] - ra['started']:.1f} s "
        f"({'exact' if ra['first_was_exact'] else 'ann'}) | |",
        "",
        f"Text model alone, in a fresh process: from process start to the model resolved (imports included) "
        f"{enc['resolve_s']:.1f} s, then loading "
        f"it and encoding the first query {enc['load_and_first_encode_s']:.1f} s, a further query "
        f"{enc['next_encode_s'] * 1e3:.0f} ms. The CLI search loads it first, then opens the index (one after "
        "the other: loading both at once was slower on 2 cores), so it takes about the sum of this and the row "
        "above.",
        "",
        f"(b) Warm, one Session whose index serves from the ANN: meaning search p50 {warm['search_ms']['p50']:.0f} ms"
        f" / p95 {warm['search_ms']['p95']:.0f} ms for 50 queries, of which encoding the query p50 "
        f"{warm['encode_ms']['p50']:.0f} ms / p95 {warm['encode_ms']['p95']:.0f} ms; RSS of that process "
        f"{warm['rss_mb']:,.0f} MB.",
        "",
        "In the restart before, the ANN build took "
        + (f"{rb['build_s']:.0f} s" if rb.get("build_s") else "no time (exact only)")
        + "; the index was saved as soon as it served (the first ANN answer waited for that save, which holds the "
        "index's lock while it writes). Same answers: the after CLI page shares "
        f"{_overlap(m['cli_after'][0]['hashes'], m['cli_before'][0]['hashes']):.0%} of its 24 files with the "
        "before page (before answered exactly, while the ANN was still building; after from the ANN) and "
        f"{_overlap(m['cli_after'][0]['hashes'], rb['hashes']):.0%} with the ANN answer of the restart before.",
        "",
        "Rows: `python bench/cold_search.py" + ("" if n == 1_000_000 else f" --n {n}") + "`. Probes run as "
        "`bench/cold_search.py --probe KIND` subprocesses; restart is measured on the Session (the object the "
        "app keeps), not with Gradio started.",
    ]
    return "\n".join(lines) + "\n"


def _ram_gb() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="files and vectors (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=3, help="fresh CLI processes with the saved index (median)")
    parser.add_argument("--before-runs", type=int, default=1, help="fresh CLI processes without it (minutes each)")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/anagnorisis-bench-cold"))
    parser.add_argument("--out", type=Path, default=None, help="default bench/results/cold-search[-N].md")
    parser.add_argument("--keep", action="store_true", help="keep the model and the library for another run")
    parser.add_argument("--probe", choices=("encoder", "restart", "warm", "index"), help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(args.probe, args.data_dir)))
        return
    model = build_model(args.work_dir / "model")
    data_dir = args.work_dir / f"data-{args.n}"
    marker = data_dir / ".built"
    build_s = float(marker.read_text()) if marker.exists() else None
    if not marker.exists():
        shutil.rmtree(data_dir, ignore_errors=True)
        print(f"building a library of {args.n:,} files", file=sys.stderr, flush=True)
        started = time.perf_counter()
        build_library(data_dir, str(model), args.n)
        build_s = time.perf_counter() - started
        marker.write_text(f"{build_s:.1f}")
    env = {**os.environ, "ANAGNORISIS_IMAGES_MODEL": str(model), "PYTHONPATH": str(REPO)}
    try:
        measured = measure(data_dir, env, args.runs, args.before_runs)
    finally:
        if not args.keep:
            shutil.rmtree(args.work_dir, ignore_errors=True)
    table = report(args.n, args.runs, measured, build_s)
    out = args.out or REPO / "bench" / "results" / ("cold-search.md" if args.n == 1_000_000 else
                                                      f"cold-search-{args.n}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table, encoding="utf-8")
    (out.with_suffix(".json")).write_text(json.dumps(measured, indent=1), encoding="utf-8")
    print(table)
    print(f"written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
