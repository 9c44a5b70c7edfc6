"""`search KIND [QUERY]`: search or sort a kind (SPEC §1, §4)."""
from __future__ import annotations

import argparse
import os
from typing import Any

from anagnorisis.cli.context import Context
from anagnorisis.config import noun
from anagnorisis.search import MODES, ORDERS, SearchRequest
from anagnorisis.service.library import check_kind
from anagnorisis.service.search import search


def cmd_search(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    kind = check_kind(args.kind)
    query = args.query
    if query is not None and args.mode in (None, "auto", "similar") and os.path.exists(ctx.abspath(query)):
        query = ctx.abspath(query)  # a file path, taken relative to the caller's folder
    request = SearchRequest(
        kind=kind, query=query, mode=args.mode or "auto", sort=args.sort, order=args.order,
        temperature=args.temperature, seed=args.seed, offset=args.offset, limit=args.limit,
        folder=ctx.abspath(args.folder) if args.folder else None,
        rated=True if args.rated else False if args.unrated else None,
        rating=args.rating, model_rating=args.model_rating, ext=args.ext,
    )
    result = search(ctx.session, request).to_dict()
    ctx.say(f"{result['total']} matching {noun(kind, result['total'])}" + (f" ({result['not_indexed']} not indexed yet)"
                                                           if result["not_indexed"] else ""))
    for item in result["results"]:
        rating = item.get("user_rating") if item.get("user_rating") is not None else item.get("model_rating")
        shown = "  -" if rating is None else f"{rating:4.1f}"
        ctx.say(f"{shown}  {item.get('display_path') or item['path']}  ({item.get('reason', '')})")
    return result


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("search", parents=[common], help="search or sort a kind")
    parser.add_argument("kind")
    parser.add_argument("query", nargs="?")
    parser.add_argument("--mode", choices=MODES, default="auto")
    parser.add_argument("--sort")
    parser.add_argument("--order", choices=ORDERS, default="desc")
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--limit", type=int, default=24)
    parser.add_argument("--folder")
    rated = parser.add_mutually_exclusive_group()
    rated.add_argument("--rated", action="store_true")
    rated.add_argument("--unrated", action="store_true")
    parser.add_argument("--rating", metavar="MIN:MAX")
    parser.add_argument("--model-rating", metavar="MIN:MAX")
    parser.add_argument("--ext")


COMMANDS = {"search": cmd_search}
