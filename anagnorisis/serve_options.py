"""The options that start the UI, shared by `python app.py` and `python -m anagnorisis serve` (parsed before
Gradio loads, so --help and a wrong option cost nothing)."""
from __future__ import annotations

import argparse


def add_serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to bind (default 127.0.0.1; any other needs a username and password)")
    parser.add_argument("--port", type=int, help="port to serve on (default 7860)")
    parser.add_argument("--share", action="store_true",
                        help="also publish a public Gradio link (needs a username and password)")
    parser.add_argument("--no-browser", action="store_true",
                        help="do not open the address (with its token) in a browser; it is printed either way")
