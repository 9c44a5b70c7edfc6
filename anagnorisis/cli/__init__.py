"""`python -m anagnorisis …`: the same core as the UI, headless. Exit 0 ok, 1 failure, 2 usage error.

Each command group is a module here (its parsers and its handlers); every handler calls `anagnorisis.service`
and turns what comes back into a line for people and a JSON object (`--json`). With an app running on the data
dir, a command is forwarded to it (`anagnorisis.remote`), so both never open the database at once.
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, TextIO

from anagnorisis.cli import exchange, jobs, library, ratings, search, taste
from anagnorisis.cli.context import CommandFailed, Context, Parser, UsageError, absolute
from anagnorisis.config import load_settings
from anagnorisis.serve_options import add_serve_options
from anagnorisis.service.errors import BadRequest, Failed
from anagnorisis.service.library import DB_FILE_NAME, check_kind, open_library
from anagnorisis.store import LockWaitAbandoned, Store, StoreError

__all__ = ["COMMANDS", "CommandFailed", "Context", "DB_FILE_NAME", "UsageError", "build_parser", "check_kind", "main",
           "open_library", "run"]

log = logging.getLogger("anagnorisis")

Handler = Callable[[Context, argparse.Namespace], dict[str, Any]]

# The parser table: each group adds its subcommands (in this order in --help) and names their handlers.
GROUPS = (library, ratings, exchange, search, taste, jobs)
COMMANDS: dict[str, Handler] = {name: handler for group in GROUPS for name, handler in group.COMMANDS.items()}
# Later modules add subcommands here: (subparsers, common parent) -> None, and their handler to COMMANDS.
EXTRA_PARSERS: list[Callable[[Any, argparse.ArgumentParser], None]] = []

# Commands that never forward: they start the app.
LOCAL_COMMANDS = {"serve"}
# Commands after which the running app reloads its cached records (ratings patch the cache themselves).
READ_ONLY_COMMANDS = {"search", "export", "rate", "unrate", "next", "prefer", "why", "serve", "jobs"}
# The exit status of a program stopped because the reader of its output left (128 + SIGPIPE, as a shell says).
OUTPUT_CLOSED_STATUS = 141


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--data-dir", default=default, help="data folder (database, models, cache)")
    parser.add_argument("--config", default=default, help="YAML settings file")
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="print exactly one JSON object on stdout")
    parser.add_argument("--cwd", default=default, help=argparse.SUPPRESS)  # set when forwarded to the app


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m anagnorisis", description="Anagnorisis: your media, rated your way.")
    _global_options(parser, suppress=False)
    common = Parser(add_help=False)
    _global_options(common, suppress=True)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for group in GROUPS:
        group.add_parsers(commands, common)
    serve = commands.add_parser("serve", parents=[common], help="serve the UI (what `python app.py` runs)")
    add_serve_options(serve)
    for register in EXTRA_PARSERS:
        register(commands, common)
    return parser


def _setup_logging(data_dir: Path | None) -> None:
    """Warnings to stderr; everything to <data-dir>/logs/anagnorisis.log (one file handler, for the current dir)."""
    root = logging.getLogger("anagnorisis")
    root.setLevel(logging.INFO)
    if not any(getattr(handler, "anagnorisis_stderr", False) for handler in root.handlers):
        to_stderr = logging.StreamHandler(sys.stderr)
        to_stderr.setLevel(logging.WARNING)
        to_stderr.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        to_stderr.anagnorisis_stderr = True  # type: ignore[attr-defined]
        root.addHandler(to_stderr)
    if data_dir is None:
        return
    log_path = (data_dir / "logs" / "anagnorisis.log").resolve()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler):
            if Path(handler.baseFilename) == log_path:
                return
            root.removeHandler(handler)
            handler.close()
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(log_path, encoding="utf-8")
    except OSError:
        return
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(to_file)


def _emit_error(ctx_json: bool, stdout: TextIO, stderr: TextIO, code: str, message: str) -> None:
    if ctx_json:
        print(json.dumps({"error": {"code": code, "message": message}}), file=stdout, flush=True)
    else:
        print(f"error: {message}", file=stderr, flush=True)


def _absolute_globals(argv: list[str], cwd: str) -> list[str]:
    """argv with the values of --data-dir and --config made absolute against the caller's folder."""
    out: list[str] = []
    take = False
    for arg in argv:
        if take:
            out.append(absolute(arg, cwd))
            take = False
            continue
        option, equals, value = arg.partition("=")
        if option in ("--data-dir", "--config") and equals:
            out.append(f"{option}={absolute(value, cwd)}")
            continue
        take = arg in ("--data-dir", "--config")
        out.append(arg)
    return out


def _forward(info: dict[str, Any], args: argparse.Namespace, argv: list[str], stdin: TextIO, stdout: TextIO,
             stderr: TextIO) -> int:
    """Run the command in the live app instead."""
    from anagnorisis.remote import forward

    here = _absolute_globals(argv, os.getcwd())  # the app runs in its own folder
    if args.command == "rate" and args.stdin:
        return _forward_rate_stdin(info, here, stdin, stdout, stderr)
    return forward(info, ["--cwd", os.getcwd(), *here], stdout, stderr)


def _forward_rate_stdin(info: dict[str, Any], argv: list[str], stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    """Each line becomes one forwarded `rate`, so `ok` still means committed, line by line. argv's --data-dir and
    --config are absolute already, so the first `rate` in it is the command."""
    from anagnorisis.remote import forward

    base = list(argv)
    base.remove("rate")
    base = [arg for arg in base if arg not in ("--stdin", "--json")]
    failed = 0
    for line in stdin:
        line = line.rstrip("\n")
        if not line.strip():
            continue
        path, _, rating = line.rpartition("\t")
        if not path:  # the same answer as a direct run: not a rating of the empty path
            failed += 1
            print(f"error: expected PATH<TAB>RATING, got {line!r}", file=stdout, flush=True)
            continue
        sink = io.StringIO()
        code = forward(info, [*base, "--cwd", os.getcwd(), "rate", path, rating], sink, sink)
        if code == 0:
            print("ok", file=stdout, flush=True)
        else:
            failed += 1
            print(sink.getvalue().strip() or "error: rating failed", file=stdout, flush=True)
    return 1 if failed else 0


def run(
    argv: list[str],
    *,
    stdout: TextIO | None = None,
    stdin: TextIO | None = None,
    stderr: TextIO | None = None,
    store: Store | None = None,
    session: Any = None,
    allow_forward: bool = True,
    serve: Callable[..., int] | None = None,
) -> int:
    """Parse and run one command; returns the exit status.

    With a live app on the data dir the command is forwarded to it; `store` and `session` are given by the app
    itself when it runs a forwarded command on what it owns. `serve` starts the UI for the `serve` command
    (`python -m anagnorisis` passes it: the CLI itself never imports the UI).
    """
    stdout, stderr, stdin = stdout or sys.stdout, stderr or sys.stderr, stdin or sys.stdin
    wants_json = "--json" in argv
    try:
        args = build_parser().parse_args(argv)
        settings = load_settings({"data_dir": args.data_dir, "config": args.config})
    except (UsageError, ValueError, FileNotFoundError) as error:
        _emit_error(wants_json, stdout, stderr, "usage", str(error))
        return 2
    if args.command == "serve":  # the app owns the data dir itself; a second app there is refused with its PID
        if serve is None:
            _emit_error(wants_json, stdout, stderr, "usage", "serve runs from `python -m anagnorisis serve` or "
                        "`python app.py`")
            return 2
        return serve(args.host, args.port, args.share, args.data_dir, args.config, open_browser=not args.no_browser)
    from anagnorisis.remote import live_app

    forwardable = allow_forward and store is None and args.command not in LOCAL_COMMANDS
    if forwardable and (info := live_app(settings.data_path)) is not None:
        return _forward(info, args, argv, stdin, stdout, stderr)
    _setup_logging(settings.data_path)
    if store is not None:
        from anagnorisis.store.settings import stored_settings

        settings = settings.with_stored(stored_settings(store))
    ctx = Context(settings, json_output=bool(args.json), stdout=stdout, stderr=stderr, stdin=stdin,
                  cwd=args.cwd or os.getcwd(), _store=store, owns_store=store is None, _session=session,
                  give_up_waiting=(lambda: live_app(settings.data_path) is not None) if forwardable else None)
    try:
        result = COMMANDS[args.command](ctx, args)
    except LockWaitAbandoned as error:  # an app started on the data dir while this waited for it: the app runs it
        info = live_app(settings.data_path)
        if info is not None:
            return _forward(info, args, argv, stdin, stdout, stderr)
        _emit_error(ctx.json_output, stdout, stderr, "failed", str(error))
        return 1
    except BadRequest as error:
        _emit_error(ctx.json_output, stdout, stderr, "usage", str(error))
        return 2
    except (Failed, StoreError) as error:
        _emit_error(ctx.json_output, stdout, stderr, "failed", str(error))
        return 1
    except BrokenPipeError:
        raise  # the reader of the output left: main() ends quietly
    except OSError as error:  # a file the command needed: its reason, and --json still prints one object
        _emit_error(ctx.json_output, stdout, stderr, "failed", f"{error.filename or ''}: {error.strerror or error}"
                    if getattr(error, "filename", None) else str(error.strerror or error))
        return 1
    finally:
        ctx.close()
    if ctx.json_output:
        print(json.dumps(result, default=str), file=stdout, flush=True)
    return 0


def main(argv: list[str] | None = None, *, serve: Callable[..., int] | None = None) -> int:
    from anagnorisis.remote import OutputClosed

    try:
        return run(list(sys.argv[1:] if argv is None else argv), serve=serve)
    except (BrokenPipeError, OutputClosed):
        # `… | head` read what it wanted and left: what was committed stays committed; no traceback, and no
        # second error when Python flushes the closed stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OUTPUT_CLOSED_STATUS
