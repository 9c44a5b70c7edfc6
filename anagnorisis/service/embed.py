"""Embeddings and the models that make them: embed what is missing, list and download models (SPEC §2)."""
from __future__ import annotations

from typing import Any, Callable

from anagnorisis.kinds import kind_names
from anagnorisis.service.errors import BadRequest, Failed
from anagnorisis.service.library import check_kind


def encoder_for(session: Any, kind: str, model: str | None = None) -> tuple[Any, Any]:
    """(encoder, status) for a kind: the model named, else the configured one, else its fallback; naming a
    model that cannot be had is Failed (no quiet fallback to the basic features)."""
    from anagnorisis.embed.registry import resolve_encoder

    encoder, status = resolve_encoder(check_kind(kind), session.settings, model=model)
    if not status.available and model:
        raise Failed(f"--model {model}: {status.message.split(';')[0]}; nothing was embedded "
                     "(name a model in the Hugging Face cache or a local model folder)")
    return encoder, status


def embed(session: Any, kind: str, encoder: Any, *, progress: Any = None,
          should_stop: Callable[[], bool] | None = None, gpu_turn: Any = None) -> dict[str, Any]:
    """Embed the files of a kind that have no vector of this encoder yet, one GPU job at a time: inside `gpu_turn`
    (a job's turn, given up when it is cancelled) or else the session's GPU lock. Every batch is stored as it is
    made, so a stop keeps what was done."""
    import contextlib

    from anagnorisis.embed.pipeline import embed_missing

    with gpu_turn or session.gpu_lock or contextlib.nullcontext():
        options = {"should_stop": should_stop} if should_stop is not None else {}
        document = embed_missing(session.store, check_kind(kind), encoder, progress=progress, **options)
    session.invalidate(kind)
    return document


def embed_totals(documents: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """SPEC §1's `embed` JSON when no KIND was named: the sums, and each kind's own document under `kinds`."""
    return {"embedded": sum(d["embedded"] for d in documents.values()),
            "cached": sum(d["cached"] for d in documents.values()),
            "failed": [failure for d in documents.values() for failure in d["failed"]],
            "model": {kind: d["model"] for kind, d in documents.items()},
            "seconds": round(sum(d["seconds"] for d in documents.values()), 3), "kinds": documents}


def models(session: Any) -> list[dict[str, Any]]:
    """Known models, sizes, downloaded or not, and which serves each kind."""
    from anagnorisis.embed.registry import known_models

    return known_models(session.settings)


def download(session: Any, kind: str | None = None, *, force: bool = False,
             tqdm_class: Any = None) -> list[dict[str, Any]]:
    """Fetch the configured model of each kind (or one) into the Hugging Face cache, resuming partial files."""
    from anagnorisis.embed.registry import DownloadRefused, download_for_kind
    from anagnorisis.jobs import JobCancelled

    settings = session.settings
    if settings.offline:
        raise BadRequest("downloads are off (ANAGNORISIS_OFFLINE=1); unset it to download models")
    downloaded: list[dict[str, Any]] = []
    for name in [check_kind(kind)] if kind else kind_names():
        try:
            folder = download_for_kind(name, settings, force=force,
                                       **({"tqdm_class": tqdm_class} if tqdm_class is not None else {}))
        except DownloadRefused as error:
            raise BadRequest(str(error)) from None
        except JobCancelled:
            raise  # a cancelled download keeps what it fetched for a resume
        except Exception as error:  # network or hub errors: say which model, keep what was fetched for a resume
            raise Failed(f"downloading the {name} model ({settings.model_for(name)}) failed: {error}; "
                         "run the command again to resume") from None
        downloaded.append({"kind": name, "model": settings.model_for(name), "path": str(folder) if folder else None})
    return downloaded
