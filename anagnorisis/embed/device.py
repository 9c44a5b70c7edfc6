"""Where the encoders run: the one place that picks a torch device and its inference precision.

CUDA runs models in half precision (bf16 where the GPU supports it, else fp16), the CPU in fp32.
Imports only torch, so the GPU benchmark can use it on a machine without the app's other dependencies.
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import ContextManager

import torch

log = logging.getLogger(__name__)

DEVICE_SETTINGS = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class DeviceChoice:
    """A device and the dtype models are cast to on it."""

    device: torch.device
    dtype: torch.dtype

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self) -> ContextManager[object]:
        """Mixed precision on CUDA; nothing on the CPU (fp32 there: CPU half precision is slow and lossy)."""
        if self.is_cuda:
            return torch.autocast(device_type="cuda", dtype=self.dtype)
        return contextlib.nullcontext()

    def describe(self) -> str:
        name = torch.cuda.get_device_name(self.device) if self.is_cuda else "CPU"
        return f"{name} ({str(self.dtype).removeprefix('torch.')})"


def _half_dtype() -> torch.dtype:
    # bf16 has fp32's range, so activations of large towers cannot overflow; fp16 only on GPUs without bf16.
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def pick_device(setting: str = "auto") -> DeviceChoice:
    """The device for ANAGNORISIS_DEVICE = auto | cpu | cuda.

    "cuda" without a usable GPU falls back to the CPU with a warning, so indexing still runs.
    """
    setting = (setting or "auto").strip().lower()
    if setting not in DEVICE_SETTINGS:
        raise ValueError(f"unknown device setting {setting!r}; use one of {', '.join(DEVICE_SETTINGS)}")
    if setting != "cpu" and torch.cuda.is_available():
        return DeviceChoice(torch.device("cuda"), _half_dtype())
    if setting == "cuda":
        log.warning("ANAGNORISIS_DEVICE=cuda but no CUDA GPU is usable; embedding on the CPU")
    return DeviceChoice(torch.device("cpu"), torch.float32)
