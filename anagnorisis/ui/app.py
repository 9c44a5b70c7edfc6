"""The Gradio app: `build_app(...)` returns a fresh `AnagnorisisBlocks`; `main()` is what `python app.py` runs."""
from __future__ import annotations

import argparse
import ipaddress
import os
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402  (the environment above must be set before Gradio is imported)

from anagnorisis.config import Settings, load_settings  # noqa: E402

TAB_PLANS = {
    "Images": "Browse, search and rate your images.",
    "Music": "Library, player, playlists and radio by your taste.",
    "Text": "Read, search and rate your documents.",
    "Videos": "Preview, play and rate your videos.",
    "Train": "Teach the taste model your ratings and watch it learn.",
    "Wiki": "How everything works.",
    "Settings": "Library folders, models, backups.",
}


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings, host: str, share: bool) -> tuple[str, str] | None:
    """The auth pair to use; raises PermissionError when the app would be exposed without credentials (SPEC §8)."""
    credentials = (settings.username, settings.password) if settings.username and settings.password else None
    exposed = share or (not is_loopback(host) and not settings.container)
    if exposed and credentials is None:
        what = "--share" if share else f"binding {host}"
        raise PermissionError(
            f"{what} exposes your library beyond this machine: set ANAGNORISIS_USERNAME and ANAGNORISIS_PASSWORD first"
        )
    return credentials


class AnagnorisisBlocks(gr.Blocks):
    """A Blocks whose launch() always passes share and auth explicitly and refuses unsafe exposure."""

    settings: Settings

    def launch(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        host = kwargs.pop("server_name", None) or self.settings.host
        share = bool(kwargs.pop("share", False))
        auth = check_exposure(self.settings, host, share)
        kwargs.setdefault("server_port", self.settings.port)
        return super().launch(*args, server_name=host, share=share, auth=kwargs.pop("auth", None) or auth, **kwargs)


def build_app(data_dir: str | None = None, config: str | None = None, **settings: Any) -> AnagnorisisBlocks:
    resolved = load_settings({"data_dir": data_dir, "config": config, **settings})
    with AnagnorisisBlocks(title="Anagnorisis", analytics_enabled=False) as app:
        app.settings = resolved
        gr.Markdown("# Anagnorisis")
        for name, plan in TAB_PLANS.items():
            with gr.Tab(name):
                gr.Markdown(f"{plan}\n\n*This tab is being built; the command line (`python -m anagnorisis --help`) "
                            "already scans, rates, exports and imports.*")
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python app.py", description="Serve the Anagnorisis UI.")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--share", action="store_true")
    parser.add_argument("--data-dir")
    parser.add_argument("--config")
    args = parser.parse_args(argv)
    app = build_app(args.data_dir, args.config, host=args.host, port=args.port)
    try:
        app.launch(share=args.share)
    except PermissionError as error:
        print(f"error: {error}")
        return 2
    return 0
