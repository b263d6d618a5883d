"""``engine.cuda``: CUDA availability, device count, synchronization and seeding (through CuPy)."""

from __future__ import annotations

from engine import backend
from engine import random as _random


def is_available() -> bool:
    """True when CuPy is installed and sees at least one CUDA device."""
    return backend.cuda_available()


def device_count() -> int:
    return backend.cuda_device_count()


def synchronize(device=None) -> None:
    """Wait for all queued GPU work (no-op without CUDA)."""
    index = None
    if device is not None:
        from engine.device import as_device

        index = as_device(device).index
    backend.synchronize(index)


def manual_seed(seed: int) -> None:
    """Seed the CUDA generators (all devices; new ones too)."""
    _random.cuda_manual_seed(seed)


manual_seed_all = manual_seed


def current_device() -> int:
    if not is_available():
        raise RuntimeError("CUDA is not available")
    return backend.cupy_or_raise().cuda.runtime.getDevice()


def get_device_name(device=None) -> str:
    cp = backend.cupy_or_raise()
    index = 0 if device is None else (device if isinstance(device, int) else device.index or 0)
    return cp.cuda.runtime.getDeviceProperties(index)["name"].decode()
