"""The taste model: train, predict, versions and rollback; rate next and why (SPEC §6)."""
from __future__ import annotations

from typing import Any, Callable

from anagnorisis.service.errors import BadRequest, Failed
from anagnorisis.service.library import check_kind
from anagnorisis.store.records import Record


def _positive(value: float | int | None, name: str) -> None:
    if value is not None and value <= 0:
        raise BadRequest(f"{name} must be positive, got {value}")


def train(session: Any, kind: str, *, seconds: float | None = None, epochs: int | None = None,
          on_event: Callable[[dict[str, Any]], None] | None = None, should_stop: Callable[[], bool] | None = None,
          gpu_lock: Any = None) -> Any:
    """Train the taste model of a kind and save it as the next active version (does not predict): the
    TrainOutcome (its `document` is the report SPEC §1 prints; its result and data draw the Train tab's plots)."""
    from anagnorisis.taste.service import TasteError, train_and_save

    kind = check_kind(kind)
    _positive(seconds, "--seconds")
    _positive(epochs, "--epochs")
    try:
        return train_and_save(session.store, session.settings, kind, seconds=seconds, epochs=epochs,
                              on_event=on_event, should_stop=should_stop,
                              gpu_lock=gpu_lock if gpu_lock is not None else session.gpu_lock)
    except TasteError as error:
        raise Failed(str(error)) from None


def predict(session: Any, kind: str, *, progress: Callable[[int, int], None] | None = None,
            should_stop: Callable[[], bool] | None = None, gpu_lock: Any = None) -> dict[str, Any]:
    """The active model rates every file of a kind (a stop writes nothing: the earlier ratings stay)."""
    from anagnorisis.taste.service import TasteError, predict_kind

    kind = check_kind(kind)
    try:
        document = predict_kind(session.store, session.settings, kind, progress=progress, should_stop=should_stop,
                                gpu_lock=gpu_lock if gpu_lock is not None else session.gpu_lock)
    except TasteError as error:
        raise Failed(str(error)) from None
    session.invalidate(kind)
    return document


def active_model(session: Any, kind: str) -> dict[str, Any] | None:
    """The active model's row (version, winner, its saved report), or None before the first training."""
    from anagnorisis.taste.service import active_model as stored

    return stored(session.store, check_kind(kind))


def versions(session: Any, kind: str) -> dict[str, Any]:
    from anagnorisis.taste.service import active_version, model_versions

    kind = check_kind(kind)
    return {"kind": kind, "active_version": active_version(session.store, kind),
            "versions": model_versions(session.store, kind)}


def rollback(session: Any, kind: str, version: int | str) -> dict[str, Any]:
    from anagnorisis.taste.service import TasteError, rollback as roll_back

    kind = check_kind(kind)
    try:
        number = int(str(version).lstrip("vV"))
    except ValueError:
        raise BadRequest(f"VERSION must be a number like 3, got {version!r}") from None
    try:
        document = roll_back(session.store, kind, number)
    except TasteError as error:
        raise Failed(str(error)) from None
    session.invalidate(kind)
    return document


def next_files(session: Any, kind: str, n: int = 10) -> dict[str, Any]:
    """The rate-next queue, most useful first."""
    from anagnorisis.taste.queue import next_files as queue
    from anagnorisis.taste.service import TasteError

    kind = check_kind(kind)
    if int(n) < 1:
        raise BadRequest(f"--n must be at least 1, got {n}")
    try:
        return queue(session.store, session.settings, kind, int(n), session=session)
    except TasteError as error:
        raise Failed(str(error)) from None


def why(session: Any, path: str) -> tuple[Record, dict[str, Any]]:
    """(the file's record, the rated files nearest to it and the model's uncertainty)."""
    from anagnorisis.service.ratings import record_at, resolve_indexed
    from anagnorisis.taste.queue import why as explain
    from anagnorisis.taste.service import TasteError

    kind, _content_hash, path_bytes = resolve_indexed(session, path)
    record = record_at(session, kind, path_bytes)
    try:
        return record, explain(session.store, session.settings, kind, record, session=session)
    except TasteError as error:
        raise Failed(str(error)) from None
