"""Move, rename and trash keep the database in step, never lose a rating, and obey ANAGNORISIS_FILE_ACTIONS."""
from __future__ import annotations

from pathlib import Path

import pytest

from anagnorisis.cli import open_library
from anagnorisis.config import load_settings
from anagnorisis.library.actions import ActionRefused, move_file, rename_file, trash_file
from anagnorisis.store.records import present_files
from tests.conftest import Cli
from tests.media import write_jpeg


@pytest.fixture
def rated(tmp_path: Path, cli: Cli) -> tuple[Cli, Path, Path]:
    root = tmp_path / "photos"
    (root / "keep").mkdir(parents=True)
    photo = write_jpeg(root / "photo.jpg")
    cli.json("library", "add", "images", str(root))
    cli.json("scan")
    cli.json("rate", str(photo), "9")
    return cli, root, photo


def _records(cli: Cli) -> dict[str, float | None]:
    store = open_library(load_settings({"data_dir": str(cli.data_dir)}))
    try:
        return {record["path"]: record["user_rating"] for record in present_files(store, "images")}
    finally:
        store.close()


def _with_store(cli: Cli, action, *args, **kwargs):  # type: ignore[no-untyped-def]
    store = open_library(load_settings({"data_dir": str(cli.data_dir)}))
    try:
        return action(store, "images", *args, **kwargs)
    finally:
        store.close()


def test_move_and_rename_keep_the_rating_without_a_rescan(rated: tuple[Cli, Path, Path]) -> None:
    cli, root, photo = rated
    moved = _with_store(cli, move_file, str(photo), str(root / "keep"), setting="move")
    assert _records(cli) == {moved: 9.0}
    renamed = _with_store(cli, rename_file, moved, "best", setting="move")
    assert renamed.endswith("best.jpg") and _records(cli) == {renamed: 9.0}
    assert cli.json("scan")["unchanged"] == 1


def test_trash_marks_the_file_missing_and_keeps_its_rating_for_its_return(rated: tuple[Cli, Path, Path],
                                                                          tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    cli, root, photo = rated
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    content = photo.read_bytes()
    _with_store(cli, trash_file, str(photo), setting="trash")
    assert not photo.exists() and _records(cli) == {}
    photo.write_bytes(content)  # restored from the trash
    cli.json("scan")
    assert _records(cli) == {str(photo): 9.0}


def test_actions_obey_the_setting_and_stay_inside_the_roots(rated: tuple[Cli, Path, Path], tmp_path: Path) -> None:
    cli, root, photo = rated
    with pytest.raises(ActionRefused, match="ANAGNORISIS_FILE_ACTIONS=off"):
        _with_store(cli, move_file, str(photo), str(root / "keep"), setting="off")
    with pytest.raises(ActionRefused, match="trash"):
        _with_store(cli, trash_file, str(photo), setting="move")
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(ActionRefused, match="not inside"):
        _with_store(cli, move_file, str(photo), str(tmp_path / "elsewhere"), setting="move")
    with pytest.raises(ActionRefused, match="valid file name"):
        _with_store(cli, rename_file, str(photo), "../escape", setting="move")
    assert photo.exists()
