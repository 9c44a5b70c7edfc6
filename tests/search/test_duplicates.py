"""The duplicates sort: groups above the encoder's cosine threshold, biggest first, members adjacent."""
from __future__ import annotations

import numpy as np

from anagnorisis.search.vector_index import VectorIndex
from anagnorisis.search import SearchRequest, duplicate_threshold_for, run_search


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def library(make_record) -> tuple[list[dict], VectorIndex]:
    rng = np.random.default_rng(0)
    dim = 64
    base = [unit(rng.standard_normal(dim)) for _ in range(8)]
    near = lambda v, s: unit(v + s * rng.standard_normal(dim) / np.sqrt(dim))
    vectors = {
        "trio-a.jpg": base[0], "trio-b.jpg": near(base[0], 0.1), "trio-c.jpg": near(base[0], 0.1),
        "pair-a.jpg": base[1], "pair-b.jpg": near(base[1], 0.1),
        "alone-1.jpg": base[2], "alone-2.jpg": base[3], "far-cousin.jpg": near(base[2], 0.8),
    }
    records = [make_record(name, size=100 + i) for i, name in enumerate(vectors)]
    records.append(make_record("copy-of-pair-a.jpg", content_hash="hash-pair-a.jpg", size=50))  # same content
    records.append(make_record("copy-1.jpg", content_hash="same", size=10))  # identical, never embedded
    records.append(make_record("copy-2.jpg", content_hash="same", size=20))
    index = VectorIndex(dim, model_id="google/siglip-base-patch16-224")
    index.add([f"hash-{name}" for name in vectors], np.array(list(vectors.values())))
    return records, index


def groups_of(result) -> list[list[str]]:
    groups: dict[str, list[str]] = {}
    for item in result.results:
        groups.setdefault(item["reason"].split(" (")[0], []).append(item["relative_path"])
    return list(groups.values())


def test_duplicates_come_in_adjacent_groups_biggest_first_singletons_left_out(make_record) -> None:
    records, index = library(make_record)
    result = run_search(SearchRequest("images", sort="duplicates", limit=100), records, index=index)
    groups = groups_of(result)
    # Equal sizes: the group whose first member's path sorts first (pair-b.jpg before trio-c.jpg) leads.
    assert groups == [
        ["pair-b.jpg", "pair-a.jpg", "copy-of-pair-a.jpg"],
        ["trio-c.jpg", "trio-b.jpg", "trio-a.jpg"],
        ["copy-2.jpg", "copy-1.jpg"],
    ]
    assert result.total == 8
    listed = {item["relative_path"] for item in result.results}
    assert not listed & {"alone-1.jpg", "alone-2.jpg", "far-cousin.jpg"}
    assert result.results[0]["reason"].startswith("duplicate group 1 (3 files), similarity")


def test_group_members_list_the_largest_file_first(make_record) -> None:
    records, index = library(make_record)
    result = run_search(SearchRequest("images", sort="duplicates", limit=100), records, index=index)
    for group in groups_of(result):
        sizes = [next(r["size"] for r in records if r["relative_path"] == name) for name in group]
        assert sizes == sorted(sizes, reverse=True)


def test_ascending_order_lists_the_smallest_groups_first(make_record) -> None:
    records, index = library(make_record)
    result = run_search(SearchRequest("images", sort="duplicates", order="asc", limit=100), records, index=index)
    assert [len(group) for group in groups_of(result)] == [2, 3, 3]


def test_a_lower_threshold_joins_looser_neighbours(make_record) -> None:
    records, index = library(make_record)
    result = run_search(SearchRequest("images", sort="duplicates", limit=100), records, index=index,
                        duplicate_threshold=0.5)
    assert any({"alone-1.jpg", "far-cousin.jpg"} <= set(group) for group in groups_of(result))


def test_each_encoder_has_its_own_threshold() -> None:
    assert duplicate_threshold_for("basic-image-v1") > duplicate_threshold_for("google/siglip-base-patch16-224")
    assert duplicate_threshold_for("some/unknown-model") == 0.95


def test_without_an_index_only_identical_content_groups(make_record) -> None:
    records, _ = library(make_record)
    result = run_search(SearchRequest("images", sort="duplicates", limit=100), records)
    assert groups_of(result) == [["copy-2.jpg", "copy-1.jpg"], ["pair-a.jpg", "copy-of-pair-a.jpg"]]
