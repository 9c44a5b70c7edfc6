"""`library add|remove|list` and `scan`."""
from __future__ import annotations

import argparse
from typing import Any

from anagnorisis.cli.context import Context, Parser
from anagnorisis.service import library
from anagnorisis.service.library import check_kind


def cmd_library(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    if args.library_command == "add":
        path = ctx.abspath(args.path) if str(args.path or "").strip() else ""
        change = library.add_root(ctx.session, args.kind, path)
        root = change.changed
        ctx.say(f"{root.path} is already a {root.kind} root" if change.already else f"added {root.kind} root {root.path}")
        return change.as_dict()
    if args.library_command == "remove":
        path = ctx.abspath(args.path) if str(args.path or "").strip() else ""
        change = library.remove_root(ctx.session, args.kind, path)
        ctx.say(f"removed {check_kind(args.kind)} root {args.path} (ratings stay with the files' content)")
        return change.as_dict()
    roots = library.list_roots(ctx.session)
    for root in roots:
        ctx.say(f"{root.kind:<7} {root.path}" + ("  (from config)" if root.from_config else ""))
    return {"roots": [root.as_dict() for root in roots]}


def cmd_scan(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def progress(done: int, total: int, kind: str) -> None:
        bar = bars.get(kind)
        if bar is None:
            bar = bars[kind] = tqdm(total=total, desc=f"scan {kind}", unit="file", file=ctx.stderr, leave=False)
        bar.n = done
        bar.refresh()

    try:
        report = library.scan(ctx.session, [args.kind] if args.kind else None, progress)
    finally:
        for bar in bars.values():
            bar.close()
    result = report.as_dict()
    ctx.say(
        "scan: {new} new, {changed} changed, {moved} moved, {missing} missing, {unchanged} unchanged, "
        "{carried} carried, {n_bad} bad in {seconds:.1f} s".format(n_bad=len(report.bad), **result)
    )
    for bad in report.bad:
        ctx.say(f"  skipped {bad['path']}: {bad['reason']}")
    return result


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("library", parents=[common], help="manage library roots")
    library_commands = parser.add_subparsers(dest="library_command", required=True, parser_class=Parser)
    for name in ("add", "remove"):
        sub = library_commands.add_parser(name, parents=[common])
        sub.add_argument("kind")
        sub.add_argument("path")
    library_commands.add_parser("list", parents=[common])
    scan = commands.add_parser("scan", parents=[common], help="find, hash and read metadata")
    scan.add_argument("kind", nargs="?")


COMMANDS = {"library": cmd_library, "scan": cmd_scan}
