"""Settings changed in the Settings tab, kept in the database so they survive a restart."""
from __future__ import annotations

import json
from typing import Any

from anagnorisis.config import SETTING_BY_NAME, UI_SETTINGS
from anagnorisis.store.db import Store


def stored_settings(store: Store) -> dict[str, Any]:
    rows = store.read(lambda c: c.execute("SELECT name, value FROM settings").fetchall())
    return {name: json.loads(value) for name, value in rows if name in UI_SETTINGS}


NON_NEGATIVE = ("backup_keep", "backup_interval_hours")  # counts and intervals; 0 turns the feature off


def save_setting(store: Store, name: str, value: Any) -> None:
    """Validate and keep one UI setting (raises ValueError naming the problem)."""
    if name not in UI_SETTINGS:
        raise ValueError(f"{name} cannot be changed from the Settings tab")
    parsed = SETTING_BY_NAME[name].parse(value)
    if name in NON_NEGATIVE and parsed < 0:
        raise ValueError(f"{name} must be 0 or more, not {parsed:g}")
    store.write(lambda c: c.execute(
        "INSERT INTO settings VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        [name, json.dumps(parsed)]))
