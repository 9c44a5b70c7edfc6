"""`python -m anagnorisis …`: the CLI, and its `serve` command starting the UI (the one place both faces meet)."""
from typing import Any

from anagnorisis.cli import main


def _serve(*args: Any, **kwargs: Any) -> int:
    from anagnorisis.ui.serve import serve  # Gradio loads here, after the options were parsed

    return serve(*args, **kwargs)


raise SystemExit(main(serve=_serve))
