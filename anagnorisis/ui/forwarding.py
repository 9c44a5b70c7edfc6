"""The route forwarded CLI commands arrive on: loopback clients with the token only."""
from __future__ import annotations

import hmac
import threading
from typing import Any, TextIO

import anyio
from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from anagnorisis.remote import ROUTE, TOKEN_HEADER, stream_command
from anagnorisis.ui.guard import is_loopback_name

# How long a command that arrives while the app is still starting waits for it to be ready, in seconds: the app is
# announced before its server listens, and finishes starting (launch's own checks) a moment after.
READY_WAIT_SECONDS = 60.0


def _is_loopback_client(request: Request) -> bool:
    return is_loopback_name(request.client.host if request.client else "")


def install_cli_route(server_app: Any, context: Any, token: str, ready: threading.Event) -> None:
    """Add POST ROUTE to the app's server (before it listens); commands run on the app's own store once `ready`
    is set."""
    from anagnorisis.cli import run

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
        if not await anyio.to_thread.run_sync(ready.wait, READY_WAIT_SECONDS):
            return JSONResponse({"error": f"the app did not finish starting within {READY_WAIT_SECONDS:.0f} s"},
                                status_code=503)
        return StreamingResponse(stream_command(run_here, argv), media_type="application/x-ndjson")

    server_app.add_api_route(ROUTE, forwarded, methods=["POST"])
