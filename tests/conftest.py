"""Shared fixtures: offline environment, a data dir, and the CLI run in-process or as a subprocess."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

for key, value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
}.items():
    os.environ[key] = value
for key in [key for key in os.environ if key.startswith("ANAGNORISIS_")]:
    del os.environ[key]  # a developer's own settings must not leak into tests

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str = ""

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


class Cli:
    """Runs `python -m anagnorisis --data-dir DIR …` in this process (fast) or as a subprocess (end to end)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def __call__(self, *args: str, stdin: str = "") -> CliResult:
        from anagnorisis.cli import run

        out = io.StringIO()
        code = run(["--data-dir", str(self.data_dir), *args], stdout=out, stdin=io.StringIO(stdin))
        return CliResult(code, out.getvalue())

    def json(self, *args: str) -> Any:
        result = self("--json", *args)
        assert result.code == 0, result.stdout
        return result.json

    def subprocess(self, *args: str, stdin: str = "", timeout: float = 120) -> CliResult:
        done = subprocess.run(
            [sys.executable, "-m", "anagnorisis", "--data-dir", str(self.data_dir), *args],
            input=stdin, capture_output=True, text=True, timeout=timeout, cwd=REPO,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def cli(data_dir: Path) -> Cli:
    return Cli(data_dir)


STARTING_UMASK = os.umask(0o022)
os.umask(STARTING_UMASK)


@pytest.fixture(autouse=True)
def _keep_the_umask() -> Any:
    """Opening a library sets the process umask to 077 (SPEC §8); each test starts from the session's own."""
    os.umask(STARTING_UMASK)
    yield
    os.umask(STARTING_UMASK)
