"""Where the taste model trains: CUDA if present, else the CPU, in fp32.

The choice itself is made in one place for the whole app, anagnorisis.embed.device; training only
needs the bare torch.device (small heads train in fp32, so the encoders' half-precision dtype is
not used). The local fallback keeps this package usable on its own.
"""
from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)

DEVICE_SETTINGS = ("auto", "cpu", "cuda")


def pick_device(setting: str = "auto") -> torch.device:
    """The device for a setting of ANAGNORISIS_DEVICE: auto | cpu | cuda.

    "cuda" without a usable GPU falls back to the CPU with a warning rather than failing a training.
    """
    try:
        from anagnorisis.embed.device import pick_device as pick_encoder_device
    except ImportError:
        return _pick_device_here(setting)
    return pick_encoder_device(setting).device


def _pick_device_here(setting: str) -> torch.device:
    setting = (setting or "auto").strip().lower()
    if setting not in DEVICE_SETTINGS:
        raise ValueError(f"unknown device setting {setting!r}; use one of {', '.join(DEVICE_SETTINGS)}")
    if setting != "cpu" and torch.cuda.is_available():
        return torch.device("cuda")
    if setting == "cuda":
        log.warning("ANAGNORISIS_DEVICE=cuda but no CUDA GPU is usable; training on the CPU")
    return torch.device("cpu")
