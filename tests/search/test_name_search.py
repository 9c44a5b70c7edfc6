"""Name search: typos, accents, separators, case, and the file's own name weighing more than its folders."""
from __future__ import annotations

from anagnorisis.search import SearchRequest, normalise_name, run_search

LIBRARY = [
    "misc/beach.jpg",
    "beach/img_001.jpg",
    "holiday/beach_house.jpg",
    "2019/sunset over the sea.jpg",
    "Café de Flore.png",
    "Beyoncé - Halo.jpg",
    "my_holiday-2019.final.jpg",
    "cats/tabby.jpg",
    "documents/scan.png",
]


def found(make_record, query: str, **options) -> list[str]:
    records = [make_record(path) for path in LIBRARY]
    result = run_search(SearchRequest("images", query, mode="name", **options), records)
    assert result.mode == "name" and result.sort is None
    return [item["relative_path"] for item in result.results]


def test_a_typo_still_finds_the_file(make_record) -> None:
    assert found(make_record, "sunest")[0] == "2019/sunset over the sea.jpg"
    assert found(make_record, "tabbby")[0] == "cats/tabby.jpg"


def test_accents_and_case_do_not_matter(make_record) -> None:
    assert found(make_record, "cafe de flore")[0] == "Café de Flore.png"
    assert found(make_record, "BEYONCE HALO")[0] == "Beyoncé - Halo.jpg"
    assert normalise_name("Ça_va-Bien.Ünïcode") == "ca va bien unicode"


def test_separators_are_folded_into_spaces(make_record) -> None:
    assert found(make_record, "my holiday 2019 final")[0] == "my_holiday-2019.final.jpg"
    assert found(make_record, "my-holiday_2019")[0] == "my_holiday-2019.final.jpg"


def test_the_file_name_outranks_the_same_word_in_a_folder(make_record) -> None:
    ranked = found(make_record, "beach")
    assert ranked[:3] == ["misc/beach.jpg", "holiday/beach_house.jpg", "beach/img_001.jpg"]


def test_a_folder_match_is_found_and_explained(make_record) -> None:
    records = [make_record(path) for path in LIBRARY]
    result = run_search(SearchRequest("images", "documents", mode="name"), records)
    assert result.results[0]["relative_path"] == "documents/scan.png"
    assert result.results[0]["reason"].startswith("path match")


def test_unrelated_names_are_not_matches(make_record) -> None:
    records = [make_record(path) for path in LIBRARY]
    result = run_search(SearchRequest("images", "quarterly budget spreadsheet", mode="name"), records)
    assert result.total == 0 and result.results == []


def test_scores_fall_along_the_ranking_and_reasons_name_the_match(make_record) -> None:
    records = [make_record(path) for path in LIBRARY]
    result = run_search(SearchRequest("images", "beach", mode="name"), records)
    scores = [item["score"] for item in result.results]
    assert scores == sorted(scores, reverse=True) and scores[0] == 1.0
    assert result.results[0]["reason"] == "name match 1.00"


def test_every_word_of_a_query_counts_not_just_one_shared_word(make_record) -> None:
    records = [make_record(path) for path in ("beach/beach_0359.jpg", "sunset/beach_0012.jpg", "misc/party.jpg")]
    result = run_search(SearchRequest("images", "sunst beach", mode="name"), records)
    assert [item["relative_path"] for item in result.results] == ["sunset/beach_0012.jpg"]
