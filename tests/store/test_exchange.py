"""Export → fresh data dir → import restores ratings, plays and A/B choices exactly; a second import changes nothing."""
from __future__ import annotations

from pathlib import Path

import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from anagnorisis.cli import open_library
from anagnorisis.config import load_settings
from anagnorisis.store.ratings import add_preference, record_play
from tests.conftest import Cli
from tests.media import write_jpeg, write_wav


def _library(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    root.mkdir()
    for index in range(4):
        write_jpeg(root / f"p{index}.jpg", color=(index * 60, 20, 20))
        write_wav(root / f"t{index}.wav", freq=300 + 100 * index)
    return root


def _prepare(cli: Cli, root: Path) -> None:
    cli.json("library", "add", "images", str(root))
    cli.json("library", "add", "music", str(root))
    cli.json("scan")


def _history_rows(cli: Cli) -> int:
    store = open_library(load_settings({"data_dir": str(cli.data_dir)}))
    try:
        return store.read(lambda c: c.execute("SELECT count(*) FROM rating_history").fetchone()[0])
    finally:
        store.close()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_then_import_into_a_fresh_data_dir_restores_everything(tmp_path: Path, suffix: str) -> None:
    root = _library(tmp_path)
    source = Cli(tmp_path / "source")
    _prepare(source, root)
    source.json("rate", str(root / "p0.jpg"), "7.5")
    source.json("rate", str(root / "p1.jpg"), "0")
    song = source.json("rate", str(root / "t0.wav"), "10")["record"]["content_hash"]
    other = source.json("unrate", str(root / "t1.wav"))["record"]["content_hash"]
    store = open_library(load_settings({"data_dir": str(source.data_dir)}))
    for event in ("start", "full", "full", "skip"):
        record_play(store, song, event)
    add_preference(store, song, other, tie=False, kind="music")
    add_preference(store, other, song, tie=True, kind="music")
    store.close()

    exported = tmp_path / f"ratings{suffix}"
    first = source.json("export", str(exported))
    assert first["rows"] == 8 and first["preferences"] == 2

    target = Cli(tmp_path / "target")
    _prepare(target, root)
    imported = target.json("import", str(exported))
    assert imported["ratings_applied"] == 3 and imported["plays_updated"] == 1 and imported["preferences_added"] == 2

    again = tmp_path / f"again{suffix}"
    target.json("export", str(again))
    read = pa_csv.read_csv if suffix == ".csv" else pq.read_table
    assert read(again).to_pylist() == read(exported).to_pylist()
    prefs = lambda path: read(path.with_name(f"{path.stem}.preferences{suffix}")).to_pylist()  # noqa: E731
    assert prefs(again) == prefs(exported)

    history = _history_rows(target)
    second = target.json("import", str(exported))
    assert (second["ratings_applied"], second["plays_updated"], second["preferences_added"]) == (0, 0, 0)
    assert _history_rows(target) == history


def test_the_later_rating_wins_on_import_and_a_tie_keeps_ours(tmp_path: Path) -> None:
    root = _library(tmp_path)
    theirs, ours = Cli(tmp_path / "theirs"), Cli(tmp_path / "ours")
    _prepare(theirs, root)
    _prepare(ours, root)
    theirs.json("rate", str(root / "p0.jpg"), "2")
    ours.json("rate", str(root / "p0.jpg"), "9")  # rated later: ours wins
    ours.json("rate", str(root / "p1.jpg"), "4")
    theirs.json("rate", str(root / "p1.jpg"), "5")  # rated later: theirs wins
    theirs.json("export", str(tmp_path / "theirs.csv"))
    result = ours.json("import", str(tmp_path / "theirs.csv"))
    assert (result["ratings_applied"], result["ratings_kept"]) == (1, 1)
    ours.json("export", str(tmp_path / "ours.csv"))
    rows = {Path(row["path"]).name: row["user_rating"] for row in pa_csv.read_csv(tmp_path / "ours.csv").to_pylist()}
    assert rows["p0.jpg"] == 9.0 and rows["p1.jpg"] == 5.0


def test_model_ratings_are_never_imported_as_user_ratings(tmp_path: Path) -> None:
    root = _library(tmp_path)
    cli = Cli(tmp_path / "d")
    _prepare(cli, root)
    cli.json("export", str(tmp_path / "x.csv"))
    table = pa_csv.read_csv(tmp_path / "x.csv").to_pylist()
    for row in table:
        row["model_rating"], row["model_version"] = 9.0, 1
    import pyarrow as pa

    pa_csv.write_csv(pa.Table.from_pylist(table), tmp_path / "x.csv")
    assert cli.json("import", str(tmp_path / "x.csv"))["ratings_applied"] == 0


def test_an_unknown_format_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    assert cli("export", str(tmp_path / "x.json")).code == 2


def test_an_exported_row_of_content_no_file_holds_now_keeps_its_kind(tmp_path: Path) -> None:
    """A track edited in place leaves its old content's rating behind; the export still says it was music."""
    root = _library(tmp_path)
    cli = Cli(tmp_path / "data")
    _prepare(cli, root)
    old = cli.json("rate", str(root / "t0.wav"), "8")["record"]["content_hash"]
    other = cli.json("rate", str(root / "t1.wav"), "3")["record"]["content_hash"]
    store = open_library(load_settings({"data_dir": str(cli.data_dir)}))
    add_preference(store, old, other, tie=False, kind="music")
    store.close()
    write_wav(root / "t0.wav", freq=1234)  # new content; the rating follows it, the old content keeps its own
    cli.json("scan")

    exported = tmp_path / "ratings.csv"
    cli.json("export", str(exported))
    rows = {row["content_hash"]: row for row in pa_csv.read_csv(exported).to_pylist()}
    assert rows[old]["path"] in ("", None) and rows[old]["kind"] == "music", rows[old]


def test_an_export_into_a_missing_folder_says_so_and_json_gets_one_error_object(cli: Cli, tmp_path: Path) -> None:
    result = cli("--json", "export", str(tmp_path / "nowhere" / "ratings.csv"))
    assert result.code == 1
    assert result.json["error"]["message"] == (
        f"cannot write {tmp_path / 'nowhere' / 'ratings.csv'}: the folder {tmp_path / 'nowhere'} does not exist")
    assert not list(tmp_path.glob("**/*.partial"))


def test_an_import_skips_invalid_rows_with_their_reasons_and_applies_the_rest(tmp_path: Path) -> None:
    root = _library(tmp_path)
    source = Cli(tmp_path / "source")
    _prepare(source, root)
    good = source.json("rate", str(root / "p0.jpg"), "6")["record"]["content_hash"]
    exported = tmp_path / "ratings.csv"
    source.json("export", str(exported))
    rows = pa_csv.read_csv(exported).to_pylist()
    header = ",".join(rows[0])
    line = lambda **values: ",".join("" if values.get(k, row[k]) is None else str(values.get(k, row[k]))  # noqa: E731
                                     for k in rows[0])
    row = next(r for r in rows if r["content_hash"] == good)
    bad = [line(user_rating=15), line(user_rating="abc"), line(rated_at="notadate"), line(content_hash="zzz"),
           line(full_plays=-5)]
    hand_made = tmp_path / "hand made.csv"
    hand_made.write_text("\n".join([header, *bad, line()]) + "\n")

    target = Cli(tmp_path / "target")
    _prepare(target, root)
    result = target.json("import", str(hand_made))
    assert (result["rows"], result["rows_skipped"], result["ratings_applied"]) == (6, 5, 1)
    reasons = [item["reason"] for item in result["skipped"]]
    assert [item["row"] for item in result["skipped"]] == [1, 2, 3, 4, 5]
    assert "outside 0–10" in reasons[0] and "could not convert" in reasons[1] and "isoformat" in reasons[2]
    assert "'zzz' is not a content hash" in reasons[3] and "0 or more" in reasons[4]
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    failed = target("--json", "import", str(broken))
    assert failed.code == 1 and "cannot be read as PARQUET" in failed.json["error"]["message"]
