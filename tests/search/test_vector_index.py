"""VectorIndex: exact search, the ANN path and its recall, incremental changes, filters, save and load."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anagnorisis.search.vector_index import IndexNotReusable, VectorIndex


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


def clustered(count: int, dim: int, clusters: int, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = unit_rows(rng.standard_normal((clusters, dim)))
    return unit_rows(centres[rng.integers(0, clusters, count)] + noise * rng.standard_normal((count, dim)))


def brute_force(matrix: np.ndarray, query: np.ndarray, k: int, mask: np.ndarray | None = None) -> np.ndarray:
    scores = matrix @ (query / np.linalg.norm(query))
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    return np.argsort(-scores, kind="stable")[:k]


def names(count: int, prefix: str = "h") -> list[str]:
    return [f"{prefix}{i:07d}" for i in range(count)]


@pytest.fixture(scope="module")
def ann_set() -> tuple[np.ndarray, np.ndarray]:
    """50k × 64 clustered vectors and 200 held-out queries from the same clusters."""
    data = clustered(50_000, 64, 1_000, 0.09, seed=1)
    rng = np.random.default_rng(2)
    queries = unit_rows(data[rng.integers(0, len(data), 200)] + 0.09 * rng.standard_normal((200, 64)))
    return data, queries


@pytest.fixture(scope="module")
def ann_index(ann_set: tuple[np.ndarray, np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> VectorIndex:
    data, _ = ann_set
    index = VectorIndex(64, ann_min_items=20_000, storage_dir=tmp_path_factory.mktemp("ann"), background=True)
    index.add(names(len(data)), data)
    assert index.wait_until_ready(timeout=120)
    return index


def recall_at_10(index: VectorIndex, data: np.ndarray, queries: np.ndarray, mask: np.ndarray | None = None) -> float:
    scores = queries @ data.T
    if mask is not None:
        scores[:, ~mask] = -np.inf
    truths = np.argpartition(-scores, 10, axis=1)[:, :10]
    hits = 0
    for query, truth in zip(queries, truths):
        found, _ = index.search(query, 10, mask)
        hits += len(set(truth.tolist()) & set(found.tolist()))
    return hits / (10 * len(queries))


def test_exact_top_k_equals_a_brute_force_reference() -> None:
    data = unit_rows(np.random.default_rng(0).standard_normal((3_000, 32)))
    index = VectorIndex(32)
    index.add(names(3_000), data * 3.0)  # not normalised on the way in: the index normalises
    for query in np.random.default_rng(1).standard_normal((20, 32)):
        found, scores = index.search(query, 10)
        reference = brute_force(data, query, 10)
        assert found.tolist() == reference.tolist()
        assert scores == pytest.approx(data[reference] @ (query / np.linalg.norm(query)), abs=1e-5)
        assert not index.uses_ann


def test_exact_search_with_a_mask_returns_only_allowed_rows_in_true_order() -> None:
    data = unit_rows(np.random.default_rng(3).standard_normal((2_000, 16)))
    index = VectorIndex(16)
    index.add(names(2_000), data)
    for fraction in (0.01, 0.5):
        mask = np.random.default_rng(4).random(2_000) < fraction
        query = np.random.default_rng(5).standard_normal(16)
        found, _ = index.search(query, 10, mask)
        assert found.tolist() == brute_force(data, query, 10, mask)[: len(found)].tolist()
        assert mask[found].all()


def test_the_ann_path_reaches_recall_at_10_of_0_95_on_clustered_vectors(ann_index: VectorIndex, ann_set) -> None:
    data, queries = ann_set
    assert ann_index.uses_ann and ann_index.rows_on_disk
    assert recall_at_10(ann_index, data, queries) >= 0.95


def test_a_filtered_ann_search_keeps_its_recall_and_returns_only_allowed_rows(ann_index: VectorIndex, ann_set) -> None:
    data, queries = ann_set
    mask = np.random.default_rng(6).random(len(data)) < 0.3
    assert recall_at_10(ann_index, data, queries[:100], mask) >= 0.95
    found, _ = ann_index.search(queries[0], 50, mask)
    assert len(found) == 50 and mask[found].all()


def test_a_small_allowed_subset_is_searched_exactly_from_the_rows_on_disk(ann_index: VectorIndex, ann_set) -> None:
    data, queries = ann_set
    mask = np.zeros(len(ann_index), dtype=bool)
    mask[np.random.default_rng(14).choice(len(data), 3_000, replace=False)] = True  # > one pread batch
    for query in queries[:5]:
        found, scores = ann_index.search(query, 10, mask)
        assert found.tolist() == brute_force(data, query, 10, mask).tolist()
        assert scores == pytest.approx(data[found] @ query, abs=1e-5)


def test_the_exact_path_serves_until_the_background_build_is_done() -> None:
    data = clustered(30_000, 32, 300, 0.1, seed=7)
    index = VectorIndex(32, ann_min_items=25_000, background=True)
    index.add(names(30_000), data)
    found, _ = index.search(data[0], 5)  # served at once, exactly or by a finished ANN index
    assert found[0] == 0
    assert index.wait_until_ready(timeout=120)
    assert index.uses_ann and not index.rows_on_disk  # no storage dir: rows stay in RAM


def test_changes_made_during_a_build_reach_the_new_ann_index() -> None:
    data = clustered(40_000, 32, 400, 0.1, seed=8)
    index = VectorIndex(32, ann_min_items=30_000, background=True)
    index.add(names(30_000), data[:30_000])  # starts the build
    index.add(names(10_000, "late"), data[30_000:])
    index.remove(names(1_000))
    assert index.wait_until_ready(timeout=120) and index.uses_ann
    assert len(index) == 39_000
    for i in (30_005, 35_123, 39_999):
        found, scores = index.search(data[i], 1)
        assert index.hashes[found[0]] == f"late{i - 30_000:07d}" and scores[0] == pytest.approx(1.0, abs=1e-5)
    found, _ = index.search(data[10], 50)
    assert all(not index.hashes[p].startswith("h000") or int(index.hashes[p][1:]) >= 1_000 for p in found)


def test_incremental_add_and_remove_keep_hashes_and_vectors_aligned(ann_index: VectorIndex, ann_set) -> None:
    data, _ = ann_set
    fresh = unit_rows(np.random.default_rng(9).standard_normal((3, 64)))
    ann_index.add(["new-a", "new-b", "new-c"], fresh)
    ann_index.remove(["h0000000", "h0000001", "new-b"])
    for name, vector in (("new-a", fresh[0]), ("new-c", fresh[2]), ("h0049999", data[49_999])):
        found, scores = ann_index.search(vector, 1)
        assert ann_index.hashes[found[0]] == name and scores[0] == pytest.approx(1.0, abs=1e-5)
        assert np.allclose(ann_index.vector(name), vector, atol=1e-6)
    assert "h0000000" not in ann_index and ann_index.vector("new-b") is None
    ann_index.add(["new-a"], fresh[1])  # replacing a vector
    found, _ = ann_index.search(fresh[1], 1)
    assert ann_index.hashes[found[0]] == "new-a"
    assert sorted(ann_index.hashes) == sorted(set(ann_index.hashes))


def test_save_and_load_give_the_same_answers(tmp_path: Path) -> None:
    data = clustered(12_000, 16, 100, 0.1, seed=10)
    index = VectorIndex(16, kind="images", model_id="m", ann_min_items=10_000, storage_dir=tmp_path / "live",
                        background=False)
    index.add(names(12_000), data)
    assert index.uses_ann
    index.save(tmp_path / "live")
    expected = [index.search(q, 10)[0].tolist() for q in data[:20]]
    index.close()
    loaded = VectorIndex.load(tmp_path / "live", ann_min_items=10_000)
    assert loaded.uses_ann and loaded.model_id == "m" and len(loaded) == 12_000
    assert [loaded.search(q, 10)[0].tolist() for q in data[:20]] == expected
    loaded.remove(["h0000005"])  # a change after the save invalidates the saved set until the next save
    with pytest.raises(IndexNotReusable):
        VectorIndex.load(tmp_path / "live")
    loaded.save(tmp_path / "live")
    assert len(VectorIndex.load(tmp_path / "live", ann_min_items=10_000)) == 11_999


def test_a_small_saved_index_loads_into_ram_and_searches_exactly(tmp_path: Path) -> None:
    data = unit_rows(np.random.default_rng(11).standard_normal((500, 8)))
    index = VectorIndex(8)
    index.add(names(500), data)
    index.save(tmp_path / "small")
    loaded = VectorIndex.load(tmp_path / "small")
    assert not loaded.uses_ann and loaded.hashes == index.hashes
    assert loaded.search(data[7], 3)[0].tolist() == brute_force(data, data[7], 3).tolist()


def test_similar_pairs_from_the_range_search_match_the_exact_pairs() -> None:
    base = clustered(3_000, 32, 300, 0.1, seed=12)
    copies = unit_rows(base[:200] + 0.01 * np.random.default_rng(13).standard_normal((200, 32)))
    index = VectorIndex(32)
    index.add(names(3_200), np.vstack([base, copies]))
    everything = np.arange(3_200)
    exact = index.similar_pairs(everything, 0.97)
    ranged = index.similar_pairs(everything, 0.97, exact_max=0)
    exact_set = set(zip(exact[0].tolist(), exact[1].tolist()))
    ranged_set = set(zip(ranged[0].tolist(), ranged[1].tolist()))
    assert len(exact_set) >= 200
    assert len(exact_set & ranged_set) >= 0.95 * len(exact_set)
    assert ranged_set <= exact_set  # candidates are confirmed with the float32 rows


def test_wrong_dimensions_and_masks_are_refused() -> None:
    index = VectorIndex(4)
    index.add(["a"], np.ones((1, 4)))
    with pytest.raises(ValueError):
        index.add(["b"], np.ones((1, 5)))
    with pytest.raises(ValueError):
        index.search(np.ones(4), 1, np.ones(3, dtype=bool))
    assert index.search(np.ones(4), 5)[0].tolist() == [0]
