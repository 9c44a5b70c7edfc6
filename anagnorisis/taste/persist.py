"""One file per fitted taste model: tensors and plain numbers through torch.save, loaded weights-only.

Loading with `weights_only=True` never unpickles arbitrary classes, so a model file from elsewhere
cannot run code. Writes go to a temporary file first, so a kill mid-save leaves the old file intact.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

# torch is imported when a model file is written or read, not with this module: rate next and why import the
# graph model, which saves through here, and need no torch otherwise (≈ 200 MB of RSS).

FORMAT_VERSION = 1
State = dict[str, Any]


def write_model_file(path: str | Path, model_name: str, state: State) -> None:
    """Save `state` (numpy arrays, tensors, numbers, strings) for the candidate `model_name`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"model": model_name, "format": FORMAT_VERSION, "state": _to_saveable(state)}
    temporary = path.with_name(path.name + ".tmp")
    import torch

    torch.save(payload, temporary)
    os.replace(temporary, path)


def read_model_file(path: str | Path) -> tuple[str, State]:
    """The candidate name and state saved by write_model_file; arrays come back as numpy."""
    import torch

    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or "model" not in payload or "state" not in payload:
        raise ValueError(f"{path} is not an Anagnorisis taste model file")
    if payload.get("format", 0) > FORMAT_VERSION:
        raise ValueError(f"{path} was written by a newer Anagnorisis (format {payload['format']})")
    return str(payload["model"]), _from_saved(payload["state"])


def read_state_for(model_name: str, path: str | Path) -> State:
    """The state in a model file, which must hold the candidate `model_name`."""
    name, state = read_model_file(path)
    if name != model_name:
        raise ValueError(f"{path} holds a {name!r} model, not {model_name!r}")
    return state


def _to_saveable(state: State) -> State:
    import torch

    out: State = {}
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            out[key] = torch.from_numpy(np.ascontiguousarray(value))
        elif isinstance(value, torch.Tensor):
            out[key] = value.detach().cpu().contiguous()
        elif isinstance(value, dict):
            out[key] = _to_saveable(value)
        else:
            out[key] = value
    return out


def _from_saved(state: State) -> State:
    import torch

    out: State = {}
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            out[key] = value.numpy()
        elif isinstance(value, dict):
            out[key] = _from_saved(value)
        else:
            out[key] = value
    return out
