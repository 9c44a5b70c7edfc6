"""The command line: JSON documents, exit codes, `rate --stdin` surviving SIGKILL."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.csv as pa_csv
import pytest

from tests.conftest import REPO, Cli
from tests.media import write_jpeg


@pytest.fixture
def photos(tmp_path: Path, cli: Cli) -> list[Path]:
    root = tmp_path / "photos"
    root.mkdir()
    paths = [write_jpeg(root / f"photo {index:02d}.jpg", color=(index * 8, 255 - index * 8, 30)) for index in range(30)]
    cli.json("library", "add", "images", str(root))
    cli.json("scan", "images")
    return paths


def test_library_list_returns_the_roots_document(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    cli.json("library", "add", "music", str(tmp_path / "m"))
    roots = cli.json("library", "list")["roots"]
    assert {"kind": "music", "path": str((tmp_path / "m").resolve()), "from_config": False} in roots
    assert all(set(root) == {"kind", "path", "from_config"} for root in roots)


def test_a_nested_root_of_the_same_kind_is_refused_with_the_reason(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    cli.json("library", "add", "images", str(tmp_path / "a"))
    inner = cli("--json", "library", "add", "images", str(tmp_path / "a" / "b"))
    assert inner.code == 1 and "inside" in inner.json["error"]["message"]
    assert cli.json("library", "add", "music", str(tmp_path / "a" / "b"))["roots"], "another kind may nest"
    missing = cli("--json", "library", "add", "images", str(tmp_path / "nope"))
    assert missing.code == 1 and "does not exist" in missing.json["error"]["message"]


def test_global_options_are_accepted_after_the_command(cli: Cli, photos: list[Path]) -> None:
    from anagnorisis.cli import run
    import io

    out = io.StringIO()
    assert run(["rate", str(photos[0]), "5", "--json", "--data-dir", str(cli.data_dir)], stdout=out) == 0
    assert json.loads(out.getvalue())["record"]["user_rating"] == 5.0


def test_the_rate_record_has_every_spec_key(cli: Cli, photos: list[Path]) -> None:
    record = cli.json("rate", str(photos[0]), "6.5")["record"]
    assert {"path", "root", "relative_path", "kind", "content_hash", "size", "user_rating", "model_rating",
            "model_rating_stale", "uncertainty", "full_plays", "skips", "last_played"} <= set(record)
    assert record["path"] == str(photos[0]) and record["kind"] == "images" and record["model_rating"] is None


@pytest.mark.parametrize(
    "args",
    [
        ("rate", "{photo}", "11"),
        ("rate", "{photo}", "-1"),
        ("rate", "{photo}", "nan"),
        ("rate", "/etc/hostname", "5"),
        ("scan", "podcasts"),
        ("library", "add", "podcasts", "/tmp"),
        ("frobnicate",),
        ("search", "images", "--sort", "loudness"),
        ("search", "images", "sunset", "--sort", "date"),
        ("search", "images", "--sort", "length"),
        ("search", "podcasts"),
        ("search", "images", "--rating", "3:11"),
        ("search", "images", "--mode", "telepathy"),
    ],
)
def test_usage_errors_exit_2_with_a_json_error(cli: Cli, photos: list[Path], args: tuple[str, ...]) -> None:
    result = cli("--json", *(arg.format(photo=photos[0]) for arg in args))
    assert result.code == 2
    assert result.json["error"]["code"] == "usage" and result.json["error"]["message"]


def test_a_query_is_never_read_as_a_sort_key_and_sort_words_are_normalised(cli: Cli, photos: list[Path]) -> None:
    by_name = cli.json("search", "images", "rating", "--mode", "name")
    assert by_name["mode"] == "name" and by_name["sort"] is None
    spaced = cli.json("search", "images", "--sort", "unrated first")
    assert spaced["sort"] == "unrated-first" and spaced["total"] == 30
    page = cli.json("search", "images", "--sort", "file_size", "--offset", "24", "--limit", "24")
    assert page["sort"] == "file-size" and len(page["results"]) == 6


def test_json_output_is_exactly_one_object_even_from_a_subprocess(cli: Cli, photos: list[Path]) -> None:
    result = cli.subprocess("--json", "scan")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["unchanged"] == 30


def _ratings_in(cli: Cli) -> dict[str, float]:
    cli.json("export", str(cli.data_dir / "check.csv"))
    rows = pa_csv.read_csv(cli.data_dir / "check.csv").to_pylist()
    return {row["path"]: row["user_rating"] for row in rows if row["user_rating"] is not None}


@pytest.mark.parametrize("acknowledged", [1, 9, 23])
def test_a_sigkilled_rate_stdin_loses_no_acknowledged_rating(cli: Cli, photos: list[Path], acknowledged: int) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "anagnorisis", "--data-dir", str(cli.data_dir), "rate", "--stdin"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
    )
    assert process.stdin is not None and process.stdout is not None
    expected: dict[str, float] = {}
    try:
        for index, photo in enumerate(photos):
            rating = (index % 21) / 2
            process.stdin.write(f"{photo}\t{rating}\n")
            process.stdin.flush()
            assert process.stdout.readline().strip() == "ok"
            expected[str(photo)] = rating
            if len(expected) == acknowledged:
                process.stdin.write(f"{photos[-1]}\t10\n")  # one more in flight, never acknowledged
                process.stdin.flush()
                os.kill(process.pid, signal.SIGKILL)
                break
    finally:
        process.kill()
        process.wait()
    found = _ratings_in(cli)
    for path, rating in expected.items():
        assert found.get(path) == rating, f"acknowledged rating of {path} lost"


def test_embed_computes_missing_vectors_once_and_reports_the_model(cli: Cli, photos: list[Path]) -> None:
    first = cli.json("embed", "images")
    assert (first["embedded"], first["cached"], first["failed"]) == (30, 0, [])
    assert first["model"] == "basic-image-v1", "no SigLIP here: the basic features serve"
    again = cli.json("embed")
    assert again["kinds"]["images"]["cached"] == 30 and again["embedded"] == 0
    assert cli("--json", "embed", "--model", "basic").code == 2
    missing = cli("--json", "embed", "images", "--model", "nonexistent/model")  # named, so no quiet fallback
    assert missing.code == 1 and missing.json["error"]["message"].startswith("--model nonexistent/model: ")


def test_models_list_names_every_kind_and_the_fallbacks(cli: Cli) -> None:
    rows = cli.json("models", "list")["models"]
    assert {row["kind"] for row in rows} == {"images", "music", "text", "videos"}
    assert any(row["id"] == "basic-image-v1" and row["downloaded"] for row in rows)
    assert all({"id", "kind", "approx_size_mb", "downloaded"} <= set(row) for row in rows)


def test_models_download_is_refused_in_offline_mode(cli: Cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ANAGNORISIS_OFFLINE", "1")
    refused = cli("--json", "models", "download", "images")
    assert refused.code == 2 and "ANAGNORISIS_OFFLINE" in refused.json["error"]["message"]


def test_models_download_of_the_packaged_text_model_needs_no_network(cli: Cli) -> None:
    done = cli.json("models", "download", "text")
    assert done["downloaded"][0]["kind"] == "text" and done["downloaded"][0]["path"]
