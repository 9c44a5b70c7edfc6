"""Every sort key: its direction in both orders, files without a value last in both, every filtered file listed."""
from __future__ import annotations

import math

import pytest

from anagnorisis.search import SORT_KEYS, SearchRequest, run_search


def sorted_paths(records, kind: str, sort: str, order: str = "desc") -> list[str]:
    result = run_search(SearchRequest(kind, sort=sort, order=order, limit=1_000), records)
    assert result.sort == sort and result.total == len(result.results)
    return [item["relative_path"] for item in result.results]


def images_with(make_record, values: dict[str, dict]) -> list[dict]:
    return [make_record(name, **fields) for name, fields in values.items()]


CASES = {
    # key: (kind, {file: fields}, expected descending order of files with a value, files without one)
    "rating": ("images", {
        "a.jpg": {"user_rating": 3}, "b.jpg": {"model_rating": 7.5}, "c.jpg": {"user_rating": 9, "model_rating": 1},
        "d.jpg": {}}, ["c.jpg", "b.jpg", "a.jpg"], ["d.jpg"]),
    "model-rating": ("images", {
        "a.jpg": {"model_rating": 2}, "b.jpg": {"model_rating": 8, "user_rating": 1}, "c.jpg": {"user_rating": 10}},
        ["b.jpg", "a.jpg"], ["c.jpg"]),
    "most-uncertain": ("images", {
        "a.jpg": {"uncertainty": 0.2}, "b.jpg": {"uncertainty": 1.5}, "c.jpg": {}}, ["b.jpg", "a.jpg"], ["c.jpg"]),
    "file-size": ("images", {
        "a.jpg": {"size": 10}, "b.jpg": {"size": 3000}, "c.jpg": {"size": None}}, ["b.jpg", "a.jpg"], ["c.jpg"]),
    "length": ("music", {
        "a.mp3": {"metadata": {"duration": 200.0}}, "b.mp3": {"metadata": {"duration": 31.5}},
        "c.mp3": {"metadata": {}}}, ["a.mp3", "b.mp3"], ["c.mp3"]),
    "resolution": ("images", {
        "a.jpg": {"metadata": {"width": 100, "height": 100}}, "b.jpg": {"metadata": {"width": 4000, "height": 3000}},
        "c.jpg": {"metadata": {"width": 100}}}, ["b.jpg", "a.jpg"], ["c.jpg"]),
    "proportion": ("videos", {
        "a.mp4": {"metadata": {"width": 1920, "height": 1080}}, "b.mp4": {"metadata": {"width": 1080, "height": 1920}},
        "c.mp4": {"metadata": {"height": 0, "width": 3}}}, ["a.mp4", "b.mp4"], ["c.mp4"]),
    "date": ("images", {
        "a.jpg": {"metadata": {"date": "2019-07-04T12:00:00+02:00"}, "mtime": 1.7e9},
        "b.jpg": {"metadata": {}, "mtime": 1.6e9},
        "c.jpg": {"metadata": {"date": "2021:01:02 03:04:05"}, "mtime": 1.0e9},
        "d.jpg": {"metadata": {}, "mtime": None}}, ["c.jpg", "b.jpg", "a.jpg"], ["d.jpg"]),  # tag date beats mtime
    "recommendation": ("music", {
        "a.mp3": {"user_rating": 9}, "b.mp3": {"user_rating": 2}, "c.mp3": {"user_rating": 6}},
        ["a.mp3", "c.mp3", "b.mp3"], []),
}


@pytest.mark.parametrize("sort", sorted(CASES))
def test_a_sort_key_puts_the_highest_first_in_desc_and_files_without_a_value_last_in_both(make_record, sort: str) -> None:
    kind, files, descending, without = CASES[sort]
    records = [make_record(name, kind=kind, **fields) for name, fields in files.items()]
    assert sorted_paths(records, kind, sort, "desc") == descending + without
    assert sorted_paths(records, kind, sort, "asc") == descending[::-1] + without


def test_text_length_counts_characters(make_record) -> None:
    records = [make_record("a.txt", kind="text", metadata={"chars": 10, "lines": 1}),
               make_record("b.txt", kind="text", metadata={"chars": 5000, "lines": 90})]
    result = run_search(SearchRequest("text", sort="length"), records)
    assert [item["relative_path"] for item in result.results] == ["b.txt", "a.txt"]
    assert result.results[0]["reason"] == "length 5,000 characters"


def test_ties_are_broken_by_path_so_pages_are_stable(make_record) -> None:
    records = [make_record(f"{name}.jpg", user_rating=5) for name in "dbca"]
    assert sorted_paths(records, "images", "rating") == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    assert sorted_paths(records, "images", "rating", "asc") == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]


def test_unrated_first_lists_unrated_newest_first_then_rated_by_rating(make_record) -> None:
    records = [
        make_record("old.jpg", mtime=1.0e9), make_record("new.jpg", mtime=1.5e9),
        make_record("good.jpg", user_rating=9, mtime=1.7e9), make_record("poor.jpg", user_rating=2, mtime=1.8e9),
        make_record("predicted.jpg", model_rating=9.5, mtime=1.2e9),  # a model rating does not make it rated
    ]
    assert sorted_paths(records, "images", "unrated-first") == [
        "new.jpg", "predicted.jpg", "old.jpg", "good.jpg", "poor.jpg"]
    assert sorted_paths(records, "images", "unrated-first", "asc") == [
        "old.jpg", "predicted.jpg", "new.jpg", "poor.jpg", "good.jpg"]


def test_random_order_is_a_permutation_fixed_by_the_seed(make_record) -> None:
    records = [make_record(f"{i:02d}.jpg") for i in range(30)]
    first = run_search(SearchRequest("images", sort="random", seed=4, limit=100), records)
    again = run_search(SearchRequest("images", sort="random", seed=4, limit=100), records)
    other = run_search(SearchRequest("images", sort="random", seed=5, limit=100), records)
    paths = [item["path"] for item in first.results]
    assert paths == [item["path"] for item in again.results] != [item["path"] for item in other.results]
    assert sorted(paths) == sorted(record["path"] for record in records)


def test_no_query_sorts_by_date_by_default(make_record) -> None:
    records = [make_record("a.jpg", mtime=1.0e9), make_record("b.jpg", mtime=2.0e9)]
    result = run_search(SearchRequest("images"), records)
    assert result.sort == "date" and result.mode is None
    assert [item["relative_path"] for item in result.results] == ["b.jpg", "a.jpg"]


@pytest.mark.parametrize("spelling", ["file size", "file_size", "File-Size"])
def test_spaces_and_underscores_stand_for_hyphens(make_record, spelling: str) -> None:
    result = run_search(SearchRequest("images", sort=spelling), [make_record("a.jpg")])
    assert result.sort == "file-size"


def test_every_key_lists_every_filtered_file(make_record) -> None:
    records = [make_record(f"{i}.jpg", user_rating=i % 3 or None, metadata={"width": i + 1, "height": 3})
               for i in range(12)]
    for sort in SORT_KEYS:
        if sort in ("length", "duplicates"):
            continue
        result = run_search(SearchRequest("images", sort=sort, limit=100), records)
        assert result.total == 12 and len({item["path"] for item in result.results}) == 12, sort


def test_scores_and_reasons_describe_the_key(make_record) -> None:
    records = [make_record("mine.jpg", user_rating=8), make_record("model.jpg", model_rating=7.34),
               make_record("none.jpg")]
    result = run_search(SearchRequest("images", sort="rating"), records)
    assert [(item["score"], item["reason"]) for item in result.results] == [
        (8.0, "rating 8 (yours)"), (7.34, "rating 7.3 (model)"), (None, "no rating yet")]
    assert not any(isinstance(item["score"], float) and math.isnan(item["score"]) for item in result.results)
