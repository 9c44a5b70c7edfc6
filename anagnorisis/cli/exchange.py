"""`export FILE`, `import FILE` and `import-anagnorisis DB`."""
from __future__ import annotations

import argparse
from typing import Any

from anagnorisis.cli.context import Context, UsageError
from anagnorisis.service import exchange


def cmd_export(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    result = exchange.export(ctx.session, ctx.abspath(args.file))
    ctx.say(f"exported {result['rows']} rows and {result['preferences']} A/B choices to {args.file}")
    return result


def cmd_import(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    result = exchange.import_export(ctx.session, ctx.abspath(args.file))
    ctx.say("imported {rows} rows: {ratings_applied} ratings applied, {ratings_kept} kept ours, "
            "{plays_updated} play counts updated, {preferences_added} A/B choices added".format(**result))
    for item in result["skipped"]:
        where = f"row {item['row']}" if "row" in item else f"A/B row {item['preferences_row']}"
        ctx.say(f"skipped {where}: {item['reason']}")
    if result["rows_skipped"] > len(result["skipped"]):
        ctx.say(f"…{result['rows_skipped'] - len(result['skipped'])} more skipped rows are in the log")
    return result


def cmd_import_anagnorisis(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from anagnorisis.store.importer import parse_pairs

    try:
        maps = [(ctx.abspath(old), ctx.abspath(new)) for old, new in parse_pairs(args.map, "--map")]
        media_dirs = {kind: ctx.abspath(folder) for kind, folder in parse_pairs(args.media_dir, "--media-dir")}
    except ValueError as error:
        raise UsageError(str(error)) from None
    result = exchange.import_anagnorisis(ctx.session, ctx.abspath(args.db), maps=maps, media_dirs=media_dirs)
    ctx.say("{matched} rows matched ({ratings_applied} ratings applied, {plays_updated} play histories updated), "
            "{unmatched} unmatched, {conflicts} conflicts".format(**result))
    if result["unmatched_csv"]:
        ctx.say(f"unmatched rows written to {result['unmatched_csv']}")
    return result


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    for name, what in (("export", "write ratings, plays and A/B choices"), ("import", "merge an export")):
        sub = commands.add_parser(name, parents=[common], help=what)
        sub.add_argument("file", help="a .csv or .parquet file")
    old = commands.add_parser("import-anagnorisis", parents=[common], help="import the original app's project.db")
    old.add_argument("db")
    old.add_argument("--map", action="append", metavar="OLD=NEW", help="rewrite a path prefix (longest wins)")
    old.add_argument("--media-dir", action="append", metavar="KIND=DIR",
                     help="where relative paths of a kind start (default /mnt/media/KIND)")


COMMANDS = {"export": cmd_export, "import": cmd_import, "import-anagnorisis": cmd_import_anagnorisis}
