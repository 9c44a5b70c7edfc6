"""What every tab's handlers work with: settings, the session (store + caches), background jobs."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from anagnorisis.config import Settings
from anagnorisis.jobs import Job, Jobs
from anagnorisis.session import Session
from anagnorisis.ui.safe import md

log = logging.getLogger(__name__)


@dataclass
class Loader:
    """What the app runs when a page opens, to fill a tab (then `also`, each the same way)."""

    fn: Any
    inputs: list[Any]
    outputs: list[Any]
    also: tuple[Loader, ...] = ()


@dataclass
class AppContext:
    settings: Settings
    session: Session
    jobs: Jobs = field(default_factory=Jobs)
    served: list[Any] = field(default_factory=list)  # the folders this app last gave Gradio to serve in place
    # Kinds asked of a scan or embed while one runs, for a run right after it (None: every kind).
    again: dict[str, set[str] | None] = field(default_factory=dict)
    again_lock: threading.Lock = field(default_factory=threading.Lock)

    def apply_settings(self, settings: Settings) -> None:
        """Use changed settings from now on (no restart)."""
        self.settings = settings
        self.session.settings = settings

    def model_lines(self) -> list[str]:
        """One Markdown list item per kind: which model serves it, or what is missing and how to get it (the
        messages name model ids from the settings and paths, so they are escaped)."""
        from anagnorisis.kinds import kind_names

        lines = []
        for kind in kind_names():
            try:
                _encoder, status = self.session.encoder(kind)
                lines.append(f"- {md(status.message)}")
            except Exception as error:  # a broken model must not stop the UI from starting
                lines.append(f"- {md(kind)}: {md(error)}")
        return lines

    def refresh_served_paths(self) -> None:
        """Serve exactly the library roots (as they are now) and the previews: a folder added while the app runs
        is served in place at once (not refused, nor copied into Gradio's cache), a removed one no longer."""
        from pathlib import Path

        import gradio as gr
        from gradio.data_classes import _StaticFiles

        wanted = [Path(path).resolve() for path in served_paths(self)]
        # gr.set_static_paths only adds to the process's list: take out what this app gave it before (in place:
        # Gradio's own entries and other apps' stay), so a removed root is no longer served.
        before = set(self.served)
        _StaticFiles.all_paths[:] = [path for path in _StaticFiles.all_paths if path not in before]
        gr.set_static_paths(wanted)
        self.served = wanted

    def _after_running(self, name: str, kinds: list[str] | None) -> Job | None:
        """The running job of this name, with these kinds noted for a run right after it; None when it is free."""
        with self.again_lock:
            job = self.jobs.get(name)
            if job is None or not job.active:
                return None
            if name in self.again and self.again[name] is None or kinds is None:
                self.again[name] = None
            else:
                self.again[name] = (self.again.get(name) or set()) | set(kinds)
            return job

    def _run_again(self, name: str, start: Any) -> None:
        """Start the run asked for while the job of this name ran (a folder added, a document saved meanwhile)."""
        with self.again_lock:
            if name not in self.again:
                return
            kinds = self.again.pop(name)
        start(None if kinds is None else sorted(kinds))

    def start_scan(self, kinds: list[str] | None = None) -> Job:
        """Scan in the background, then embed what is new; the status line shows both. Asked while a scan runs,
        it runs right after that one (with every kind asked for meanwhile)."""
        from anagnorisis.service.library import scan

        running = self._after_running("scan", kinds)
        if running is not None:
            return running

        def work(job: Job) -> dict[str, Any]:
            report = scan(self.session, kinds, lambda done, total, kind: job.progress(done, total, kind),
                          should_stop=job.checkpoint)
            job.note(f"{report.new:d} new, {report.changed:d} changed, {report.missing:d} missing, "
                     f"{len(report.bad)} bad" + (" (stopped: a later scan finishes it)" if report.stopped else ""))
            return report.as_dict()

        def then(job: Job) -> None:
            self.session.invalidate()
            if job.state == "done":
                self.start_embed(kinds)
            self._run_again("scan", self.start_scan)

        return self.jobs.start("scan", work, on_done=then)

    def start_embed(self, kinds: list[str] | None = None) -> Job:
        """Embed what is missing in the background; asked while an embed runs, it runs right after that one."""
        from anagnorisis.kinds import kind_names

        running = self._after_running("embed", kinds)
        if running is not None:
            return running

        def work(job: Job) -> dict[str, Any]:
            from anagnorisis.service.embed import embed

            totals: dict[str, Any] = {}
            for kind in kinds or kind_names():
                if job.checkpoint():
                    break
                encoder, _status = self.session.encoder(kind)
                job.note(f"{kind} with {encoder.model_id}")  # plain text: Job.message, escaped by the status line
                totals[kind] = embed(self.session, kind, encoder, gpu_turn=self.jobs.gpu_turn(job),
                                     progress=lambda done, total: job.progress(done, total),
                                     should_stop=job.checkpoint)
                for failure in totals[kind]["failed"]:
                    job.log_line(f"skipped {failure['path']}: {failure['reason']}")  # plain text: a job's log line
            job.note(", ".join(f"{kind}: {doc.get('embedded', 0):d} embedded"  # plain text: Job.message
                               for kind, doc in totals.items()))
            return totals

        return self.jobs.start("embed", work, on_done=lambda _job: self._run_again("embed", self.start_embed))


def served_paths(ctx: AppContext) -> list[str]:
    """Exactly what the browser may fetch: the library roots and the previews cache."""
    from anagnorisis.store.roots import list_roots

    ctx.session.previews_dir.mkdir(parents=True, exist_ok=True)
    return sorted({str(ctx.session.previews_dir), *(root.path for root in list_roots(ctx.session.store))})
