"""The Settings tab: library folders, models, device, offline mode, file actions, export/import, backups, status."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from anagnorisis.jobs import Job, job_tqdm
from anagnorisis.kinds import kind_names
from anagnorisis.service import ServiceError
from anagnorisis.ui.context import AppContext
from anagnorisis.ui.safe import md


def roots_table(ctx: AppContext) -> list[list[Any]]:
    from anagnorisis.store.roots import list_roots

    return [[root.kind, root.path, "settings" if root.from_config else "added"]
            for root in list_roots(ctx.session.store)]


def add_root(ctx: AppContext, kind: str, path: str) -> tuple[str, list[list[Any]]]:
    """Handler: validate and add a root (the reason when refused), then rescan that kind."""
    from anagnorisis.service import library

    try:
        change = library.add_root(ctx.session, kind, path.strip())
    except ServiceError as error:
        return f"not added: {md(error)}", roots_table(ctx)
    finally:
        ctx.refresh_served_paths()
    ctx.start_scan([kind])
    if change.already:
        return f"{md(path.strip())} is already a {md(kind)} folder; scanning it again now", roots_table(ctx)
    return f"added {md(kind)} folder {md(path.strip())}; scanning it now", roots_table(ctx)


def remove_root(ctx: AppContext, kind: str, path: str) -> tuple[str, list[list[Any]]]:
    from anagnorisis.service import library

    try:
        library.remove_root(ctx.session, kind, path.strip())
    except ServiceError as error:
        return f"not removed: {md(error)}", roots_table(ctx)
    finally:
        ctx.refresh_served_paths()
    return f"removed {md(kind)} folder {md(path.strip())} (ratings stay with the files' content)", roots_table(ctx)


def models_table(ctx: AppContext) -> list[list[Any]]:
    from anagnorisis.embed.registry import known_models

    return [[row["kind"], row["id"], f"{row['approx_size_mb']:.0f} MB" if row["approx_size_mb"] else "—",
             "yes" if row["downloaded"] else "no", "✓" if row.get("configured") else "",
             row.get("problem") or row.get("note") or ""]
            for row in known_models(ctx.settings)]


def change_setting(ctx: AppContext, name: str, value: Any) -> str:
    """Handler: keep a setting in the database and apply it now (a flag, the environment or .env win)."""
    from anagnorisis.embed.registry import forget_encoders
    from anagnorisis.store.settings import save_setting, stored_settings

    fixed = ctx.settings.fixed_by(name)
    if fixed:
        return f"{name} is set by {fixed} for this run; change it there"  # trusted: a setting's name; flag/env/.env
    try:
        save_setting(ctx.session.store, name, value)
    except ValueError as error:
        return f"not saved: {md(error)}"
    ctx.apply_settings(ctx.settings.with_stored(stored_settings(ctx.session.store)))
    if name.endswith("_model") or name == "device":
        forget_encoders()
        ctx.session.invalidate()
        ctx.start_embed()  # the new model embeds in the background; the old vectors stay for a switch back
    return f"saved {name} = {md(getattr(ctx.settings, name))}"  # trusted: name is a setting's name from this module


def start_download(ctx: AppContext, kind: str) -> str:
    """Handler: download the kind's configured model in the background (progress on the status line)."""
    if ctx.settings.offline:
        return "downloads are off (offline mode); turn offline mode off to download models"

    def work(job: Job) -> dict[str, Any]:
        from anagnorisis.service.embed import download

        model = ctx.settings.model_for(kind)
        job.note(f"{kind}: {model} (MB)")  # plain text: a job message
        # Every chunk received is a checkpoint: pause waits there, cancel keeps the partial file for a resume.
        downloaded = download(ctx.session, kind, tqdm_class=job_tqdm(job))[0]
        job.note(f"{kind}: {model} downloaded")  # plain text: a job message
        return downloaded

    def then(job: Job) -> None:
        from anagnorisis.embed.registry import forget_encoders

        if job.state == "done":
            forget_encoders()
            ctx.start_embed([kind])

    ctx.jobs.start(f"download {kind}", work, on_done=then)  # plain text: a job's name
    return f"downloading the {md(kind)} model ({md(ctx.settings.model_for(kind))}); progress on the status line"


def exchange(ctx: AppContext, action: str, path: str) -> str:
    if not (path or "").strip():
        return f"{md(action)} failed: type a file's path first, ending in .csv or .parquet"
    from anagnorisis.service import exchange as files

    run = {"export": files.export, "import": files.import_export,
           "import-anagnorisis": lambda session, path: files.import_anagnorisis(session, path, maps=[],
                                                                                media_dirs={})}[action]
    try:
        document = run(ctx.session, path.strip())
    except ServiceError as error:
        return f"{md(action)} failed: {md(error)}"
    counts = (f"{md(key)} {md(value)}" for key, value in document.items() if not isinstance(value, (list, dict)))
    return f"{md(action)}: " + ", ".join(counts)


def backup(ctx: AppContext) -> str:
    from anagnorisis.store.backup import backup_now, prune_backups

    path = backup_now(ctx.session.store, ctx.settings.data_path)
    if ctx.settings.backup_keep > 0:
        prune_backups(ctx.settings.data_path, max(ctx.settings.backup_keep, 1))
    return f"backup written to {md(path)}"


def status_text(ctx: AppContext) -> str:
    jobs = ctx.jobs.visible()
    jobs_lines = ["**Background jobs**", *(f"- {md(job.describe())}" for job in jobs)]
    lines = jobs_lines if jobs else ["**Background jobs**: none"]
    return "\n".join([*lines, "", "**Models**", *ctx.model_lines()])


@dataclass
class SettingsHandles:
    """The Settings tab's components, by name, for `listen` to wire."""

    roots: Any
    kind: Any
    folder: Any
    add: Any
    remove: Any
    rescan: Any
    roots_message: Any
    model_kind: Any
    model_id: Any
    use_model: Any
    download: Any
    device: Any
    offline: Any
    actions: Any
    settings_message: Any
    exchange_path: Any
    export: Any
    import_: Any
    keep: Any
    every: Any
    backup_button: Any
    old_db: Any
    import_old: Any
    exchange_message: Any
    status: Any


def render(ctx: AppContext) -> SettingsHandles:
    with gr.Accordion("Library folders", open=True):
        roots = gr.Dataframe(headers=["kind", "folder", "from"], value=lambda: roots_table(ctx), interactive=False,
                             elem_id="settings-roots")
        with gr.Row():
            kind = gr.Dropdown(kind_names(), value=kind_names()[0], label="Kind", scale=1)
            folder = gr.Textbox(label="Folder", scale=4, elem_id="settings-folder")
            add = gr.Button("Add", scale=1, elem_id="settings-add-root")
            remove = gr.Button("Remove", scale=1)
            rescan = gr.Button("Rescan all", scale=1)
        roots_message = gr.Markdown(elem_id="settings-roots-message")
    with gr.Accordion("Models and device", open=False):
        gr.Dataframe(headers=["kind", "model", "size", "downloaded", "in use", "note"],
                     value=lambda: models_table(ctx), interactive=False)
        with gr.Row():
            model_kind = gr.Dropdown(kind_names(), value=kind_names()[0], label="Kind")
            model_id = gr.Textbox(label="Model id or folder (or 'basic')")
            use_model = gr.Button("Use this model")
            download = gr.Button("Download models", visible=not ctx.settings.offline, elem_id="settings-download")
        with gr.Row():
            device = gr.Radio(["auto", "cpu", "cuda"], value=ctx.settings.device, label="Device")
            offline = gr.Checkbox(value=ctx.settings.offline, label="Offline (no model downloads)")
            actions = gr.Radio(["off", "move", "trash"], value=ctx.settings.file_actions, label="File actions")
        settings_message = gr.Markdown(elem_id="settings-message")
    with gr.Accordion("Export, import and backups", open=False):
        with gr.Row():
            exchange_path = gr.Textbox(label="File (.csv or .parquet)", scale=4)
            export = gr.Button("Export", scale=1)
            import_ = gr.Button("Import", scale=1)
        with gr.Row():
            keep = gr.Number(value=ctx.settings.backup_keep, precision=0, label="Automatic backups to keep (0 = off)")
            every = gr.Number(value=ctx.settings.backup_interval_hours, label="Every (hours)")
            backup_button = gr.Button("Back up now", elem_id="settings-backup")
        with gr.Row():
            old_db = gr.Textbox(label="The original Anagnorisis' project.db", scale=4,
                                placeholder="/path/to/Anagnorisis-app/database/project.db")
            import_old = gr.Button("Import from Anagnorisis", scale=1, elem_id="settings-import-anagnorisis")
        exchange_message = gr.Markdown(elem_id="settings-exchange-message")
    status = gr.Markdown(elem_id="settings-status")
    return SettingsHandles(roots, kind, folder, add, remove, rescan, roots_message, model_kind, model_id, use_model,
                           download, device, offline, actions, settings_message, exchange_path, export, import_, keep,
                           every, backup_button, old_db, import_old, exchange_message, status)


def listen(ctx: AppContext, tab: SettingsHandles) -> None:
    private = {"api_visibility": "private"}
    gr.Timer(2.0).tick(lambda: status_text(ctx), None, tab.status, show_progress="hidden", **private)
    tab.add.click(lambda k, f: add_root(ctx, k, f), [tab.kind, tab.folder], [tab.roots_message, tab.roots], **private)
    tab.remove.click(lambda k, f: remove_root(ctx, k, f), [tab.kind, tab.folder], [tab.roots_message, tab.roots],
                     **private)
    tab.rescan.click(lambda: (ctx.start_scan() and "rescanning every folder"), None, tab.roots_message, **private)
    tab.use_model.click(lambda k, m: change_setting(ctx, f"{k}_model", m),  # plain text: a setting's name
                        [tab.model_kind, tab.model_id], tab.settings_message, **private)
    tab.download.click(lambda k: start_download(ctx, k), tab.model_kind, tab.settings_message, **private)
    for control, name in ((tab.device, "device"), (tab.offline, "offline"), (tab.actions, "file_actions")):
        control.change(lambda value, name=name: change_setting(ctx, name, value), control, tab.settings_message,
                       **private)
    for control, name in ((tab.keep, "backup_keep"), (tab.every, "backup_interval_hours")):
        control.blur(lambda value, name=name: change_setting(ctx, name, value), control, tab.exchange_message,
                     **private)
    exchanges = ((tab.export, "export", tab.exchange_path), (tab.import_, "import", tab.exchange_path),
                 (tab.import_old, "import-anagnorisis", tab.old_db))
    for button, action, source in exchanges:
        button.click(lambda p, action=action: exchange(ctx, action, p), source, tab.exchange_message, **private)
    tab.backup_button.click(lambda: backup(ctx), None, tab.exchange_message, **private)
