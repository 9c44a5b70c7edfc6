"""`python app.py` and `python -m anagnorisis serve`: the options that start the UI, parsed before Gradio loads."""
from __future__ import annotations

import argparse

from anagnorisis.serve_options import add_serve_options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python app.py", description="Serve the Anagnorisis UI on this machine.")
    add_serve_options(parser)
    parser.add_argument("--data-dir", help="data folder: database, models, previews (default ./data)")
    parser.add_argument("--config", help="YAML settings file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return serve(args.host, args.port, args.share, args.data_dir, args.config, open_browser=not args.no_browser)


def serve(host: str | None, port: int | None, share: bool, data_dir: str | None, config: str | None,
          open_browser: bool = False) -> int:
    """Start the app and serve until stopped; the exit status (1: the data dir is taken, 2: unsafe exposure)."""
    from anagnorisis.ui.app import run_app  # Gradio loads here, after --help had its chance

    return run_app(host=host, port=port, share=share, data_dir=data_dir, config=config, open_browser=open_browser)
