"""Settings changed in the Settings tab, kept in the database so they survive a restart."""
from __future__ import annotations

import json
from typing import Any

from anagnorisis.config import setting_named, ui_settings
from anagnorisis.store.db import Store


def stored_settings(store: Store) -> dict[str, Any]:
    rows = store.read(lambda c: c.execute("SELECT name, value FROM settings").fetchall())
    changeable = set(ui_settings())
    return {name: json.loads(value) for name, value in rows if name in changeable}


NON_NEGATIVE = ("backup_keep", "backup_interval_hours")  # counts and intervals; 0 turns the feature off


def save_setting(store: Store, name: str, value: Any) -> None:
    """Validate and keep one UI setting (raises ValueError naming the problem)."""
    setting = setting_named(name)
    if setting is None or name not in ui_settings():
        raise ValueError(f"{name} cannot be changed from the Settings tab")
    parsed = setting.parse(value)
    if name in NON_NEGATIVE and parsed < 0:
        raise ValueError(f"{name} must be 0 or more, not {parsed:g}")
    store.write(lambda c: c.execute(
        "INSERT INTO settings VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        [name, json.dumps(parsed)]))
