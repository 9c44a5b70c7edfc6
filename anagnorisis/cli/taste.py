"""`train`, `predict`, `embed` and `models versions|rollback|list|download`."""
from __future__ import annotations

import argparse
from typing import Any, TextIO

from anagnorisis.cli.context import Context, Parser, UsageError
from anagnorisis.config import noun
from anagnorisis.kinds import kind_names
from anagnorisis.service import embed as embedding
from anagnorisis.service import taste
from anagnorisis.service.library import check_kind


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


def cmd_train(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    kind = check_kind(args.kind)
    progress = _TrainProgress(ctx.stderr)
    try:
        document = taste.train(ctx.session, kind, seconds=args.seconds, epochs=args.epochs,
                               on_event=progress).document
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

    kind = check_kind(args.kind)
    bars: list[Any] = []

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, desc=f"predict {kind}", unit="file", file=ctx.stderr, leave=False))
        bars[0].n = done
        bars[0].refresh()

    try:
        document = taste.predict(ctx.session, kind, progress=progress)
    finally:
        for bar in bars:
            bar.close()
    ctx.say(f"{kind} model v{document['model_version']} rated {document['predicted']} files in "
            f"{document['seconds']:.1f} s" + (f"; {document['not_embedded']} files have no "
                                               f"{document['embedding_model']} embedding yet"
                                               if document["not_embedded"] else ""))
    return document


def cmd_embed(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    """Embed what has no vector yet, kind by kind; SPEC §1 JSON (per kind under `kinds` when no KIND is given)."""
    from tqdm import tqdm

    kinds = [check_kind(args.kind)] if args.kind else kind_names()
    if args.model and not args.kind:
        raise UsageError("--model needs a KIND: a model embeds one kind")
    documents: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        encoder, status = embedding.encoder_for(ctx.session, kind, args.model)
        if not status.available:
            print(f"note: {status.message}", file=ctx.stderr, flush=True)
        with tqdm(desc=f"embed {kind}", unit="file", file=ctx.stderr, leave=False) as bar:
            documents[kind] = embedding.embed(ctx.session, kind, encoder, progress=bar)
        doc = documents[kind]
        filled = f" (passages added to {doc['chunked']})" if doc.get("chunked") else ""
        ctx.say(f"{kind}: {doc['embedded']} embedded, {doc['cached']} cached{filled}, {len(doc['failed'])} failed "
                f"with {doc['model']} in {doc['seconds']:.1f} s")
        for failure in doc["failed"]:
            ctx.say(f"  skipped {failure['path']}: {failure['reason']}")
    return documents[kinds[0]] if args.kind else embedding.embed_totals(documents)


def _models_versions(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    document = taste.versions(ctx.session, args.kind)
    kind = document["kind"]
    if not document["versions"]:
        ctx.say(f"no {kind} model trained yet (`python -m anagnorisis train {kind}`)")
    for v in document["versions"]:
        m = v["metrics"] or {}
        quality = (f"SROCC {m['srocc']:.3f}, MAE {m['mae']:.2f}" if m else "no cross-validation")
        ctx.say(f"{'*' if v['active'] else ' '} v{v['version']:<4} {v['created_at']}  {v['winner']:<6} "
                f"{v['n_ratings']} ratings, {quality}, {v['predicted']} predictions, {v['embedding_model']}")
    return document


def _models_rollback(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    kind = check_kind(args.kind)
    document = taste.rollback(ctx.session, kind, args.version)
    version = int(str(args.version).lstrip("vV"))
    ctx.say(f"{kind} model v{version} is active again (was v{document['previous_version']}); "
            f"run `python -m anagnorisis predict {kind}` if it has not rated every file yet")
    return document


def _models_list(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    rows = embedding.models(ctx.session)
    for row in rows:
        size = f"{row['approx_size_mb']:>5.0f} MB" if row["approx_size_mb"] else "  built in"
        state = "downloaded" if row["downloaded"] else "not downloaded"
        used = " (configured)" if row.get("configured") else ""
        damage = row.get("problem") if row.get("problem") not in (None, "not downloaded") else None
        ctx.say(f"{row['kind']:<7} {row['id']:<45} {size}  {state}{used}  {damage or row.get('note') or ''}")
    return {"models": rows}


def _models_download(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    from tqdm import tqdm

    downloaded = embedding.download(ctx.session, args.kind, force=args.force,
                                    tqdm_class=lambda *a, **k: tqdm(*a, file=ctx.stderr, **k))
    for item in downloaded:
        ctx.say(f"{item['kind']}: {item['model']} is in {item['path']}" if item["path"]
                else f"{item['kind']}: basic features")
    return {"models": embedding.models(ctx.session), "downloaded": downloaded}


MODELS_SUBCOMMANDS = {"versions": _models_versions, "rollback": _models_rollback, "list": _models_list,
                      "download": _models_download}


def cmd_models(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return MODELS_SUBCOMMANDS[args.models_command](ctx, args)


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    train = commands.add_parser("train", parents=[common], help="train the taste model of a kind (does not predict)")
    train.add_argument("kind")
    train.add_argument("--seconds", type=float, help="time budget; the best model so far is kept when it ends")
    train.add_argument("--epochs", type=int, help="train the MLP for exactly this many epochs")
    predict = commands.add_parser("predict", parents=[common], help="the current model rates every file of a kind")
    predict.add_argument("kind")
    embed = commands.add_parser("embed", parents=[common], help="compute missing embeddings")
    embed.add_argument("kind", nargs="?")
    embed.add_argument("--model", help="model id or folder to embed with (default: the configured one)")
    models = commands.add_parser("models", parents=[common], help="models: taste model versions and rollback")
    models_commands = models.add_subparsers(dest="models_command", required=True, parser_class=Parser)
    versions = models_commands.add_parser("versions", parents=[common], help="trained taste model versions of a kind")
    versions.add_argument("kind")
    back = models_commands.add_parser("rollback", parents=[common], help="make an older taste model version active")
    back.add_argument("kind")
    back.add_argument("version")
    models_commands.add_parser("list", parents=[common], help="known models, sizes, downloaded or not")
    download = models_commands.add_parser("download", parents=[common], help="download the configured models")
    download.add_argument("kind", nargs="?")
    download.add_argument("--force", action="store_true", help="download again even if present")


COMMANDS = {"train": cmd_train, "predict": cmd_predict, "embed": cmd_embed, "models": cmd_models}
