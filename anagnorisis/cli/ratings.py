"""`rate`, `unrate` (also PATH<TAB>RATING lines on stdin), `prefer`, `why`, `next`: the user's word on files."""
from __future__ import annotations

import argparse
from typing import Any

from anagnorisis.cli.context import CommandFailed, Context, UsageError
from anagnorisis.config import noun
from anagnorisis.service import ratings, taste
from anagnorisis.service.errors import BadRequest, Failed
from anagnorisis.store.records import public_record


def _rate_stdin(ctx: Context) -> dict[str, Any]:
    """PATH<TAB>RATING per line; `ok` is printed only after the rating is committed."""
    rated, failed = 0, []
    ctx.store  # opened (or handed to an app that starts meanwhile) before a line is read
    for line in ctx.stdin:
        line = line.rstrip("\n")
        if not line.strip():
            continue
        path, _, rating_text = line.rpartition("\t")
        try:
            if not path:
                raise UsageError(f"expected PATH<TAB>RATING, got {line!r}")
            ratings.rate(ctx.session, ctx.abspath(path), ratings.parse_rating(rating_text))
        except (BadRequest, Failed) as error:
            failed.append({"path": path, "reason": str(error)})
            print(f"error: {error}", file=ctx.stdout, flush=True)
            continue
        rated += 1
        print("ok", file=ctx.stdout, flush=True)
    if failed:
        raise CommandFailed(f"{len(failed)} of {rated + len(failed)} lines failed")
    return {"rated": rated, "failed": failed}


def cmd_rate(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    if args.stdin:
        if args.path or args.rating:
            raise UsageError("rate --stdin takes no PATH or RATING")
        ctx.json_output = False  # the protocol is one `ok` line per committed rating
        _rate_stdin(ctx)
        return {}
    if args.path is None or args.rating is None:
        raise UsageError("rate needs PATH and RATING (or --stdin)")
    rating = ratings.parse_rating(args.rating)
    record = public_record(ratings.rate(ctx.session, ctx.abspath(args.path), rating))
    ctx.say(f"rated {record.get('display_path')}: {record.get('user_rating')}")
    return {"record": record}


def cmd_unrate(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    record = public_record(ratings.unrate(ctx.session, ctx.abspath(args.path)))
    ctx.say(f"cleared the rating of {record.get('display_path')}")
    return {"record": record}


def cmd_next(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    document = taste.next_files(ctx.session, args.kind, args.n)
    if document.get("message"):
        ctx.say(document["message"])
    for item in document["results"]:
        ctx.say(f"{item.get('display_path') or item['path']}  ({item['reason']})")
    return document


def cmd_prefer(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    document = ratings.prefer(ctx.session, ctx.abspath(args.a), ctx.abspath(args.b), tie=args.tie)
    winner, loser = public_record(document["winner"]), public_record(document["loser"])
    ctx.say(f"recorded: {winner.get('display_path')} " + ("equals " if args.tie else "over ")
            + f"{loser.get('display_path')}")
    return {"preference": document["preference"]}


def cmd_why(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    stored, document = taste.why(ctx.session, ctx.abspath(args.path))
    record = public_record(stored)
    kind = stored["kind"]
    rating = record.get("model_rating")
    ctx.say(f"{record.get('display_path')}: model rating "
            + ("none yet" if rating is None else f"{rating:.1f} ± {record.get('uncertainty') or 0:.1f}")
            + (" (stale)" if record.get("model_rating_stale") else ""))
    if not document["neighbours"]:
        ctx.say(f"no rated {noun(kind)} has an embedding yet")
    for item in document["neighbours"]:
        ctx.say(f"  {item['user_rating']:4.1f}  similarity {item['similarity']:.3f}  "
                f"{item.get('display_path') or item['path']}")
    return document


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    rate = commands.add_parser("rate", parents=[common], help="set a rating (0–10)")
    rate.add_argument("path", nargs="?")
    rate.add_argument("rating", nargs="?")
    rate.add_argument("--stdin", action="store_true", help="read PATH<TAB>RATING lines; print ok after each commit")
    unrate = commands.add_parser("unrate", parents=[common], help="clear a rating")
    unrate.add_argument("path")
    queue = commands.add_parser("next", parents=[common], help="the files whose rating would teach the model most")
    queue.add_argument("kind")
    queue.add_argument("--n", type=int, default=10, help="how many (default 10)")
    prefer = commands.add_parser("prefer", parents=[common], help="record an A/B choice: A over B (or --tie)")
    prefer.add_argument("a")
    prefer.add_argument("b")
    prefer.add_argument("--tie", action="store_true", help="A and B are equally good")
    explain = commands.add_parser("why", parents=[common], help="the rated files nearest to a file, and the uncertainty")
    explain.add_argument("path")


COMMANDS = {"rate": cmd_rate, "unrate": cmd_unrate, "next": cmd_next, "prefer": cmd_prefer, "why": cmd_why}
