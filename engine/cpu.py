"""``engine.cpu`` (``torch.cpu``): the CPU as a device module, next to ``engine.cuda``. CPU ops run
synchronously, so there is nothing to wait for."""

from __future__ import annotations


def is_available() -> bool:
    return True


def device_count() -> int:
    return 1


def current_device() -> str:
    return "cpu"


def synchronize(device=None) -> None:
    """Wait for the CPU's work: every engine op on the CPU has finished when it returns."""
