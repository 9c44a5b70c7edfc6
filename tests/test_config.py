"""Settings: one table; flag > environment > .env > YAML > default."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from anagnorisis.config import load_settings, settings_table

SETTINGS = settings_table()


def test_defaults_apply_when_nothing_is_set(tmp_path: Path) -> None:
    settings = load_settings(environ={}, dotenv_path=tmp_path / "none.env")
    assert settings.host == "127.0.0.1"
    assert settings.port == 7860
    assert settings.file_actions == "off"
    assert settings.model_for("images") == "google/siglip-base-patch16-224"
    assert settings.sources["port"] == "default"


def test_each_layer_overrides_the_ones_below_it(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("port: 1001\nhost: 127.0.0.2\ndevice: cpu\noffline: true\n")
    dotenv = tmp_path / ".env"
    dotenv.write_text("ANAGNORISIS_PORT=1002\nANAGNORISIS_HOST=127.0.0.3\n")
    environ = {"ANAGNORISIS_PORT": "1003", "ANAGNORISIS_CONFIG": str(config)}
    settings = load_settings({"port": 1004}, environ=environ, dotenv_path=dotenv)
    assert settings.port == 1004 and settings.sources["port"] == "flag"
    assert settings.host == "127.0.0.3" and settings.sources["host"] == ".env"
    assert settings.device == "cpu" and settings.sources["device"] == "yaml"
    assert settings.offline is True
    assert load_settings(environ=environ, dotenv_path=dotenv).port == 1003


def test_roots_are_split_on_the_path_separator(tmp_path: Path) -> None:
    environ = {"ANAGNORISIS_MUSIC_ROOTS": os.pathsep.join(["/a", "/b"])}
    assert load_settings(environ=environ, dotenv_path=None).roots_for("music") == ["/a", "/b"]


def test_a_bad_value_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ANAGNORISIS_DEVICE"):
        load_settings(environ={"ANAGNORISIS_DEVICE": "tpu"}, dotenv_path=None)


def test_a_config_file_that_is_not_yaml_or_is_a_folder_is_a_usage_error(tmp_path: Path) -> None:
    from tests.conftest import Cli

    broken = tmp_path / "broken.yaml"
    broken.write_text(": : bad yaml [\n")
    with pytest.raises(ValueError, match="is not valid YAML"):
        load_settings({"config": str(broken)}, environ={}, dotenv_path=None)
    with pytest.raises(ValueError, match="is a folder"):
        load_settings({"config": str(tmp_path)}, environ={}, dotenv_path=None)
    result = Cli(tmp_path / "data")("--json", "library", "list", "--config", str(broken))
    assert result.code == 2 and "is not valid YAML" in result.json["error"]["message"]


def test_every_spec_key_is_in_the_table() -> None:
    keys = {setting.env_key for setting in SETTINGS}
    expected = {
        "ANAGNORISIS_DATA_DIR", "ANAGNORISIS_CONFIG", "ANAGNORISIS_HOST", "ANAGNORISIS_PORT", "ANAGNORISIS_OFFLINE",
        "ANAGNORISIS_USERNAME", "ANAGNORISIS_PASSWORD", "ANAGNORISIS_DEVICE", "ANAGNORISIS_FILE_ACTIONS",
        "ANAGNORISIS_CONTAINER",
        *(f"ANAGNORISIS_{kind}_{what}" for kind in ("IMAGES", "MUSIC", "TEXT", "VIDEOS") for what in ("MODEL", "ROOTS")),
    }
    assert expected <= keys


def test_env_example_documents_every_key() -> None:
    example = (Path(__file__).resolve().parent.parent / ".env.example").read_text()
    for setting in SETTINGS:
        assert setting.env_key in example, setting.env_key


def _a_different_value(setting):  # type: ignore[no-untyped-def]
    """A valid value unlike the default, as the environment would give it."""
    if setting.name.endswith("_roots"):
        return os.pathsep.join(["/srv/a", "/srv/b"]), ["/srv/a", "/srv/b"]
    if setting.name == "allowed_hosts":
        return os.pathsep.join(["media.home.arpa", "nas"]), ["media.home.arpa", "nas"]
    if isinstance(setting.default, bool):
        return "1" if not setting.default else "0", not setting.default
    if isinstance(setting.default, (int, float)) and not isinstance(setting.default, bool):
        return "17", type(setting.default)(17)
    choices = {"device": "cuda", "file_actions": "trash"}
    value = choices.get(setting.name, f"value-for-{setting.name}")
    return value, value


def test_every_key_of_env_example_changes_the_setting_it_names(tmp_path: Path) -> None:
    import re

    example = (Path(__file__).resolve().parent.parent / ".env.example").read_text()
    keys = set(re.findall(r"^#? ?(ANAGNORISIS_[A-Z_]+)=", example, re.M))
    by_key = {setting.env_key: setting for setting in SETTINGS}
    assert keys == set(by_key)
    for key in sorted(keys - {"ANAGNORISIS_CONFIG"}):
        setting = by_key[key]
        raw, expected = _a_different_value(setting)
        value = getattr(load_settings(environ={key: raw}, dotenv_path=None), setting.name)
        assert value == expected != setting.default, key
    config = tmp_path / "c.yaml"
    config.write_text("port: 4242\n")
    assert load_settings(environ={"ANAGNORISIS_CONFIG": str(config)}, dotenv_path=None).port == 4242
