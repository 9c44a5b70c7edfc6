"""Generated media shared by the kind tests: written once per session (well under a second)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.media import BadFile, GoodFile, make_bad_files, make_good_files, make_odd_names


@pytest.fixture(scope="session")
def good_files(tmp_path_factory: pytest.TempPathFactory) -> list[GoodFile]:
    return make_good_files(tmp_path_factory.mktemp("good"))


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> list[BadFile]:
    return make_bad_files(tmp_path_factory.mktemp("bad"))


@pytest.fixture(scope="session")
def odd_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_odd_names(tmp_path_factory.mktemp("odd"))
