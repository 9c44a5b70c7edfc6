"""`python -m anagnorisis …`: the same core as the UI, headless. Exit 0 ok, 1 failure, 2 usage error."""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NoReturn, TextIO

from anagnorisis.config import KINDS, Settings, load_settings, noun
from anagnorisis.kinds import MediaError
from anagnorisis.serve import add_serve_options, serve
from anagnorisis.store import LockWaitAbandoned, Store, StoreError
from anagnorisis.store.ratings import RatingOutOfRange, check_rating, set_rating

log = logging.getLogger("anagnorisis")

DB_FILE_NAME = "anagnorisis.duckdb"


class UsageError(Exception):
    """Bad arguments: exit 2."""


class CommandFailed(Exception):
    """The command could not do its job: exit 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


@dataclass
class Context:
    """What a command runs against: settings, the store (opened on first use), and where output goes."""

    settings: Settings
    json_output: bool = False
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    cwd: str = field(default_factory=os.getcwd)  # the caller's folder: relative paths resolve against it
    _store: Store | None = None
    owns_store: bool = True  # False when the running app lends its store to a forwarded command
    session: Any = None  # the running app's Session (cached records and indexes), lent with its store
    give_up_waiting: Callable[[], bool] | None = None  # asked while the database is locked: stop waiting?

    @property
    def data_dir(self) -> Path:
        return self.settings.data_path

    @property
    def store(self) -> Store:
        if self._store is None:
            from anagnorisis.store.settings import stored_settings

            self._store = open_library(self.settings, give_up=self.give_up_waiting)
            self.settings = self.settings.with_stored(stored_settings(self._store))
        return self._store

    def say(self, text: str) -> None:
        """Human output (suppressed with --json, where stdout holds one JSON object)."""
        if not self.json_output:
            print(text, file=self.stdout, flush=True)

    def abspath(self, path: str) -> str:
        return absolute(path, self.cwd)

    def close(self) -> None:
        if self._store is not None and self.owns_store:
            self._store.close()
        self._store = None


def open_library(settings: Settings, *, wait_seconds: float | None = None,
                 give_up: Callable[[], bool] | None = None) -> Store:
    """Open the database of a data dir and apply the roots named in settings (or the default folders)."""
    from anagnorisis.store.roots import list_roots, sync_config_roots

    from anagnorisis.private import make_private

    data_dir = settings.data_path
    make_private(data_dir)  # umask 077 from here on: the database, its WAL, backups … are the owner's alone
    wait = settings.lock_wait_seconds if wait_seconds is None else wait_seconds
    store = Store.open(data_dir / DB_FILE_NAME, wait_seconds=wait, give_up=give_up)
    kinds_with_roots = {root.kind for root in list_roots(store)}
    configured: dict[str, list[str]] = {}
    for kind in KINDS:
        configured[kind] = settings.roots_for(kind)
        if not configured[kind] and kind not in kinds_with_roots:
            default = data_dir / "library" / kind
            default.mkdir(parents=True, exist_ok=True)
            configured[kind] = [str(default)]
    for problem in sync_config_roots(store, configured):
        log.warning("%s", problem)
    return store


def check_kind(kind: str) -> str:
    normalised = kind.strip().lower()
    if normalised not in KINDS:
        raise UsageError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    return normalised


# ---------------------------------------------------------------- commands


def cmd_library(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from anagnorisis.store.roots import RootRefused, add_root, list_roots, remove_root

    if args.library_command in ("add", "remove") and not str(args.path or "").strip():
        raise CommandFailed(f"cannot {args.library_command} a root for {args.kind}: no folder given (an empty path"
                            " would mean the current folder; name it, e.g. '.', to mean that)")
    already = False
    if args.library_command == "add":
        known = {root.path for root in list_roots(ctx.store, check_kind(args.kind))}
        try:
            root = add_root(ctx.store, check_kind(args.kind), ctx.abspath(args.path))
        except RootRefused as error:
            raise CommandFailed(f"cannot add {args.kind} root: {error}") from None
        already = root.path in known
        ctx.say(f"{root.path} is already a {root.kind} root" if already else f"added {root.kind} root {root.path}")
    elif args.library_command == "remove":
        if not remove_root(ctx.store, check_kind(args.kind), ctx.abspath(args.path)):
            raise CommandFailed(f"{args.path} is not a library root for {args.kind}")
        ctx.say(f"removed {args.kind} root {args.path} (ratings stay with the files' content)")
    roots = [root.as_dict() for root in list_roots(ctx.store)]
    if args.library_command == "list":
        for root in roots:
            ctx.say(f"{root['kind']:<7} {root['path']}" + ("  (from config)" if root["from_config"] else ""))
    return {"roots": roots, **({"already": True} if already else {})}


def cmd_scan(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from tqdm import tqdm

    from anagnorisis.library.scan import scan

    kinds = [check_kind(args.kind)] if args.kind else None
    bars: dict[str, Any] = {}

    def progress(done: int, total: int, kind: str) -> None:
        bar = bars.get(kind)
        if bar is None:
            bar = bars[kind] = tqdm(total=total, desc=f"scan {kind}", unit="file", file=ctx.stderr, leave=False)
        bar.n = done
        bar.refresh()

    try:
        report = scan(ctx.store, kinds, progress)
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


def _resolve_indexed(ctx: Context, path: str) -> tuple[str, str, bytes]:
    """(kind, content_hash, path_bytes) of a file under a root, indexing it now if needed."""
    from anagnorisis.library.scan import index_file
    from anagnorisis.store.roots import root_of

    absolute = ctx.abspath(path)
    candidates = [absolute, os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))]
    for candidate in candidates:
        if root_of(ctx.store, candidate) is None:
            continue
        if not os.path.isfile(candidate):
            raise CommandFailed(f"{path}: no such file")
        try:
            kind, content_hash = index_file(ctx.store, candidate)
        except MediaError as error:
            raise CommandFailed(f"{path}: {error}") from None
        return kind, content_hash, os.fsencode(candidate)
    raise UsageError(f"{path} is not under any library root (see `library list`)")


def _record_of(ctx: Context, kind: str, path_bytes: bytes) -> dict[str, Any]:
    from anagnorisis.store.records import public_record, records_for_paths

    found = records_for_paths(ctx.store, kind, [path_bytes])
    if found and ctx.session is not None:
        ctx.session.note_rating(kind, found[0])
    return public_record(found[0]) if found else {}


def _parse_rating(text: str) -> float:
    try:
        return check_rating(float(text))
    except (ValueError, RatingOutOfRange) as error:
        raise UsageError(f"rating {text!r}: {error}; ratings go from 0 to 10") from None


def _rate_one(ctx: Context, path: str, rating: float | None) -> dict[str, Any]:
    kind, content_hash, path_bytes = _resolve_indexed(ctx, path)
    set_rating(ctx.store, content_hash, rating)
    return _record_of(ctx, kind, path_bytes)


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
            _rate_one(ctx, path, _parse_rating(rating_text))
        except (UsageError, CommandFailed) as error:
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
    record = _rate_one(ctx, args.path, _parse_rating(args.rating))
    ctx.say(f"rated {record.get('display_path')}: {record.get('user_rating')}")
    return {"record": record}


def cmd_unrate(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    record = _rate_one(ctx, args.path, None)
    ctx.say(f"cleared the rating of {record.get('display_path')}")
    return {"record": record}


def cmd_export(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from anagnorisis.store.exchange import ExchangeError, ExchangeWriteError, export_file

    try:
        result = export_file(ctx.store, Path(ctx.abspath(args.file)))
    except ExchangeWriteError as error:
        raise CommandFailed(str(error)) from None
    except ExchangeError as error:
        raise UsageError(str(error)) from None
    ctx.say(f"exported {result['rows']} rows and {result['preferences']} A/B choices to {args.file}")
    return result


def cmd_import(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from anagnorisis.store.exchange import ExchangeError, import_file

    try:
        result = import_file(ctx.store, Path(ctx.abspath(args.file)))
    except ExchangeError as error:
        raise CommandFailed(str(error)) from None
    ctx.say("imported {rows} rows: {ratings_applied} ratings applied, {ratings_kept} kept ours, "
            "{plays_updated} play counts updated, {preferences_added} A/B choices added".format(**result))
    for item in result["skipped"]:
        where = f"row {item['row']}" if "row" in item else f"A/B row {item['preferences_row']}"
        ctx.say(f"skipped {where}: {item['reason']}")
    if result["rows_skipped"] > len(result["skipped"]):
        ctx.say(f"…{result['rows_skipped'] - len(result['skipped'])} more skipped rows are in the log")
    return result


def cmd_search(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from anagnorisis import search
    from anagnorisis.session import Session

    kind = check_kind(args.kind)
    query = args.query
    if query is not None and args.mode in (None, "auto", "similar") and os.path.exists(ctx.abspath(query)):
        query = ctx.abspath(query)  # a file path, taken relative to the caller's folder
    request = search.SearchRequest(
        kind=kind, query=query, mode=args.mode or "auto", sort=args.sort, order=args.order,
        temperature=args.temperature, seed=args.seed, offset=args.offset, limit=args.limit,
        folder=ctx.abspath(args.folder) if args.folder else None,
        rated=True if args.rated else False if args.unrated else None,
        rating=args.rating, model_rating=args.model_rating, ext=args.ext,
    )
    session = ctx.session or Session(ctx.settings, ctx.store)
    try:
        result = session.search(request).to_dict()
    except search.UsageError as error:
        raise UsageError(str(error)) from None
    except search.SearchError as error:
        raise CommandFailed(str(error)) from None
    ctx.say(f"{result['total']} matching {noun(kind, result['total'])}" + (f" ({result['not_indexed']} not indexed yet)"
                                                           if result["not_indexed"] else ""))
    for item in result["results"]:
        rating = item.get("user_rating") if item.get("user_rating") is not None else item.get("model_rating")
        shown = "  -" if rating is None else f"{rating:4.1f}"
        ctx.say(f"{shown}  {item.get('display_path') or item['path']}  ({item.get('reason', '')})")
    return result


def cmd_import_anagnorisis(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from anagnorisis.importer import NotAnAnagnorisisDatabase, import_anagnorisis, parse_pairs

    try:
        maps = [(ctx.abspath(old), ctx.abspath(new)) for old, new in parse_pairs(args.map, "--map")]
        media_dirs = {check_kind(kind): ctx.abspath(folder)
                      for kind, folder in parse_pairs(args.media_dir, "--media-dir")}
    except ValueError as error:
        raise UsageError(str(error)) from None
    try:
        result = import_anagnorisis(ctx.store, Path(ctx.abspath(args.db)), ctx.data_dir, maps=maps,
                                    media_dirs=media_dirs)
    except NotAnAnagnorisisDatabase as error:
        raise CommandFailed(str(error)) from None
    ctx.say("{matched} rows matched ({ratings_applied} ratings applied, {plays_updated} play histories updated), "
            "{unmatched} unmatched, {conflicts} conflicts".format(**result))
    if result["unmatched_csv"]:
        ctx.say(f"unmatched rows written to {result['unmatched_csv']}")
    return result


COMMANDS: dict[str, Callable[[Context, argparse.Namespace], dict[str, Any]]] = {
    "library": cmd_library,
    "scan": cmd_scan,
    "rate": cmd_rate,
    "unrate": cmd_unrate,
    "export": cmd_export,
    "import": cmd_import,
    "search": cmd_search,
    "import-anagnorisis": cmd_import_anagnorisis,
}


# ---------------------------------------------------------------- parsing


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--data-dir", default=default, help="data folder (database, models, cache)")
    parser.add_argument("--config", default=default, help="YAML settings file")
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="print exactly one JSON object on stdout")
    parser.add_argument("--cwd", default=default, help=argparse.SUPPRESS)  # set when forwarded to the app


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m anagnorisis", description="Anagnorisis: your media, rated your way.")
    _global_options(parser, suppress=False)
    common = _Parser(add_help=False)
    _global_options(common, suppress=True)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    library = commands.add_parser("library", parents=[common], help="manage library roots")
    library_commands = library.add_subparsers(dest="library_command", required=True, parser_class=_Parser)
    for name in ("add", "remove"):
        sub = library_commands.add_parser(name, parents=[common])
        sub.add_argument("kind")
        sub.add_argument("path")
    library_commands.add_parser("list", parents=[common])

    scan = commands.add_parser("scan", parents=[common], help="find, hash and read metadata")
    scan.add_argument("kind", nargs="?")

    rate = commands.add_parser("rate", parents=[common], help="set a rating (0–10)")
    rate.add_argument("path", nargs="?")
    rate.add_argument("rating", nargs="?")
    rate.add_argument("--stdin", action="store_true", help="read PATH<TAB>RATING lines; print ok after each commit")
    unrate = commands.add_parser("unrate", parents=[common], help="clear a rating")
    unrate.add_argument("path")

    for name, what in (("export", "write ratings, plays and A/B choices"), ("import", "merge an export")):
        sub = commands.add_parser(name, parents=[common], help=what)
        sub.add_argument("file", help="a .csv or .parquet file")
    search = commands.add_parser("search", parents=[common], help="search or sort a kind")
    search.add_argument("kind")
    search.add_argument("query", nargs="?")
    search.add_argument("--mode", choices=("auto", "name", "meaning", "similar"), default="auto")
    search.add_argument("--sort")
    search.add_argument("--order", choices=("desc", "asc"), default="desc")
    search.add_argument("--temperature", type=float, default=0.0)
    search.add_argument("--seed", type=int, default=0)
    search.add_argument("--offset", type=int, default=0)
    search.add_argument("--limit", type=int, default=24)
    search.add_argument("--folder")
    rated = search.add_mutually_exclusive_group()
    rated.add_argument("--rated", action="store_true")
    rated.add_argument("--unrated", action="store_true")
    search.add_argument("--rating", metavar="MIN:MAX")
    search.add_argument("--model-rating", metavar="MIN:MAX")
    search.add_argument("--ext")
    old = commands.add_parser("import-anagnorisis", parents=[common], help="import the original app's project.db")
    old.add_argument("db")
    old.add_argument("--map", action="append", metavar="OLD=NEW", help="rewrite a path prefix (longest wins)")
    old.add_argument("--media-dir", action="append", metavar="KIND=DIR",
                     help="where relative paths of a kind start (default /mnt/media/KIND)")
    serve = commands.add_parser("serve", parents=[common], help="serve the UI (what `python app.py` runs)")
    add_serve_options(serve)
    for register in EXTRA_PARSERS:
        register(commands, common)
    return parser


# Later modules add subcommands here: (subparsers, common parent) -> None, and their handler to COMMANDS.
EXTRA_PARSERS: list[Callable[[Any, argparse.ArgumentParser], None]] = []


# ---------------------------------------------------------------- the taste model: train, predict, models


def _positive(value: float | int | None, flag: str) -> None:
    if value is not None and value <= 0:
        raise UsageError(f"{flag} must be positive, got {value}")


def _metrics_table(metrics: dict[str, dict[str, float]], winner: str) -> list[str]:
    from anagnorisis.taste.models import BLEND_NAME, CANDIDATE_NAMES  # torch is loaded already: training just ran

    lines = [f"  {'model':<8}{'MAE':>8}{'SROCC':>9}{'pairwise':>10}"]
    for name in (*CANDIDATE_NAMES, BLEND_NAME):
        if name in metrics:
            m = metrics[name]
            mark = "  <- chosen" if name == winner else ""
            lines.append(f"  {name:<8}{m['mae']:>8.3f}{m['srocc']:>9.3f}{m['pairwise_accuracy']:>10.3f}{mark}")
    return lines


class _TrainProgress:
    """Stage lines and an epoch bar with the MLP's train/validation loss, on stderr."""

    def __init__(self, stderr: TextIO) -> None:
        self.stderr = stderr
        self.bar: Any = None

    def __call__(self, event: dict[str, Any]) -> None:
        from tqdm import tqdm

        if event.get("type") == "stage":
            self.close()
            print(f"train: {event['message']}", file=self.stderr, flush=True)
        elif event.get("type") == "loss":
            if self.bar is None:
                self.bar = tqdm(desc="mlp epochs", unit="epoch", file=self.stderr, leave=False)
            self.bar.set_postfix(train=f"{event['train_loss']:.3f}", validation=f"{event['val_loss']:.3f}",
                                 refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _app_gpu_lock(ctx: Context) -> Any:
    """The running app's GPU lock when this command was forwarded into it (one GPU job at a time), else None."""
    return getattr(ctx.session, "gpu_lock", None)


def cmd_train(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from anagnorisis.taste.service import TasteError, train_kind

    kind = check_kind(args.kind)
    _positive(args.seconds, "--seconds")
    _positive(args.epochs, "--epochs")
    progress = _TrainProgress(ctx.stderr)
    try:
        document = train_kind(ctx.store, ctx.settings, kind, seconds=args.seconds, epochs=args.epochs,
                              on_event=progress, gpu_lock=_app_gpu_lock(ctx))
    except TasteError as error:
        raise CommandFailed(str(error)) from None
    finally:
        progress.close()
    ctx.say(f"{kind} model v{document['model_version']}: {document['winner']} won, trained on "
            f"{document['n_ratings']} ratings and {document['n_preferences']} A/B choices "
            f"({document['embedding_model']}) in {document['seconds']:.1f} s"
            + (" (stopped early)" if document["stopped_early"] else ""))
    for line in _metrics_table(document["metrics"], document["winner"]):
        ctx.say(line)
    ctx.say(f"why: {document['reason']}")
    ctx.say(f"next: `python -m anagnorisis predict {kind}` rates every {noun(kind)} with it")
    return document


def cmd_predict(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from tqdm import tqdm

    from anagnorisis.taste.service import TasteError, predict_kind

    kind = check_kind(args.kind)
    bars: list[Any] = []

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, desc=f"predict {kind}", unit="file", file=ctx.stderr, leave=False))
        bars[0].n = done
        bars[0].refresh()

    try:
        document = predict_kind(ctx.store, ctx.settings, kind, progress=progress, gpu_lock=_app_gpu_lock(ctx))
    except TasteError as error:
        raise CommandFailed(str(error)) from None
    finally:
        for bar in bars:
            bar.close()
    ctx.say(f"{kind} model v{document['model_version']} rated {document['predicted']} files in "
            f"{document['seconds']:.1f} s" + (f"; {document['not_embedded']} files have no "
                                               f"{document['embedding_model']} embedding yet"
                                               if document["not_embedded"] else ""))
    return document


def _models_versions(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from anagnorisis.taste.service import active_version, model_versions

    kind = check_kind(args.kind)
    versions = model_versions(ctx.store, kind)
    if not versions:
        ctx.say(f"no {kind} model trained yet (`python -m anagnorisis train {kind}`)")
    for v in versions:
        m = v["metrics"] or {}
        quality = (f"SROCC {m['srocc']:.3f}, MAE {m['mae']:.2f}" if m else "no cross-validation")
        ctx.say(f"{'*' if v['active'] else ' '} v{v['version']:<4} {v['created_at']}  {v['winner']:<6} "
                f"{v['n_ratings']} ratings, {quality}, {v['predicted']} predictions, {v['embedding_model']}")
    return {"kind": kind, "active_version": active_version(ctx.store, kind), "versions": versions}


def _models_rollback(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from anagnorisis.taste.service import TasteError, rollback

    kind = check_kind(args.kind)
    try:
        version = int(args.version.lstrip("vV"))
    except ValueError:
        raise UsageError(f"VERSION must be a number like 3, got {args.version!r}") from None
    try:
        document = rollback(ctx.store, kind, version)
    except TasteError as error:
        raise CommandFailed(str(error)) from None
    ctx.say(f"{kind} model v{version} is active again (was v{document['previous_version']}); "
            f"run `python -m anagnorisis predict {kind}` if it has not rated every file yet")
    return document


# `models` subcommands: the taste model's versions here; other modules may add theirs (e.g. `list`, `download`)
# with a parser in _add_models_parsers and an entry in this table.
MODELS_SUBCOMMANDS: dict[str, Callable[[Context, argparse.Namespace], dict[str, Any]]] = {
    "versions": _models_versions,
    "rollback": _models_rollback,
    "list": lambda ctx, args: _models_list(ctx, args),
    "download": lambda ctx, args: _models_download(ctx, args),
}


def cmd_models(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return MODELS_SUBCOMMANDS[args.models_command](ctx, args)


def _add_taste_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    train = commands.add_parser("train", parents=[common], help="train the taste model of a kind (does not predict)")
    train.add_argument("kind")
    train.add_argument("--seconds", type=float, help="time budget; the best model so far is kept when it ends")
    train.add_argument("--epochs", type=int, help="train the MLP for exactly this many epochs")
    predict = commands.add_parser("predict", parents=[common], help="the current model rates every file of a kind")
    predict.add_argument("kind")
    models = commands.add_parser("models", parents=[common], help="models: taste model versions and rollback")
    models_commands = models.add_subparsers(dest="models_command", required=True, parser_class=_Parser)
    versions = models_commands.add_parser("versions", parents=[common], help="trained taste model versions of a kind")
    versions.add_argument("kind")
    back = models_commands.add_parser("rollback", parents=[common], help="make an older taste model version active")
    back.add_argument("kind")
    back.add_argument("version")
    _add_models_list(models_commands, common)


COMMANDS.update({"train": cmd_train, "predict": cmd_predict, "models": cmd_models})
EXTRA_PARSERS.append(_add_taste_parsers)


def cmd_embed(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    """Embed what has no vector yet, kind by kind; SPEC §1 JSON (per kind under `kinds` when no KIND is given)."""
    from tqdm import tqdm

    from anagnorisis.embed.pipeline import embed_missing
    from anagnorisis.embed.registry import resolve_encoder

    kinds = [check_kind(args.kind)] if args.kind else list(KINDS)
    if args.model and not args.kind:
        raise UsageError("--model needs a KIND: a model embeds one kind")
    documents: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        encoder, status = resolve_encoder(kind, ctx.settings, model=args.model)
        if not status.available and args.model:  # asked for by name: no quiet fallback to the basic features
            raise CommandFailed(f"--model {args.model}: {status.message.split(';')[0]}; nothing was embedded "
                                "(name a model in the Hugging Face cache or a local model folder)")
        if not status.available:
            print(f"note: {status.message}", file=ctx.stderr, flush=True)
        with tqdm(desc=f"embed {kind}", unit="file", file=ctx.stderr, leave=False) as bar, \
                (_app_gpu_lock(ctx) or contextlib.nullcontext()):
            documents[kind] = embed_missing(ctx.store, kind, encoder, progress=bar)
        if ctx.session is not None:
            ctx.session.invalidate(kind)
        doc = documents[kind]
        filled = f" (passages added to {doc['chunked']})" if doc.get("chunked") else ""
        ctx.say(f"{kind}: {doc['embedded']} embedded, {doc['cached']} cached{filled}, {len(doc['failed'])} failed "
                f"with {doc['model']} in {doc['seconds']:.1f} s")
        for failure in doc["failed"]:
            ctx.say(f"  skipped {failure['path']}: {failure['reason']}")
    if args.kind:
        return documents[kinds[0]]
    return {"embedded": sum(d["embedded"] for d in documents.values()),
            "cached": sum(d["cached"] for d in documents.values()),
            "failed": [failure for d in documents.values() for failure in d["failed"]],
            "model": {kind: d["model"] for kind, d in documents.items()},
            "seconds": round(sum(d["seconds"] for d in documents.values()), 3), "kinds": documents}


def _models_list(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from anagnorisis.embed.registry import known_models

    rows = known_models(ctx.settings)
    for row in rows:
        size = f"{row['approx_size_mb']:>5.0f} MB" if row["approx_size_mb"] else "  built in"
        state = "downloaded" if row["downloaded"] else "not downloaded"
        used = " (configured)" if row.get("configured") else ""
        damage = row.get("problem") if row.get("problem") not in (None, "not downloaded") else None
        ctx.say(f"{row['kind']:<7} {row['id']:<45} {size}  {state}{used}  {damage or row.get('note') or ''}")
    return {"models": rows}


def _models_download(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    """Fetch the configured model of each kind (or one) into the Hugging Face cache, resuming partial files."""
    from tqdm import tqdm

    from anagnorisis.embed.registry import DownloadRefused, download_for_kind, known_models

    if ctx.settings.offline:
        raise UsageError("downloads are off (ANAGNORISIS_OFFLINE=1); unset it to download models")
    kinds = [check_kind(args.kind)] if args.kind else list(KINDS)
    downloaded: list[dict[str, Any]] = []
    for kind in kinds:
        try:
            folder = download_for_kind(kind, ctx.settings, force=args.force,
                                       tqdm_class=lambda *a, **k: tqdm(*a, file=ctx.stderr, **k))
        except DownloadRefused as error:
            raise UsageError(str(error)) from None
        except Exception as error:  # network or hub errors: say which model, keep what was fetched for a resume
            raise CommandFailed(f"downloading the {kind} model ({ctx.settings.model_for(kind)}) failed: {error}; "
                                "run the command again to resume") from None
        downloaded.append({"kind": kind, "model": ctx.settings.model_for(kind), "path": str(folder) if folder else None})
        ctx.say(f"{kind}: {ctx.settings.model_for(kind)} is in {folder}" if folder else f"{kind}: basic features")
    return {"models": known_models(ctx.settings), "downloaded": downloaded}


def _add_embed_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    embed = commands.add_parser("embed", parents=[common], help="compute missing embeddings")
    embed.add_argument("kind", nargs="?")
    embed.add_argument("--model", help="model id or folder to embed with (default: the configured one)")


def _add_models_list(models_commands: Any, common: argparse.ArgumentParser) -> None:
    models_commands.add_parser("list", parents=[common], help="known models, sizes, downloaded or not")
    download = models_commands.add_parser("download", parents=[common], help="download the configured models")
    download.add_argument("kind", nargs="?")
    download.add_argument("--force", action="store_true", help="download again even if present")


COMMANDS["embed"] = cmd_embed
EXTRA_PARSERS.append(_add_embed_parsers)


# ---------------------------------------------------------------- learning from fewer ratings: next, prefer, why


def cmd_next(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from anagnorisis.taste.queue import next_files
    from anagnorisis.taste.service import TasteError

    kind = check_kind(args.kind)
    if args.n < 1:
        raise UsageError(f"--n must be at least 1, got {args.n}")
    try:
        document = next_files(ctx.store, ctx.settings, kind, args.n, session=ctx.session)
    except TasteError as error:
        raise CommandFailed(str(error)) from None
    if document.get("message"):
        ctx.say(document["message"])
    for item in document["results"]:
        ctx.say(f"{item.get('display_path') or item['path']}  ({item['reason']})")
    return document


def cmd_prefer(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from anagnorisis.taste.queue import record_preference

    kind_a, hash_a, path_a = _resolve_indexed(ctx, args.a)
    kind_b, hash_b, path_b = _resolve_indexed(ctx, args.b)
    if kind_a != kind_b:
        raise UsageError(f"A is {_a(noun(kind_a))} and B {_a(noun(kind_b))}; compare two files of one kind")
    if hash_a == hash_b:
        raise UsageError("A and B have the same content; compare two different files")
    winner, loser = _record_of(ctx, kind_a, path_a), _record_of(ctx, kind_b, path_b)
    document = record_preference(ctx.store, kind_a, winner, loser, tie=args.tie)
    ctx.say(f"recorded: {winner.get('display_path')} " + ("equals " if args.tie else "over ")
            + f"{loser.get('display_path')}")
    return document


def cmd_why(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from anagnorisis.taste.queue import why
    from anagnorisis.taste.service import TasteError

    kind, _content_hash, path_bytes = _resolve_indexed(ctx, args.path)
    record = _record_of(ctx, kind, path_bytes)
    try:
        document = why(ctx.store, ctx.settings, kind, record, session=ctx.session)
    except TasteError as error:
        raise CommandFailed(str(error)) from None
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


def _add_active_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    queue = commands.add_parser("next", parents=[common], help="the files whose rating would teach the model most")
    queue.add_argument("kind")
    queue.add_argument("--n", type=int, default=10, help="how many (default 10)")
    prefer = commands.add_parser("prefer", parents=[common], help="record an A/B choice: A over B (or --tie)")
    prefer.add_argument("a")
    prefer.add_argument("b")
    prefer.add_argument("--tie", action="store_true", help="A and B are equally good")
    explain = commands.add_parser("why", parents=[common], help="the rated files nearest to a file, and the uncertainty")
    explain.add_argument("path")


COMMANDS.update({"next": cmd_next, "prefer": cmd_prefer, "why": cmd_why})
EXTRA_PARSERS.append(_add_active_parsers)


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


def _a(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def _emit_error(ctx_json: bool, stdout: TextIO, stderr: TextIO, code: str, message: str) -> None:
    if ctx_json:
        print(json.dumps({"error": {"code": code, "message": message}}), file=stdout, flush=True)
    else:
        print(f"error: {message}", file=stderr, flush=True)


def absolute(path: str, cwd: str) -> str:
    """A path the caller typed, absolute: `~` expanded, a relative one taken from the caller's folder."""
    return os.path.abspath(os.path.join(cwd, os.path.expanduser(path)))


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
) -> int:
    """Parse and run one command; returns the exit status.

    With a live app on the data dir the command is forwarded to it; `store` is given by the app itself when it
    runs a forwarded command on the store it owns.
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
                  cwd=args.cwd or os.getcwd(), _store=store, owns_store=store is None, session=session,
                  give_up_waiting=(lambda: live_app(settings.data_path) is not None) if forwardable else None)
    try:
        result = COMMANDS[args.command](ctx, args)
    except LockWaitAbandoned as error:  # an app started on the data dir while this waited for it: the app runs it
        info = live_app(settings.data_path)
        if info is not None:
            return _forward(info, args, argv, stdin, stdout, stderr)
        _emit_error(ctx.json_output, stdout, stderr, "failed", str(error))
        return 1
    except UsageError as error:
        _emit_error(ctx.json_output, stdout, stderr, "usage", str(error))
        return 2
    except (CommandFailed, StoreError) as error:
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


# Commands that never forward: they start the app or only read files.
LOCAL_COMMANDS = {"serve"}
# Commands after which the running app reloads its cached records (ratings patch the cache themselves).
READ_ONLY_COMMANDS = {"search", "export", "rate", "unrate", "next", "prefer", "why", "serve"}


# The exit status of a program stopped because the reader of its output left (128 + SIGPIPE, as a shell says).
OUTPUT_CLOSED_STATUS = 141


def main(argv: list[str] | None = None) -> int:
    from anagnorisis.remote import OutputClosed

    try:
        return run(list(sys.argv[1:] if argv is None else argv))
    except (BrokenPipeError, OutputClosed):
        # `… | head` read what it wanted and left: what was committed stays committed; no traceback, and no
        # second error when Python flushes the closed stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OUTPUT_CLOSED_STATUS
