"""The example notebook runs in a Jupyter kernel: the app answers on loopback, share without credentials is refused."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO
from tests.ui.conftest import free_port


def test_the_example_notebook_runs_and_guards_sharing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("ANAGNORISIS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ANAGNORISIS_PORT", str(port))
    monkeypatch.setenv("GRADIO_SHARE", "True")  # Gradio would turn sharing on by itself; we must not
    notebook = nbformat.read(REPO / "examples" / "notebook.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO / "examples")}}).execute()
    printed = "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                      for output in cell.get("outputs", []))
    assert f"app answers on http://127.0.0.1:{port}/ with HTTP 200" in printed
    assert "share refused:" in printed and "ANAGNORISIS_USERNAME" in printed
    assert not (tmp_path / "data" / "app.json").exists()
