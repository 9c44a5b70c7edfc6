"""The Train tab: teach the taste model a kind's ratings, watch the losses live, read the report, roll back.

Start runs `service.taste.train` on a thread and streams its events (stage messages, the MLP's train/validation
loss per epoch) through a queue into a generator handler, so the loss plot grows while training runs. Stop
asks the training to end; it keeps the best model so far, which is saved like any other. After a training the
tab starts a background predict of every file of that kind (its progress is on the status line) and the
session caches are refreshed when it is done.
"""
from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterator

import gradio as gr
import numpy as np
import pandas as pd

from anagnorisis.config import noun
from anagnorisis.kinds import kind_names
from anagnorisis.jobs import Job, Jobs
from anagnorisis.store.ratings import present_ratings
from anagnorisis.service import ServiceError, taste
from anagnorisis.taste.service import TrainOutcome
from anagnorisis.ui.context import AppContext, Loader
from anagnorisis.ui.safe import md

log = logging.getLogger(__name__)

# The stream sends the browser at most this many updates per second: enough to see the curve grow, few enough
# that a fast training on hundreds of epochs does not flood the websocket.
YIELD_EVERY_SECONDS = 0.25
QUEUE_POLL_SECONDS = 0.1
STOPPING = "Stopping: the best model so far will be kept…"
BUDGET_MODES = ("seconds", "epochs")
DEFAULT_BUDGET = {"seconds": 10, "epochs": 200}
# Column types of each plot's data: Gradio picks an axis's scale from them (an empty untyped frame would make
# every axis categorical for good), so even the empty frames are typed.
LOSS_COLUMNS = {"epoch": "int64", "loss": "float64", "series": "str"}
SCATTER_COLUMNS = {"your rating": "float64", "predicted": "float64"}
HISTOGRAM_COLUMNS = {"rating": "str", "files": "int64"}
CURVE_COLUMNS = {"ratings": "int64", "SROCC": "float64", "series": "str"}
# The learning curve's series: the mean over the random splits and a band of one standard deviation around it.
CURVE_SERIES = ("mean", "mean + sd", "mean − sd")
# The only candidate with a training curve (the others are closed form or have nothing to fit); the loss events
# name their candidate and the plot's series carry that name.
TRAINED_CANDIDATE = "mlp"
LOSS_SPLITS = ("train", "validation")
# How each candidate without a training curve is fitted, for the loss plot's caption.
NO_CURVE_BECAUSE = {"mean": "the mean of your ratings: nothing to train", "knn": "nearest neighbours: nothing to train",
                    "ridge": "closed form: no training curve", "graph": "closed form: no training curve"}
LIVE_LOSS_CAPTION = ("Live: the MLP's loss on the ratings it trains on and on the ratings each fold holds out. "
                     "Which model is chosen is decided when training ends; this line then says.")
# The candidates in the order the report lists them (taste.models.CANDIDATE_NAMES, which imports torch).
CANDIDATE_ROLES = {"mean": "baseline", "knn": "baseline", "ridge": "candidate", "graph": "candidate",
                   "mlp": "candidate", "blend": "blend of the others"}
METRICS_HEADERS = ["model", "role", "MAE", "SROCC", "pairwise accuracy"]
VERSIONS_HEADERS = ["version", "active", "trained (UTC)", "winner", "ratings", "SROCC", "MAE", "pairwise",
                    "predictions", "embedding model"]


# ---------------------------------------------------------------- plain data the handlers produce


@dataclass
class TrainReport:
    """What the tab shows after a training."""

    document: dict[str, Any]
    markdown: str
    metrics: list[list[Any]]
    scatter: pd.DataFrame
    histogram: pd.DataFrame
    curve: pd.DataFrame
    loss_caption: str = ""


@dataclass
class TrainUpdate:
    """One yield of the training stream: the status, the losses so far, and at the end the report."""

    status: str
    losses: pd.DataFrame
    at: float  # time.monotonic() when yielded
    running: bool = True
    report: TrainReport | None = None
    first: bool = False  # the first update of a run: the previous run's report is cleared


@dataclass
class _Live:
    """Loss points and the last stage message, gathered from the training's events."""

    rows: list[tuple[int, float, str]] = field(default_factory=list)
    stage: str = "starting…"
    epoch: int = 0
    stopping: bool = False  # Stop was pressed: the status says so until the final word

    def take(self, event: dict[str, Any]) -> None:
        if event.get("type") == "loss":
            self.epoch = int(event["epoch"])
            candidate = str(event.get("candidate") or TRAINED_CANDIDATE)
            self.rows.append((self.epoch, float(event["train_loss"]), loss_series_label(candidate, "train")))
            self.rows.append((self.epoch, float(event["val_loss"]), loss_series_label(candidate, "validation")))
        elif event.get("type") == "stage":
            self.stage = str(event["message"])

    def losses(self) -> pd.DataFrame:
        return typed_frame(self.rows, LOSS_COLUMNS)

    def status(self) -> str:
        """The status line (Markdown): the stage message may name the embedding model, so it is escaped."""
        doing = STOPPING if self.stopping else f"Training: {md(self.stage)}"
        if not self.rows:
            return doing
        epoch = [row for row in self.rows if row[0] == self.epoch]
        losses = ", ".join(f"{series} loss {loss:.3f}" for _, loss, series in epoch)  # trusted: loss_series_label
        return f"{doing} · epoch {self.epoch:d} · {losses}"  # trusted: doing escaped above, losses numbers


# ---------------------------------------------------------------- the report


def typed_frame(rows: list[tuple[Any, ...]], columns: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(columns)).astype(columns)


def loss_series_label(candidate: str, split: str) -> str:
    """The loss plot's series name: the candidate the curve belongs to and which loss, e.g. "mlp — validation"."""
    return f"{candidate} — {split}"  # plain text: a plot's series name (a candidate name from taste.train's events)


def placeholder_losses() -> pd.DataFrame:
    """The loss plot's first value: no points, but both series named.

    Gradio fixes a plot's colour legend from the value it mounts with and later updates only swap the data, so a
    series missing at mount would never be drawn.
    """
    return typed_frame([(0, float("nan"), loss_series_label(TRAINED_CANDIDATE, split)) for split in LOSS_SPLITS],
                       LOSS_COLUMNS)


def loss_plot_caption(document: dict[str, Any]) -> str:
    """The line under the loss plot (Markdown): whose curves they are, and whether that is the chosen model.

    Only the MLP has a training curve. `document` holds the report's winner and, when known, mlp_epochs,
    mlp_best_epoch and blend_weights ({member: weight}); the plot must never read as the chosen model's training
    when another model was chosen.
    """
    winner = str(document.get("winner") or "")
    epochs, best = int(document.get("mlp_epochs") or 0), int(document.get("mlp_best_epoch") or 0)
    trained = epochs > 0
    if winner == TRAINED_CANDIDATE:
        whose = "These are the chosen model's curves: the MLP's, on the ratings it trained on and on held-out ones."
    elif winner == "blend":
        weights = {str(k): float(v) for k, v in (document.get("blend_weights") or {}).items()}
        weight, total = weights.get(TRAINED_CANDIDATE, 0.0), sum(weights.values())
        if weight > 0 and total > 0:
            whose = (f"The chosen model is blend; the MLP is one of its members ({100 * weight / total:.0f} % "
                     "of its weight), so these are that member's curves.")
        else:
            whose = ("The chosen model is blend, which gives the MLP no weight. "
                     "The MLP's curves are shown for reference.")
    else:
        because = NO_CURVE_BECAUSE.get(winner, "no training curve")
        whose = f"The chosen model is {md(winner)} ({because}). "  # trusted: because is NO_CURVE_BECAUSE's
        whose += "The MLP's curves are shown for reference."
    if not trained:
        return (f"The chosen model is {md(winner)}. The MLP did not train (too few ratings, or stopped before it), "
                "so there is no training curve.")
    return f"{whose} {_mlp_epochs_sentence(epochs, best, document)}"  # trusted: whose escapes the winner, numbers


def _mlp_epochs_sentence(epochs: int, best: int, document: dict[str, Any]) -> str:
    """Which epoch the MLP kept and why it stopped where it did."""
    if best == 0:
        kept = ("No epoch lowered its validation loss, so the MLP kept its starting point (epoch 0: the ridge fit "
                "it starts from)")
    else:
        kept = f"The MLP kept epoch {best:d}, its lowest validation loss"
    if document.get("stopped_early"):
        ended = f"; Stop ended it at epoch {epochs:d}."
    elif document.get("budget_reached"):
        ended = f"; the time budget ended it at epoch {epochs:d}."
    elif epochs > best:
        ended = f"; it stopped at epoch {epochs:d}, {epochs - best:d} epochs without improvement."
    else:
        ended = "."
    return kept + ended


def curve_frame(points: list[Any], sds: list[Any] | None = None) -> pd.DataFrame:
    """The learning curve's rows: the mean SROCC per number of ratings and, with its spread, mean ± one sd."""
    sds = list(sds or [])
    rows: list[tuple[int, float, str]] = []
    for index, (n, mean) in enumerate(points):
        rows.append((int(n), float(mean), CURVE_SERIES[0]))
        if len(sds) == len(points):
            sd = float(sds[index])
            rows += [(int(n), float(mean) + sd, CURVE_SERIES[1]), (int(n), float(mean) - sd, CURVE_SERIES[2])]
    return typed_frame(rows, CURVE_COLUMNS)


def placeholder_curve() -> pd.DataFrame:
    """The learning curve's first value: every series named (see placeholder_losses)."""
    return typed_frame([(0, float("nan"), series) for series in CURVE_SERIES], CURVE_COLUMNS)


def metrics_rows(metrics: dict[str, dict[str, float]], winner: str) -> list[list[Any]]:
    rows = []
    for name in CANDIDATE_ROLES:  # in the report's order
        if name in metrics:
            m = metrics[name]
            role = CANDIDATE_ROLES[name] + (" · chosen" if name == winner else "")
            rows.append([name, role, round(m["mae"], 3), round(m["srocc"], 3), round(m["pairwise_accuracy"], 3)])
    return rows


def rating_histogram(ratings: np.ndarray) -> pd.DataFrame:
    """How many of your ratings fall in each one-point bin (10 counts in 9–10)."""
    values = np.asarray(ratings, dtype=np.float64)
    values = values[np.isfinite(values)]
    counts = np.bincount(np.clip(np.floor(values), 0, 9).astype(int), minlength=10) if values.size else np.zeros(10)
    return typed_frame([(f"{low:d}–{low + 1:d}", int(count)) for low, count in enumerate(counts)], HISTOGRAM_COLUMNS)


def weak_model_warning(document: dict[str, Any]) -> str:
    """A warning when the chosen model orders your ratings no better than chance in cross-validation, else ""."""
    srocc = (document.get("metrics") or {}).get(document.get("winner"), {}).get("srocc")
    if srocc is None or srocc > 0:
        return ""
    return (f"**Not useful yet:** with {int(document.get('n_ratings') or 0)} ratings no model orders your ratings "
            f"better than chance (cross-validated SROCC {srocc:.2f}), so its ratings of your files are close to "
            "guesses. Rate more files — Rate next proposes the ones that teach it most — then train again.")


def report_markdown(document: dict[str, Any]) -> str:
    lines = [
        f"### {md(document['kind'])} model v{int(document['model_version'])}: **{md(document['winner'])}** won",
        md(document["reason"]),
        f"Trained on {int(document['n_ratings'])} ratings and {int(document['n_preferences'])} A/B choices "
        f"({md(document['embedding_model'])} embeddings) in {document['seconds']:.1f} s."
        + (" **Stopped early**: the best model so far was kept." if document["stopped_early"] else ""),
        "MAE: mean absolute error in rating points (lower is better). SROCC: how well the order of the "
        "predictions matches yours (1 is perfect, 0 is chance). Pairwise accuracy: the share of pairs of files "
        "you rated differently that the model puts in your order. Every number is from cross-validation, "
        "on ratings the model did not see.",
    ]
    if not document.get("learning_curve"):
        lines.append("The learning curve appears from 25 ratings on.")
    else:
        repeats = int(document.get("learning_curve_repeats") or 0)
        spread = (f"each point is the mean over {repeats:d} random held-out fifths of your ratings, with a band of "
                  "one standard deviation" if repeats > 1 else "each point is one held-out fifth of your ratings")
        lines.append(f"Learning curve: how well {md(document.get('learning_curve_model') or 'ridge')} (a quick "
                     f"closed-form model, standing in for all of them) orders held-out ratings when trained on "
                     f"fewer of yours; {spread}.")  # trusted: spread is built from a number above
    warning = weak_model_warning(document)
    if warning:
        lines.insert(1, warning)
    return "\n\n".join(lines)


def training_facts(result: Any) -> dict[str, Any]:
    """What the loss plot's caption and the learning curve's line need from a TrainResult, beyond the document."""
    blend = (getattr(result, "candidates", None) or {}).get("blend")
    weights = dict(zip(blend.members, (float(w) for w in blend.weights))) if blend is not None else {}
    return {"mlp_epochs": int(result.mlp_epochs), "mlp_best_epoch": int(result.mlp_best_epoch),
            "budget_reached": bool(result.budget_reached), "blend_weights": weights,
            "learning_curve_model": result.learning_curve_model,
            "learning_curve_repeats": int(getattr(result, "learning_curve_repeats", 0))}


def build_report(outcome: TrainOutcome) -> TrainReport:
    result = outcome.result
    document = {**training_facts(result), **outcome.document}
    actual, predicted = result.scatter()
    scatter = typed_frame(list(zip(np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float))),
                          SCATTER_COLUMNS)
    curve = curve_frame(result.learning_curve, getattr(result, "learning_curve_sd", None))
    return TrainReport(document=document, markdown=report_markdown(document),
                       metrics=metrics_rows(document["metrics"], document["winner"]), scatter=scatter,
                       histogram=rating_histogram(actual), curve=curve, loss_caption=loss_plot_caption(document))


def current_ratings(ctx: AppContext, kind: str) -> np.ndarray:
    """Your ratings of the kind's present files (one per content)."""
    return np.asarray(present_ratings(ctx.session.store, kind), dtype=np.float64)


SavedView = tuple[str, str, list[list[Any]], pd.DataFrame, pd.DataFrame, pd.DataFrame, list[list[Any]]]
# status, report, metrics, scatter, histogram, curve, versions


def saved_view(ctx: AppContext, kind: str) -> SavedView:
    """The tab as it opens (or when the kind changes): the active model's saved report, the histogram of your
    ratings now and the versions. The scatter needs the cross-validated predictions, kept only in this page."""
    histogram = rating_histogram(current_ratings(ctx, kind))
    empty_scatter, versions = typed_frame([], SCATTER_COLUMNS), versions_rows(ctx, kind)
    row = taste.active_model(ctx.session, kind)
    if row is None:
        return (f"No {md(kind)} model yet: rate some files (or answer A/B questions), then press Start.", "", [],
                empty_scatter, histogram, curve_frame([]), versions)
    saved = row["report"]
    document = {"n_preferences": 0, "seconds": 0.0, "stopped_early": False, "reason": "", "learning_curve": [],
                **saved, "model_version": row["version"], "kind": kind, "embedding_model": row["embedding_model"],
                "winner": row["winner"]}
    when = md(str(row["created_at"] or "")[:16].replace("T", " "))
    markdown = (f"*The active model's report, from its training on {when} UTC. "  # trusted: when escaped above
                "The scatter of cross-validated predictions is drawn after a training here.*\n\n"
                + report_markdown(document))
    curve = curve_frame(document["learning_curve"], document.get("learning_curve_sd"))
    status = (f"{md(kind)} model v{int(row['version'])} ({md(row['winner'])}) is active. "
              "Press Start to train a new version.")
    return (status, markdown, metrics_rows(document.get("metrics") or {}, row["winner"]), empty_scatter, histogram,
            curve, versions)


def versions_rows(ctx: AppContext, kind: str) -> list[list[Any]]:
    rows = []
    for v in taste.versions(ctx.session, kind)["versions"]:
        m = v["metrics"] or {}
        rows.append([v["version"], "✓" if v["active"] else "", (v["created_at"] or "")[:19].replace("T", " "),
                     v["winner"], v["n_ratings"], _rounded(m.get("srocc")), _rounded(m.get("mae")),
                     _rounded(m.get("pairwise_accuracy")), v["predicted"], v["embedding_model"]])
    return rows


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


# ---------------------------------------------------------------- background predict


class _PredictQueue:
    """Kinds waiting for a predict; one `predict` job drains them, so a second training never gets lost."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.kinds: list[str] = []

    def push(self, kind: str) -> None:
        with self.lock:
            if kind not in self.kinds:
                self.kinds.append(kind)

    def pop(self) -> str | None:
        with self.lock:
            return self.kinds.pop(0) if self.kinds else None


_PREDICT_QUEUES: "weakref.WeakKeyDictionary[Jobs, _PredictQueue]" = weakref.WeakKeyDictionary()


def start_predict(ctx: AppContext, kind: str) -> Job:
    """Predict every file of `kind` in the background (the `predict` job on the status line)."""
    waiting = _PREDICT_QUEUES.setdefault(ctx.jobs, _PredictQueue())
    waiting.push(kind)

    def work(job: Job) -> dict[str, Any]:
        done: dict[str, Any] = {}
        while not job.checkpoint() and (next_kind := waiting.pop()) is not None:
            job.note(f"{next_kind}: rating every file")  # plain text: a job message
            document = taste.predict(ctx.session, next_kind, progress=job.progress, should_stop=job.checkpoint,
                                     gpu_lock=ctx.jobs.gpu_turn(job))
            done[next_kind] = document
            if document.get("stopped"):  # cancelled: nothing written, the earlier ratings stay
                job.note(f"{next_kind}: stopped; the earlier model ratings stay")  # plain text: a job message
                break
            job.note(f"{next_kind}: {int(document['predicted'])} files rated by "  # plain text: a job message
                     f"model v{int(document['model_version'])}")
        return done

    def then(job: Job) -> None:
        ctx.session.invalidate()
        if waiting.kinds:  # pushed after this job's last look: start another
            ctx.jobs.start("predict", work, on_done=then)

    return ctx.jobs.start("predict", work, on_done=then)


# ---------------------------------------------------------------- training


class Trainer:
    """One training at a time per app: its thread, the events it streams, and Stop."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._busy = threading.Lock()
        self._stop = threading.Event()

    @property
    def running(self) -> bool:
        return self._busy.locked()

    def stop(self) -> str:
        """End the training; the best model so far is kept and saved. Returns what to tell the user."""
        if not self.running:
            return "No training is running."
        self._stop.set()
        return STOPPING

    def stop_button(self) -> Any:
        """Handler: Stop. While a training runs its own stream says "Stopping…" then "Stopped…", in that order; an
        answer from here could land after the stream's last word and leave the tab saying "Stopping…"."""
        said = self.stop()
        return gr.update() if said == STOPPING else said

    def stream(
        self, kind: str, mode: str, budget: float | None, *, predict_after: bool = True
    ) -> Iterator[TrainUpdate]:
        """Handler: train `kind` within the budget, yielding the losses while it runs and the report at the end."""
        seconds, epochs = _budget(mode, budget)
        if not self._busy.acquire(blocking=False):
            yield TrainUpdate("A training is already running; wait for it or press Stop.", _Live().losses(),
                              time.monotonic(), running=False)
            return
        self._stop.clear()
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        thread = threading.Thread(target=self._train, args=(kind, seconds, epochs, events, predict_after),
                                  name=f"train-{kind}", daemon=True)  # plain text: a thread name
        thread.start()
        yield from self._follow(events)

    def _train(self, kind: str, seconds: float | None, epochs: int | None,
               events: "queue.Queue[tuple[str, Any]]", predict_after: bool) -> None:
        try:
            outcome = taste.train(self.ctx.session, kind, seconds=seconds, epochs=epochs,
                                  on_event=lambda event: events.put(("event", event)),
                                  should_stop=self._stop.is_set, gpu_lock=self._gpu_turn(events))
            if predict_after:
                start_predict(self.ctx, kind)
            events.put(("done", outcome))
        except _Cancelled:
            events.put(("error", "Stopped before training began; nothing was saved."))
        except ServiceError as error:  # an "error" payload is the status line's Markdown: its text is escaped
            events.put(("error", md(error)))
        except Exception as error:  # a failed training is reported in the tab, never crashes the app
            log.exception("training %s failed", kind)
            events.put(("error", f"Training failed: {md(error)}"))
        finally:
            self._busy.release()

    @contextlib.contextmanager
    def _gpu_turn(self, events: "queue.Queue[tuple[str, Any]]") -> Iterator[None]:
        """The app's GPU lock (shared with embedding); Stop while waiting for it cancels without training."""
        lock = self.ctx.jobs.gpu_lock
        if lock.locked():
            events.put(("event", {"type": "stage", "message": "waiting for other GPU work (embedding, predict)"}))
        with lock:
            if self._stop.is_set():
                raise _Cancelled
            yield

    def _follow(self, events: "queue.Queue[tuple[str, Any]]") -> Iterator[TrainUpdate]:
        """Updates from the training's events: at most one per YIELD_EVERY_SECONDS, the final one at once."""
        live = _Live()
        yield TrainUpdate(live.status(), live.losses(), time.monotonic(), first=True)
        last_yield, changed, stopping = time.monotonic(), False, False
        while True:
            for what, payload in _drain(events):
                if what == "event":
                    live.take(payload)
                    changed = True
                else:
                    yield _final_update(what, payload, live)
                    return
            if self._stop.is_set() and not stopping:
                live.stopping, stopping, changed, last_yield = True, True, False, time.monotonic()
                yield TrainUpdate(live.status(), live.losses(), last_yield)
            if changed and time.monotonic() - last_yield >= YIELD_EVERY_SECONDS:
                yield TrainUpdate(live.status(), live.losses(), time.monotonic())
                last_yield, changed = time.monotonic(), False


def _drain(events: "queue.Queue[tuple[str, Any]]") -> list[tuple[str, Any]]:
    """Everything queued now (waiting briefly for the first): a busy training may have sent many epochs."""
    try:
        batch = [events.get(timeout=QUEUE_POLL_SECONDS)]
    except queue.Empty:
        return []
    with contextlib.suppress(queue.Empty):
        while True:
            batch.append(events.get_nowait())
    return batch


def _final_update(what: str, payload: Any, live: _Live) -> TrainUpdate:
    if what == "error":
        return TrainUpdate(str(payload), live.losses(), time.monotonic(), running=False)
    document = payload.document
    model = f"v{int(document['model_version'])} ({md(document['winner'])})"
    if document.get("stopped_early"):
        done = f"Stopped early: the best model so far, {model}, is"  # trusted: model is escaped above
    else:
        done = f"Done: model {model} is"  # trusted: model is escaped above
    status = f"{done} active; rating every {md(noun(document['kind']))} in the background."  # trusted: done
    if weak_model_warning(document):
        status += " It is no better than chance yet: see the report."
    return TrainUpdate(status, live.losses(), time.monotonic(), running=False, report=build_report(payload))


class _Cancelled(Exception):
    """Stop was pressed before the training got its turn."""


def _budget(mode: str, budget: float | None) -> tuple[float | None, int | None]:
    """(seconds, epochs) for service.taste.train; an empty or non-positive budget means the default."""
    value = float(budget) if budget not in (None, "") else 0.0
    if value <= 0:
        return None, None
    if mode == "epochs":
        return None, max(1, int(round(value)))
    return value, None


def rollback_to(ctx: AppContext, kind: str, version: float | None) -> tuple[str, list[list[Any]]]:
    """Handler: make a version active again; predicts with it if it never rated the files."""
    if version in (None, "") or not float(version):
        return "Pick a version first: click its row in the table, or type its number.", versions_rows(ctx, kind)
    try:
        document = taste.rollback(ctx.session, kind, int(version))
    except ServiceError as error:
        return f"Not rolled back: {md(error)}", versions_rows(ctx, kind)
    if document["model_version"] == document["previous_version"]:
        already = f"{md(kind)} model v{int(document['model_version'])} is already the active one."
        return already, versions_rows(ctx, kind)
    ctx.jobs.forget("predict")  # "…rated by model vN" on the status line is no longer true
    predicted = next((v["predicted"] for v in taste.versions(ctx.session, kind)["versions"]
                      if v["version"] == document["model_version"]), 0)
    message = (f"{md(kind)} model v{int(document['model_version'])} is active again "
               f"(was v{int(document['previous_version'])}).")
    if not predicted:
        start_predict(ctx, kind)
        message += " It has not rated the files yet: predicting in the background."
    return message, versions_rows(ctx, kind)


def versions_after_predict(ctx: AppContext, kind: str, seen: float | None) -> tuple[Any, float | None]:
    """Handler (timer): the versions table again once a predict job has finished since last time, else no change."""
    job = ctx.jobs.get("predict")
    finished = job.finished if job is not None else None
    if finished is None or finished == seen:
        return gr.update(), seen
    return versions_rows(ctx, kind), finished


# ---------------------------------------------------------------- the tab


@dataclass
class TrainHandles:
    """The Train tab's components."""

    kind: Any
    mode: Any
    budget: Any
    start: Any
    stop: Any
    status: Any
    loss: Any
    loss_caption: Any
    report: Any
    metrics: Any
    scatter: Any
    histogram: Any
    curve: Any
    versions: Any
    version: Any
    roll: Any
    rolled: Any
    predict_seen: Any  # gr.State: the predict job last seen ending
    versions_timer: Any  # refreshes the versions' prediction counts when a background predict ends

    def shown(self) -> list[Any]:
        """What the saved view of a kind fills."""
        return [self.status, self.report, self.metrics, self.scatter, self.histogram, self.curve, self.versions]


def render(ctx: AppContext) -> TrainHandles:
    """Lay out the tab: kind and budget, the live status and loss, the report and plots, the model versions."""
    gr.Markdown("Teach the taste model your ratings of one kind: it learns from the files' embeddings, "
                "picks the best of several models by cross-validation, and then rates every file.")
    with gr.Row():
        kind = gr.Dropdown(kind_names(), value=kind_names()[0], label="Media kind", scale=1, elem_id="train-kind")
        mode = gr.Radio(list(BUDGET_MODES), value="seconds", label="Budget in", scale=1, elem_id="train-mode")
        budget = gr.Number(value=DEFAULT_BUDGET["seconds"], minimum=0, label="Budget (seconds)", scale=1,
                           elem_id="train-budget")
        start = gr.Button("Start", variant="primary", scale=1, elem_id="train-start")
        stop = gr.Button("Stop (keep the best so far)", variant="stop", scale=1, elem_id="train-stop")
    status = gr.Markdown("Press Start to train.", elem_id="train-status")
    loss = gr.LinePlot(placeholder_losses(), x="epoch", y="loss", color="series",
                       title="The MLP's training and validation loss (MSE, rating points²)", height=280,
                       elem_id="train-loss")
    loss_caption = gr.Markdown(elem_id="train-loss-caption")
    report = gr.Markdown(elem_id="train-report")
    metrics = gr.Dataframe(headers=METRICS_HEADERS, value=[], interactive=False, label="Cross-validated metrics",
                           elem_id="train-metrics")
    with gr.Row():
        scatter = gr.ScatterPlot(typed_frame([], SCATTER_COLUMNS), x="your rating", y="predicted",
                                 title="Predicted vs your rating (cross-validated)", x_lim=[0, 10], y_lim=[0, 10],
                                 height=300, elem_id="train-scatter")
        histogram = gr.BarPlot(rating_histogram(np.zeros(0)), x="rating", y="files", title="Your ratings",
                               y_lim=[0, None], height=300, elem_id="train-histogram")
        curve = gr.LinePlot(placeholder_curve(), x="ratings", y="SROCC", color="series",
                            title="Learning curve (ridge; mean ± sd)",
                            height=300, elem_id="train-curve")
    gr.Markdown("### Model versions")
    versions = gr.Dataframe(headers=VERSIONS_HEADERS, value=[], interactive=False, elem_id="train-versions")
    with gr.Row():
        version = gr.Number(value=None, precision=0, label="Version", scale=1, elem_id="train-version")
        roll = gr.Button("Roll back to this version", scale=1, elem_id="train-rollback")
        rolled = gr.Markdown(elem_id="train-rollback-result")
    return TrainHandles(kind, mode, budget, start, stop, status, loss, loss_caption, report, metrics, scatter,
                        histogram, curve, versions, version, roll, rolled, predict_seen=gr.State(None),
                        versions_timer=gr.Timer(2.0))


def listen(ctx: AppContext, handles: TrainHandles) -> Loader:
    """Wire Start (streaming the training), Stop, the budget unit, the kind, roll back and the versions."""
    trainer = Trainer(ctx)
    h = handles

    def as_outputs(update: TrainUpdate, kind_name: str) -> tuple[Any, ...]:
        skip = gr.update()
        done = update.report
        return (
            update.status,
            update.losses,
            done.loss_caption if done else LIVE_LOSS_CAPTION if update.first else skip,
            done.markdown if done else "" if update.first else skip,
            done.metrics if done else [] if update.first else skip,
            done.scatter if done else skip,
            done.histogram if done else skip,
            done.curve if done else skip,
            versions_rows(ctx, kind_name) if not update.running else skip,
            gr.update(interactive=not update.running),
        )

    def run(kind_name: str, mode_name: str, amount: float | None) -> Iterator[tuple[Any, ...]]:
        for update in trainer.stream(kind_name, mode_name, amount):
            yield as_outputs(update, kind_name)

    def budget_label(mode_name: str) -> Any:
        return gr.update(label=f"Budget ({mode_name})", value=DEFAULT_BUDGET.get(mode_name, 10))

    outputs = [h.status, h.loss, h.loss_caption, h.report, h.metrics, h.scatter, h.histogram, h.curve, h.versions,
               h.start]
    h.start.click(run, [h.kind, h.mode, h.budget], outputs, api_visibility="private", show_progress="hidden")
    h.stop.click(trainer.stop_button, None, h.status, api_visibility="private", show_progress="hidden")
    h.mode.change(budget_label, h.mode, h.budget, api_visibility="private")
    shown = h.shown()

    def show_saved(kind_name: str) -> SavedView:
        view = saved_view(ctx, kind_name)
        return (gr.update() if trainer.running else view[0], *view[1:])  # type: ignore[return-value]

    h.kind.change(show_saved, h.kind, shown, api_visibility="private")
    h.roll.click(lambda k, v: rollback_to(ctx, k, v), [h.kind, h.version], [h.rolled, h.versions],
                 api_visibility="private").success(show_saved, h.kind, shown, api_visibility="private")

    def pick_version(event: gr.SelectData) -> Any:
        row = getattr(event, "row_value", None)
        return row[0] if row else gr.update()

    h.versions.select(pick_version, None, h.version, api_visibility="private")
    h.versions_timer.tick(lambda k, seen: versions_after_predict(ctx, k, seen), [h.kind, h.predict_seen],
                          [h.versions, h.predict_seen], api_visibility="private", show_progress="hidden")
    return Loader(show_saved, [h.kind], shown)
