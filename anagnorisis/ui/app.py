"""The Gradio app: `build_app(...)` returns a fresh `AnagnorisisBlocks`; `main()` is what `python app.py` runs."""
from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import signal
import sys
import threading
import json
from collections import OrderedDict
from typing import Any, Callable

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # only an explicit model download goes online

import gradio as gr  # noqa: E402  (the environment above must be set before Gradio is imported)

from anagnorisis.config import Settings, load_settings  # noqa: E402
from anagnorisis.store.files import library_has_files  # noqa: E402
from anagnorisis.ui import jobs_panel  # noqa: E402
from anagnorisis.ui.context import AppContext, Loader  # noqa: E402
from anagnorisis.ui.guard import is_loopback  # noqa: E402
from anagnorisis.ui.images import KEYBOARD_JS  # noqa: E402
from anagnorisis.ui.safe import md, md_code  # noqa: E402
from anagnorisis.ui.wiki import WIKI_JS  # noqa: E402

log = logging.getLogger(__name__)

def check_exposure(settings: Settings, host: str, share: bool) -> tuple[str, str] | None:
    """The auth pair to use; raises PermissionError when the app would be exposed without credentials (SPEC §8)."""
    credentials = (settings.username, settings.password) if settings.username and settings.password else None
    exposed = share or (not is_loopback(host) and not settings.container)
    if exposed and credentials is None:
        what = "--share" if share else f"binding {host}"  # plain text: raised to the terminal
        raise PermissionError(
            f"{what} exposes your library beyond this machine: set ANAGNORISIS_USERNAME and "  # plain text: terminal
            "ANAGNORISIS_PASSWORD first"
        )
    return credentials


# Gradio keeps a session for every session hash it sees: a copy of the whole app's component configuration
# (≈ 0.7 MB here, seven tabs) plus its gr.State values, 10,000 sessions by default. A browser page is one session,
# but a raw HTTP call to a named endpoint (/gradio_api/call/rate …) without a session hash of its own gets a new
# one named after its event id: a script rating 10,000 files through /rate grew the app by 7 GB. Such one-shot
# sessions are kept only for the latest ONE_SHOT_SESSIONS calls; browser and gradio_client sessions, which come
# back, for the latest SESSION_CAPACITY (least recently used first out).
ONE_SHOT_SESSIONS = 32
SESSION_CAPACITY = 500
_EVENT_ID = re.compile(r"[0-9a-f]{32}")  # Gradio's Event id (uuid4().hex), used as the session hash of a bare call


def bound_one_shot_sessions(app: gr.Blocks, keep: int = ONE_SHOT_SESSIONS) -> bool:
    """Make the running app's session store drop one-shot API sessions beyond the latest `keep`; False (and
    Gradio's own policy) where this Gradio's session store is not the one this was written for."""
    holder = getattr(app, "state_holder", None)
    if holder is None or not isinstance(getattr(holder, "session_data", None), OrderedDict):
        log.warning("this Gradio's session store is unknown: one-shot API sessions are kept as Gradio decides")
        return False
    if not isinstance(holder, _BoundedStateHolder):
        holder.__class__ = type("BoundedStateHolder", (_BoundedStateHolder, type(holder)), {})
    holder.one_shot_keep = keep
    holder.one_shots = OrderedDict()
    return True


class _BoundedStateHolder:
    """Mixed into Gradio's StateHolder by bound_one_shot_sessions: its update() also evicts old one-shot sessions."""

    one_shot_keep: int
    one_shots: OrderedDict[str, None]
    session_data: OrderedDict[str, Any]
    time_last_used: dict[str, Any]
    lock: Any

    def update(self, session_id: str) -> None:
        super().update(session_id)  # type: ignore[misc]
        if not _EVENT_ID.fullmatch(session_id):
            return
        with self.lock:
            self.one_shots[session_id] = None
            self.one_shots.move_to_end(session_id)
            while len(self.one_shots) > self.one_shot_keep:
                evicted, _ = self.one_shots.popitem(last=False)
                self.session_data.pop(evicted, None)
                self.time_last_used.pop(evicted, None)


class AnagnorisisBlocks(gr.Blocks):
    """A Blocks whose launch() always passes share and auth explicitly and refuses unsafe exposure."""

    context: AppContext
    _token: str | None = None
    _guard: Any = None
    _announced = False
    _announced_port: int | None = None
    _ready: threading.Event

    @property
    def settings(self) -> Settings:
        return self.context.settings

    def launch(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        from starlette.middleware import Middleware

        from anagnorisis.ui.guard import GuardPolicy, OwnerGuard, host_rule, load_or_create_token

        host = kwargs.pop("server_name", None) or self.settings.host
        share = bool(kwargs.pop("share", False))
        auth = kwargs.pop("auth", None) or check_exposure(self.settings, host, share)
        kwargs.setdefault("server_port", self.settings.port)
        kwargs["show_error"] = False  # an exception's text (it may quote a path) never reaches the page as HTML
        kwargs.setdefault("js", f"() => {{ ({KEYBOARD_JS})(); ({WIKI_JS})(); }}")  # trusted: the app's own code
        open_browser = bool(kwargs.pop("inbrowser", False))  # Gradio would open the address without the token
        inline = kwargs.pop("inline", None)  # Gradio's inline iframe has no token (and the CSP forbids framing)
        quiet = bool(kwargs.get("quiet", False))
        self.context.refresh_served_paths()
        block = not kwargs.pop("prevent_thread_lock", False)
        kwargs.setdefault("state_session_capacity", SESSION_CAPACITY)
        self._token = load_or_create_token(self.settings.data_path)
        self._guard = GuardPolicy(self._token, int(kwargs["server_port"]),
                                  host_rule(host, self.settings.allowed_hosts, share), password_login=auth is not None)
        app_kwargs = dict(kwargs.pop("app_kwargs", None) or {})
        app_kwargs["middleware"] = [*app_kwargs.get("middleware", []), Middleware(OwnerGuard, policy=self._guard)]
        app_kwargs["lifespan"] = self._announcing(int(kwargs["server_port"]), app_kwargs.get("lifespan"))
        self._ready = threading.Event()
        try:
            result = super().launch(*args, server_name=host, share=share, auth=auth, prevent_thread_lock=True,
                                    app_kwargs=app_kwargs, inline=False, **kwargs)
        except BaseException:
            self._release()  # the port was taken, or Gradio gave up: no announcement outlives a failed start
            raise
        self._guard.starting = False
        self._guard.port = int(getattr(self, "server_port", None) or kwargs["server_port"])
        bound_one_shot_sessions(self)
        if self._announced_port != self._guard.port:  # Gradio served elsewhere than asked (its SSR proxy)
            self._announce_port(self._guard.port)
        self._ready.set()  # forwarded commands that arrived while it started run now
        if not quiet:
            print(f"Anagnorisis is running. Open {self.owner_url}", flush=True)  # plain text: the terminal
            print("(the address holds your token: anyone who has it can use the app)", flush=True)
        if open_browser:
            _open_in_browser(self.owner_url)
        if (gr.utils.ipython_check() if inline is None else inline) and not quiet:
            _show_link_in_notebook(self.owner_url)
        self.context.start_scan()  # background: the UI is served meanwhile
        self._backups.start()
        threading.Thread(target=_warm_up_taste, name="warm-up-taste", daemon=True).start()
        if block:
            self.block_thread()
        return result

    @property
    def token(self) -> str | None:
        """The owner's token while the app serves."""
        return self._token

    @property
    def owner_url(self) -> str:
        """The address to open: `http://127.0.0.1:7860/?token=…` (the bare address with a password login)."""
        port = int(getattr(self, "server_port", None) or self.settings.port)
        host = self.settings.host if not hasattr(self, "server_name") else self.server_name
        shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
        shown = f"[{shown}]" if ":" in shown else shown  # plain text: an address
        base = f"http://{shown}:{port}/"  # plain text: an address
        if self._token is None or (self._guard is not None and self._guard.password_login):
            return base
        return f"{base}?token={self._token}"  # plain text: an address

    def _announcing(self, port: int, user_lifespan: Any) -> Any:
        """The server's startup hook, which uvicorn runs before it binds the port: it opens the CLI route and
        writes app.json, so a command run the moment the page first answers finds the app (SPEC §1)."""

        @contextlib.asynccontextmanager
        async def lifespan(server_app: Any) -> Any:
            from anagnorisis.ui.forwarding import install_cli_route

            assert self._token is not None
            install_cli_route(server_app, self.context, self._token, self._ready)
            self._announce_port(port)
            if user_lifespan is None:
                yield None
            else:
                async with user_lifespan(server_app) as state:
                    yield state

        return lifespan

    def _announce_port(self, port: int) -> None:
        """Own the data dir: write app.json {pid, port, token} for the CLI to forward with."""
        from anagnorisis.remote import write_app_file

        assert self._token is not None
        write_app_file(self.settings.data_path, port, self._token)
        self._announced_port = port
        if not self._announced:
            self._announced = True
            atexit.register(self._release)

    @property
    def _backups(self) -> Any:
        from anagnorisis.store.backup import AutoBackup

        if not hasattr(self, "_auto_backup"):
            self._auto_backup = AutoBackup(self.context.session.store, self.settings.data_path,
                                           self.settings.backup_keep, self.settings.backup_interval_hours)
        return self._auto_backup

    def _release(self) -> None:
        from anagnorisis.remote import remove_app_file

        self._backups.stop()
        if self._token and self._announced:
            remove_app_file(self.settings.data_path, self._token)
            self._announced = False

    def close(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """Stop serving and let go of the data dir (app.json and the database file)."""
        self._release()
        try:
            return super().close(*args, **kwargs)
        finally:
            self.context.session.store.close()


APP_TABS = ("Train", "Wiki", "Settings")  # after the media kinds' own tabs


def tab_names() -> tuple[str, ...]:
    """The tabs in order: each media kind's (as the kinds registry names them), then the app's own."""
    from anagnorisis.kinds import all_kinds

    return (*(kind.tab for kind in all_kinds() if kind.tab), *APP_TABS)


def tab_modules() -> dict[str, Any]:
    """Each tab's module (`anagnorisis.ui.<name>` with `render(ctx)`, and `listen(ctx, handles)` where it splits
    them), or None while it is not built yet."""
    import importlib

    modules: dict[str, Any] = {}
    for name in tab_names():
        try:
            modules[name] = importlib.import_module(f"anagnorisis.ui.{name.lower()}")  # trusted: a tab name
        except ModuleNotFoundError as error:
            if error.name != f"anagnorisis.ui.{name.lower()}":  # trusted: a tab name
                raise
            modules[name] = None
    return modules


def render_tab(module: Any, ctx: AppContext) -> Loader | None:
    """A tab's components (`render(ctx)`), then its events (`listen(ctx, handles)`); a tab without `listen`
    does both in `render`."""
    handles = module.render(ctx)
    listen = getattr(module, "listen", None)
    return handles if listen is None else listen(ctx, handles)


def first_start_text(ctx: AppContext) -> str:
    from anagnorisis.store.roots import list_roots

    folders = "\n".join(f"- **{md(root.kind)}**: {md_code(root.path)}" for root in list_roots(ctx.session.store))
    return (
        "### How to begin\n"
        "Your library is empty. Put files into these folders (or add your own folders with "
        "`python -m anagnorisis library add KIND PATH`), then press **Rescan**:\n\n"
        f"{folders}\n\n"  # trusted: built from escaped values above
        "Rate a few files with the slider (0–10); the Train tab then learns your taste from them."
    )


def library_is_empty(ctx: AppContext) -> bool:
    return not library_has_files(ctx.session.store)


def download_label(ctx: AppContext) -> str:
    """'Download models (N MB)' for the configured models not on disk yet (sizes are approximate)."""
    from anagnorisis.embed.registry import catalog_for
    from anagnorisis.kinds import kind_names

    sizes = {(kind, model.id): model.approx_size_mb for kind in kind_names() for model in catalog_for(kind)}
    wanted = {ctx.settings.model_for(kind): sizes.get((kind, ctx.settings.model_for(kind)), 0)
              for kind in kind_names()}
    total = sum(wanted.values())  # one download per model id (images and videos share SigLIP)
    return f"Download models (about {total:,} MB)" if total else "Download models"


def download_all(ctx: AppContext) -> str:
    from anagnorisis.kinds import kind_names
    from anagnorisis.ui.settings import start_download

    return "\n\n".join(start_download(ctx, kind) for kind in kind_names())


def models_text(ctx: AppContext) -> str:
    return "**Models**\n" + "\n".join(ctx.model_lines())


def _named_endpoints(ctx: AppContext) -> None:
    """`/rate`, `/unrate`, `/search`, `/next`, `/prefer`, `/why`: the CLI's argument names and JSON objects, from
    the same service calls the CLI makes."""
    from anagnorisis.search import SearchRequest
    from anagnorisis.service import ServiceError, ratings, taste
    from anagnorisis.service.search import search as run_search
    from anagnorisis.store.records import public_record

    def answer(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        try:
            return json.loads(json.dumps(work(), default=str))  # the CLI's --json object, value for value
        except ServiceError as error:
            raise gr.Error(str(error)) from None

    def rate(path: str, rating: float) -> dict[str, Any]:
        return answer(lambda: {"record": public_record(
            ratings.rate(ctx.session, os.path.abspath(path), ratings.parse_rating(rating)))})

    def unrate(path: str) -> dict[str, Any]:
        return answer(lambda: {"record": public_record(ratings.unrate(ctx.session, os.path.abspath(path)))})

    def search(kind: str, query: str | None = None, mode: str = "auto", sort: str | None = None,
               order: str = "desc", temperature: float = 0.0, seed: int = 0, offset: int = 0, limit: int = 24,
               folder: str | None = None, rated: bool = False, unrated: bool = False, rating: str | None = None,
               model_rating: str | None = None, ext: str | None = None) -> dict[str, Any]:
        if query and mode in (None, "auto", "similar") and os.path.exists(os.path.abspath(query)):
            query = os.path.abspath(query)  # a file path, as the CLI takes it

        def work() -> dict[str, Any]:
            request = SearchRequest(kind=kind, query=query or None, mode=mode or "auto", sort=sort or None,
                                    order=order, temperature=float(temperature), seed=int(seed),
                                    offset=int(offset), limit=int(limit),
                                    folder=os.path.abspath(folder) if folder else None,
                                    rated=True if rated else False if unrated else None, rating=rating or None,
                                    model_rating=model_rating or None, ext=ext or None)
            return run_search(ctx.session, request).to_dict()

        return answer(work)

    def next_(kind: str, n: int = 10) -> dict[str, Any]:
        return answer(lambda: taste.next_files(ctx.session, kind, int(n)))

    def prefer(a: str, b: str, tie: bool = False) -> dict[str, Any]:
        return answer(lambda: {"preference": ratings.prefer(ctx.session, os.path.abspath(a), os.path.abspath(b),
                                                            tie=bool(tie))["preference"]})

    def why(path: str) -> dict[str, Any]:
        return answer(lambda: taste.why(ctx.session, os.path.abspath(path))[1])

    gr.api(rate, api_name="rate")
    gr.api(unrate, api_name="unrate")
    gr.api(search, api_name="search")
    gr.api(next_, api_name="next")
    gr.api(prefer, api_name="prefer")
    gr.api(why, api_name="why")


def build_app(data_dir: str | None = None, config: str | None = None, **settings: Any) -> AnagnorisisBlocks:
    """A fresh app over the data dir; the database opens now, scanning starts in the background on first load."""
    from anagnorisis.service.library import open_library
    from anagnorisis.session import Session

    from anagnorisis.store.settings import stored_settings

    resolved = load_settings({"data_dir": data_dir, "config": config, **settings})
    store = open_library(resolved)
    resolved = resolved.with_stored(stored_settings(store))
    ctx = AppContext(resolved, Session(resolved, store))
    ctx.session.gpu_lock = ctx.jobs.gpu_lock
    ctx.session.jobs = ctx.jobs  # `jobs` forwarded from the CLI reaches them through the session
    with AnagnorisisBlocks(title="Anagnorisis", analytics_enabled=False) as app:
        app.context = ctx
        with gr.Row():
            gr.Markdown("# Anagnorisis")
            status = gr.Markdown("starting…", elem_id="status-line")
            rescan = gr.Button("Rescan", scale=0, elem_id="rescan")
        jobs_panel.render(ctx)
        with gr.Column(visible=library_is_empty(ctx), elem_id="first-start") as first_start:
            gr.Markdown(first_start_text(ctx))
            models = gr.Markdown("**Models**: checking…", elem_id="models-status")
            download = gr.Button(download_label(ctx), visible=not ctx.settings.offline, elem_id="first-start-download")
            downloading = gr.Markdown()
        loaders = []
        for name, module in tab_modules().items():
            with gr.Tab(name, elem_id=f"tab-{name.lower()}"):
                if module is not None:
                    loader = render_tab(module, ctx)
                    if loader is not None:
                        loaders.append(loader)
                    continue
                gr.Markdown("*This tab is being built.*")
        _named_endpoints(ctx)

        timer = gr.Timer(1.0)
        has_files = [not library_is_empty(ctx)]  # once true, the first-start panel's tick reads no more

        def tick() -> tuple[str, Any]:
            """The status line, and the first-start panel until a scan has found files (then left as it is)."""
            if has_files[0]:
                return f"Status: {md(ctx.jobs.status_line())}", gr.update()
            has_files[0] = not library_is_empty(ctx)
            return f"Status: {md(ctx.jobs.status_line())}", gr.update(visible=not has_files[0])

        timer.tick(tick, None, [status, first_start], api_visibility="private", show_progress="hidden")
        rescan.click(lambda: ctx.start_scan() and None, None, None, api_visibility="private")
        for loader in loaders:
            for one in (loader, *loader.also):
                app.load(one.fn, one.inputs, one.outputs, api_visibility="private")
        app.load(lambda: gr.update(visible=library_is_empty(ctx)), None, first_start, api_visibility="private")
        app.load(lambda: models_text(ctx), None, models, api_visibility="private")
        download.click(lambda: download_all(ctx), None, downloading, api_visibility="private")
    return app


# glibc raises its mmap threshold to the size of each large block freed (up to 32 MB), after which numpy's
# temporaries of rate next and why (a few MB each, on many request threads) are carved from the heaps and stay
# there as fragments: +120 MB of RSS over six /next calls at 100k files (bench/app.py). A fixed threshold keeps
# blocks of 256 KiB and up in their own mappings, given back to the system when freed.
MMAP_THRESHOLD_BYTES = 256 << 10
_M_MMAP_THRESHOLD = -3


def fix_mmap_threshold(size: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Set glibc's mmap threshold once for the process (no-op where the C library is not glibc)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, int(size)))
    except (OSError, AttributeError):
        return False


def _warm_up_taste() -> None:
    """Import rate next's modules (torch comes with them, ≈ 2 s) once the UI is served, so the first /next does not
    pay for it; building the text encoder no longer imports torch at start."""
    try:
        import anagnorisis.taste.queue  # noqa: F401
    except Exception:  # noqa: BLE001 - the request that needs it reports the error
        log.debug("warming up the taste modules failed", exc_info=True)


def _open_in_browser(url: str) -> None:
    """Open the owner's address where there is a screen to show it on (not over SSH, not in a container)."""
    import webbrowser

    has_screen = sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or
                                                               os.environ.get("WAYLAND_DISPLAY"))
    if has_screen and not os.environ.get("ANAGNORISIS_CONTAINER"):
        threading.Thread(target=webbrowser.open, args=(url,), name="open-browser", daemon=True).start()


def _show_link_in_notebook(url: str) -> None:
    """In a notebook, a link that opens the app with its token in a new tab (a framed app would get no cookie)."""
    import html

    try:
        from IPython.display import HTML, display
    except ImportError:
        return
    address = html.escape(url, quote=True)
    link = f'<a href="{address}" target="_blank" rel="noopener">Open Anagnorisis</a>'  # trusted: html.escape'd
    display(HTML(f"{link} ({address})"))  # trusted: html.escape'd


def _stop_on_sigterm() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


def run_app(*, host: str | None, port: int | None, share: bool, data_dir: str | None, config: str | None,
            open_browser: bool = False) -> int:
    """Build the app over the data dir and serve it until stopped; the exit status."""
    fix_mmap_threshold()
    from anagnorisis.store import StoreError

    try:
        app = build_app(data_dir, config, host=host, port=port)
    except StoreError as error:
        print(f"error: {error}", file=sys.stderr)  # plain text: the terminal
        return 1
    _stop_on_sigterm()
    code = 0
    try:
        app.launch(share=share, inbrowser=open_browser)
    except PermissionError as error:
        print(f"error: {error}", file=sys.stderr)  # plain text: the terminal
        code = 2
    finally:
        app._release()
        _exit_now(app, code)
    return code  # not reached


def _exit_now(app: AnagnorisisBlocks, code: int) -> None:
    """Close the database (after any write in progress) and end the process without the interpreter's shutdown.

    A stop moments after start (SIGTERM from `docker stop`, Ctrl-C) can find a job thread inside DuckDB or an
    import of torch; the interpreter's shutdown then ends those daemon threads by unwinding them through C++ code,
    which aborts the process ("FATAL: exception not rethrown", status 134). Every acknowledged rating is already
    committed; closing the store checkpoints it.
    """
    try:
        app.context.session.store.close()
    finally:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
