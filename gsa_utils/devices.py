"""Devices, precision and seeding for training: which device, which autocast, which seed."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch


def pick_device(prefer: str | None = None) -> torch.device:
    """``cuda`` if available, else Apple ``mps``, else ``cpu`` (or ``prefer`` if given)."""
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def flush_denormals() -> Iterator[None]:
    """Flush denormal floats to zero on CPU while training (a saturated map fills tensors with them, slowly)."""
    changed = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if changed:
            torch.set_flush_denormal(False)


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 (fp16 where the GPU only emulates bf16) autocast on CUDA when ``enabled``, else nothing."""
    if not enabled or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if native_bf16() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def native_bf16() -> bool:
    """Whether the CUDA GPU computes bf16 in hardware (a T4 only emulates it, slowly: fp16 there)."""
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # torch < 2.3 has no including_emulation and does not count emulation
        return torch.cuda.is_bf16_supported()
