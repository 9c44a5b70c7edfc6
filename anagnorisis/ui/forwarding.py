"""The route forwarded CLI commands arrive on: loopback clients with the token only."""
from __future__ import annotations

import hmac
from typing import Any, TextIO

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from anagnorisis.remote import ROUTE, TOKEN_HEADER, stream_command
from anagnorisis.ui.guard import is_loopback_name


def _is_loopback_client(request: Request) -> bool:
    return is_loopback_name(request.client.host if request.client else "")


def install_cli_route(app: Any, token: str) -> None:
    """Add POST ROUTE to the running server; commands run on the app's own store."""
    from anagnorisis.cli import run

    context = app.context

    def run_here(argv: list[str], stdout: TextIO, stderr: TextIO) -> int:
        from anagnorisis.cli import READ_ONLY_COMMANDS

        try:
            return run(argv, stdout=stdout, stderr=stderr, store=context.session.store, session=context.session)
        finally:
            if not READ_ONLY_COMMANDS & set(argv):
                context.session.invalidate()
            if "library" in argv:  # a root added or removed from the CLI while the app runs
                context.refresh_served_paths()

    async def forwarded(request: Request) -> Any:
        if not _is_loopback_client(request):
            return JSONResponse({"error": "forwarded commands are accepted from this machine only"}, status_code=403)
        if not hmac.compare_digest(request.headers.get(TOKEN_HEADER, ""), token):
            return JSONResponse({"error": "missing or wrong token"}, status_code=403)
        body = await request.json()
        argv = [str(arg) for arg in body.get("argv", [])]
        return StreamingResponse(stream_command(run_here, argv), media_type="application/x-ndjson")

    app.app.add_api_route(ROUTE, forwarded, methods=["POST"])
