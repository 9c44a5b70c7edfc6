"""Every setting in one table; precedence: CLI flag > process environment > .env > YAML file > default."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml
from dotenv import dotenv_values



def noun(kind: str, count: int = 1) -> str:
    """The word for `count` files of a kind ("image", "tracks"): "3 images are rated", not "3 images files"; an
    unknown kind is called files."""
    from anagnorisis.kinds.registry import find_kind

    media_kind = find_kind(kind)
    if media_kind is None:
        return f"{kind} file" if count == 1 else f"{kind} files"
    return media_kind.noun_for(count)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected a yes/no value, got {value!r}")


def _paths(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value if str(item)]
    return [part for part in str(value).split(os.pathsep) if part]


def _choice(*allowed: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {value!r}")
        return text

    return parse


@dataclass(frozen=True)
class Setting:
    name: str  # attribute name; the environment key is ANAGNORISIS_<NAME>
    default: Any
    help: str
    parse: Callable[[Any], Any] = str

    @property
    def env_key(self) -> str:
        return f"ANAGNORISIS_{self.name.upper()}"


COMMON_SETTINGS: tuple[Setting, ...] = (
    Setting("data_dir", "./data", "Folder for the database, trained models, previews cache and logs."),
    Setting("config", "", "YAML file with settings (keys are the lower-case names without the ANAGNORISIS_ prefix)."),
    Setting("host", "127.0.0.1", "Address the app binds; anything but loopback needs a username and password."),
    Setting("port", 7860, "Port the app serves on.", int),
    Setting("offline", False, "1 forbids model downloads and hides the download button.", _bool),
    Setting("username", "", "Login name; required with a non-loopback bind or --share."),
    Setting("password", "", "Password; required with a non-loopback bind or --share."),
    Setting("device", "auto", "Where models run: auto (CUDA when present), cpu or cuda.", _choice("auto", "cpu", "cuda")),
    Setting("file_actions", "off", "File actions in the UI: off, move (move/rename) or trash (also send to trash).",
            _choice("off", "move", "trash")),
    Setting("backup_keep", 5, "How many automatic database backups to keep (0 turns them off).", int),
    Setting("backup_interval_hours", 24.0, "Hours between automatic database backups while the app runs.", float),
    Setting("lock_wait_seconds", 30.0, "How long a command waits for another process to release the database.", float),
    Setting("allowed_hosts", [], "Other host names the app answers to (behind a proxy or a DNS name), separated by "
            f"'{os.pathsep}'; requests naming any other host are refused.", _paths),
    Setting("container", False, "Set by the Docker image: binding 0.0.0.0 inside the container is allowed.", _bool),
)

# Settings a person may change in the Settings tab (besides each kind's model); kept in the database.
COMMON_UI_SETTINGS = ("offline", "device", "file_actions", "backup_keep", "backup_interval_hours")


def kind_settings(kind: Any) -> tuple[Setting, Setting]:
    """A media kind's own settings: its embedding model, and its library folders."""
    return (Setting(f"{kind.name}_model", kind.default_model, f"Embedding model id or local path for {kind.name}."),
            Setting(f"{kind.name}_roots", [], f"Library folders of {kind.name}, separated by '{os.pathsep}'.", _paths))


def settings_table() -> tuple[Setting, ...]:
    """Every setting: the common ones, then two per registered media kind (a kind registered later has them too)."""
    from anagnorisis.kinds.registry import all_kinds

    return (*COMMON_SETTINGS, *(setting for kind in all_kinds() for setting in kind_settings(kind)))


def setting_named(name: str) -> Setting | None:
    return next((setting for setting in settings_table() if setting.name == name), None)


def ui_settings() -> tuple[str, ...]:
    """Settings a person may change in the Settings tab; they are kept in the database's settings table."""
    from anagnorisis.kinds.registry import kind_names

    return (*COMMON_UI_SETTINGS, *(f"{kind}_model" for kind in kind_names()))


@dataclass(frozen=True)
class Settings:
    values: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)  # name -> "flag" | "env" | ".env" | "ui" | "yaml" | "default"
    origin: Mapping[str, Any] = field(default_factory=dict)  # the load_settings arguments, to rebuild with stored values

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def data_path(self) -> Path:
        return Path(self.values["data_dir"]).expanduser().resolve()

    def with_stored(self, stored: Mapping[str, Any]) -> "Settings":
        """The same layers plus the values kept from the Settings tab."""
        return load_settings(**{**self.origin, "stored": stored})

    def fixed_by(self, name: str) -> str | None:
        """Where a setting comes from when a person cannot change it in the UI (a flag, the environment, .env)."""
        source = self.sources.get(name)
        return source if source in ("flag", "env", ".env") else None

    def model_for(self, kind: str) -> str:
        """The kind's model setting; for a kind registered after these settings were read, its default model."""
        if f"{kind}_model" in self.values:
            return str(self.values[f"{kind}_model"])
        from anagnorisis.kinds.registry import get_kind

        return get_kind(kind).default_model

    def roots_for(self, kind: str) -> list[str]:
        return list(self.values.get(f"{kind}_roots", []))


def _read_yaml(path: str) -> dict[str, Any]:
    if not path:
        return {}
    file = Path(path).expanduser()
    if file.is_dir():
        raise ValueError(f"config file {file} is a folder; give the path of a YAML file")
    if not file.is_file():
        raise FileNotFoundError(f"config file {file} does not exist (set by --config or ANAGNORISIS_CONFIG)")
    try:
        loaded = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"config file {file} is not valid YAML: {error}") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"config file {file} must hold a mapping of setting names to values")
    unknown = sorted(set(loaded) - {setting.name for setting in settings_table()})
    if unknown:
        raise ValueError(f"config file {file}: unknown settings {', '.join(unknown)}")
    return loaded


def _layer_from_env(env: Mapping[str, str | None], table: tuple[Setting, ...]) -> dict[str, Any]:
    return {s.name: env[s.env_key] for s in table if env.get(s.env_key) not in (None, "")}


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    dotenv_path: str | Path | None = ".env",
    stored: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge the layers; flags with value None count as not given.

    `stored` holds what was changed in the Settings tab: it ranks below flags, the environment and .env (which a
    person set on purpose for this run) and above the YAML file and the defaults.
    """
    table = settings_table()
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    unknown = sorted(set(flags) - {setting.name for setting in table})
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(unknown)}")
    env_layer = _layer_from_env(os.environ if environ is None else environ, table)
    dotenv_layer = (_layer_from_env(dotenv_values(dotenv_path), table)
                    if dotenv_path and Path(dotenv_path).is_file() else {})
    config_path = flags.get("config") or env_layer.get("config") or dotenv_layer.get("config") or ""
    changeable = set(ui_settings())
    stored_layer = {k: v for k, v in (stored or {}).items() if k in changeable}
    layers = (("flag", flags), ("env", env_layer), (".env", dotenv_layer), ("ui", stored_layer),
              ("yaml", _read_yaml(str(config_path))))
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in table:
        raw, source = setting.default, "default"
        for layer_name, layer in layers:
            if setting.name in layer:
                raw, source = layer[setting.name], layer_name
                break
        try:
            values[setting.name] = setting.parse(raw)
        except ValueError as error:
            raise ValueError(f"setting {setting.env_key} ({source}): {error}") from None
        sources[setting.name] = source
    origin = {"flags": flags, "environ": environ, "dotenv_path": dotenv_path}
    return Settings(values, sources, origin)
