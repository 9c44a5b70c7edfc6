"""run_search as the CLI and UI call it: modes, usage errors, filters, paging and the JSON document."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from anagnorisis.search.vector_index import VectorIndex
from anagnorisis.search import (
    MeaningSearchUnavailable,
    SearchError,
    SearchRequest,
    UsageError,
    parse_rating_range,
    run_search,
)

DIM = 16


def embedded_library(make_record, count: int = 60) -> tuple[list[dict], VectorIndex, np.ndarray]:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((count, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    records = [make_record(f"{'sub/' if i % 2 else ''}{i:03d}.{'png' if i % 3 == 0 else 'jpg'}",
                           user_rating=float(i % 11) if i % 4 else None, model_rating=float((i * 7) % 11),
                           size=i * 10, mtime=1.6e9 + i) for i in range(count)]
    index = VectorIndex(DIM, model_id="test-model")
    index.add([r["content_hash"] for r in records[:-5]], vectors[:-5])  # the last five are not embedded yet
    return records, index, vectors


# ----------------------------------------------------------------------------------------------- modes


def test_auto_mode_reads_an_existing_file_path_as_similar(make_record, tmp_path: Path) -> None:
    records, index, vectors = embedded_library(make_record)
    target = records[10]["path"]
    result = run_search(SearchRequest("images", target), records, index=index, encode_text=lambda q: vectors[0])
    assert result.mode == "similar"
    assert target not in [item["path"] for item in result.results]  # the file itself is left out
    expected = np.argsort(-(vectors[:-5] @ vectors[10]))[1:4]
    assert [item["path"] for item in result.results[:3]] == [records[i]["path"] for i in expected]
    assert result.results[0]["reason"].startswith("similarity ")


def test_auto_mode_reads_text_as_meaning_with_a_text_tower_and_as_name_without(make_record) -> None:
    records, index, vectors = embedded_library(make_record)
    with_tower = run_search(SearchRequest("images", "a dog on a beach"), records, index=index,
                            encode_text=lambda q: vectors[3])
    assert with_tower.mode == "meaning" and with_tower.results[0]["path"] == records[3]["path"]
    assert with_tower.results[0]["reason"] == "meaning match 1.000"
    without = run_search(SearchRequest("images", "007"), records, index=index)
    assert without.mode == "name" and without.results[0]["relative_path"] == "sub/007.jpg"


def test_an_explicit_mode_is_never_overridden(make_record) -> None:
    records, index, vectors = embedded_library(make_record)
    as_name = run_search(SearchRequest("images", records[10]["path"], mode="name"), records, index=index,
                         encode_text=lambda q: vectors[0])
    assert as_name.mode == "name" and as_name.results[0]["path"] == records[10]["path"]


def test_a_query_is_never_read_as_a_sort_key(make_record) -> None:
    records = [make_record("rating.jpg"), make_record("other.jpg", user_rating=10)]
    result = run_search(SearchRequest("images", "rating"), records)
    assert result.mode == "name" and result.sort is None
    assert [item["relative_path"] for item in result.results] == ["rating.jpg"]


def test_meaning_search_without_a_text_tower_says_so(make_record) -> None:
    records, index, _ = embedded_library(make_record)
    with pytest.raises(MeaningSearchUnavailable, match="meaning search is unavailable.*no text tower"):
        run_search(SearchRequest("images", "sunset", mode="meaning"), records, index=index)
    assert issubclass(MeaningSearchUnavailable, UsageError)


def test_similar_to_a_file_without_an_embedding_is_a_clear_failure(make_record) -> None:
    records, index, _ = embedded_library(make_record)
    with pytest.raises(SearchError, match="no embedding.*embed images"):
        run_search(SearchRequest("images", records[-1]["path"], mode="similar"), records, index=index)
    with pytest.raises(UsageError, match="no such file"):
        run_search(SearchRequest("images", "/nowhere/x.jpg", mode="similar"), records, index=index)


def test_similar_to_an_outside_file_uses_the_path_encoder(make_record, tmp_path: Path) -> None:
    records, index, vectors = embedded_library(make_record)
    outside = tmp_path / "query.jpg"
    outside.write_bytes(b"not really a jpeg")
    result = run_search(SearchRequest("images", str(outside)), records, index=index,
                        vector_of_path=lambda path: vectors[20])
    assert result.mode == "similar" and result.results[0]["path"] == records[20]["path"]


def test_not_indexed_counts_files_without_a_vector(make_record) -> None:
    records, index, vectors = embedded_library(make_record)
    result = run_search(SearchRequest("images", "x", mode="meaning"), records, index=index,
                        encode_text=lambda q: vectors[0])
    assert result.not_indexed == 5 and result.total == 55


def test_meaning_search_through_the_ann_path_respects_filters_and_pages(make_record) -> None:
    rng = np.random.default_rng(1)
    count = 30_000
    vectors = rng.standard_normal((count, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    records = [make_record(f"{'keep' if i % 2 else 'drop'}/{i:05d}.jpg") for i in range(count)]
    index = VectorIndex(DIM, ann_min_items=20_000, background=False)
    index.add([r["content_hash"] for r in records], vectors)
    assert index.uses_ann
    request = SearchRequest("images", "q", mode="meaning", folder="keep", limit=10)
    page_1 = run_search(request, records, index=index, encode_text=lambda q: vectors[1])
    assert page_1.total == 15_000 and page_1.results[0]["path"] == records[1]["path"]
    assert all(item["relative_path"].startswith("keep/") for item in page_1.results)
    page_2 = run_search(SearchRequest("images", "q", mode="meaning", folder="keep", limit=10, offset=10), records,
                        index=index, encode_text=lambda q: vectors[1])
    exact = np.argsort(-(vectors[1::2] @ vectors[1]))[:20] * 2 + 1
    found = [item["path"] for item in page_1.results + page_2.results]
    assert len(set(found) & {records[i]["path"] for i in exact}) >= 19


# ---------------------------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize("options, message", [
    ({"query": "sunset", "sort": "rating"}, "--sort cannot be combined with a QUERY"),
    ({"sort": "loudness"}, "unknown sort key"),
    ({"sort": "length"}, "does not apply to images"),
    ({"rating": "3:11"}, "ratings go from 0 to 10"),
    ({"model_rating": "8:2"}, "MIN must not exceed MAX"),
    ({"rating": "high"}, "expected MIN:MAX"),
    ({"mode": "fuzzy", "query": "x"}, "unknown mode"),
    ({"order": "up"}, "unknown order"),
    ({"temperature": -1}, "--temperature"),
    ({"limit": -5}, "--limit"),
    ({"offset": 1.5}, "--offset"),
])
def test_a_bad_request_is_a_usage_error(make_record, options: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        run_search(SearchRequest("images", **options), [make_record("a.jpg")])


def test_a_key_of_another_kind_is_a_usage_error(make_record) -> None:
    with pytest.raises(UsageError, match="resolution.*does not apply to music"):
        run_search(SearchRequest("music", sort="resolution"), [make_record("a.mp3", kind="music")])
    with pytest.raises(UsageError, match="unknown kind"):
        run_search(SearchRequest("pictures"), [])


def test_rating_ranges_parse_like_the_cli_writes_them() -> None:
    assert parse_rating_range("7:10") == (7.0, 10.0)
    assert parse_rating_range(":4.5") == (0.0, 4.5)
    assert parse_rating_range("8:") == (8.0, 10.0)
    assert parse_rating_range("6") == (6.0, 6.0)
    assert parse_rating_range((2, 3)) == (2.0, 3.0)
    assert parse_rating_range(None) is None


# --------------------------------------------------------------------------------------------------- filters


def sorted_names(records, **options) -> list[str]:
    result = run_search(SearchRequest("images", sort="file-size", order="asc", limit=1_000, **options), records)
    assert result.total == len(result.results)
    return [item["relative_path"] for item in result.results]


def test_filters_select_by_folder_rating_model_rating_and_extension(make_record) -> None:
    records, _, _ = embedded_library(make_record, count=24)
    assert all(name.startswith("sub/") for name in sorted_names(records, folder="sub"))
    assert sorted_names(records, folder="/library/sub/") == sorted_names(records, folder="sub")
    assert len(sorted_names(records, folder="/library")) == 24
    assert sorted_names(records, folder="su") == []  # a folder prefix matches whole folder names only
    rated = sorted_names(records, rated=True)
    unrated = sorted_names(records, rated=False)
    assert len(rated) + len(unrated) == 24 and not set(rated) & set(unrated)
    by_rating = {r["relative_path"]: r for r in records}
    assert all(7 <= by_rating[n]["user_rating"] <= 10 for n in sorted_names(records, rating="7:10"))
    assert all(by_rating[n]["model_rating"] <= 3 for n in sorted_names(records, model_rating=(0, 3)))
    assert all(n.endswith(".png") for n in sorted_names(records, ext="PNG"))
    assert len(sorted_names(records, ext=".png,jpg")) == 24


def test_pages_join_up_to_the_whole_list_across_boundaries(make_record) -> None:
    records, _, _ = embedded_library(make_record, count=60)
    for options in ({"sort": "rating"}, {"sort": "rating", "temperature": 1.0, "seed": 9}, {"sort": "date"}):
        full = run_search(SearchRequest("images", limit=1_000, **options), records)
        pages = [run_search(SearchRequest("images", offset=offset, **options), records) for offset in (0, 24, 48)]
        assert [len(page.results) for page in pages] == [24, 24, 12]
        assert all(page.total == 60 and page.limit == 24 for page in pages)
        assert [i["path"] for page in pages for i in page.results] == [i["path"] for i in full.results]
    beyond = run_search(SearchRequest("images", sort="rating", offset=100), records)
    assert beyond.results == [] and beyond.total == 60


# ----------------------------------------------------------------------------------------------------- JSON


def test_the_result_is_the_json_document_of_the_spec(make_record) -> None:
    records, index, vectors = embedded_library(make_record, count=10)
    result = run_search(SearchRequest("images", "x", mode="meaning", limit=3), records, index=index,
                        encode_text=lambda q: vectors[2])
    document = json.loads(json.dumps(result.to_dict()))
    assert list(document) == ["kind", "query", "mode", "sort", "order", "temperature", "seed", "offset", "limit",
                              "total", "not_indexed", "results"]
    assert document["mode"] == "meaning" and document["limit"] == 3 and len(document["results"]) == 3
    first = document["results"][0]
    for key in ("path", "root", "relative_path", "kind", "content_hash", "size", "user_rating", "model_rating",
                "model_rating_stale", "uncertainty", "full_plays", "skips", "last_played", "score", "reason"):
        assert key in first
    assert "path_bytes" not in first and first["score"] == pytest.approx(1.0)
