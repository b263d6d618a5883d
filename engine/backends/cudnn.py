"""``engine.backends.cudnn``: cuDNN switches, as ``torch.backends.cudnn``.

The engine's GPU convolutions are im2col + cuBLAS GEMMs, not cuDNN: ``is_available()`` is False and
``version()`` None, while ``enabled``, ``benchmark``, ``deterministic`` and ``allow_tf32`` are plain settable
attributes so scripts that set them run unchanged (the engine's kernels are deterministic already).

Example:
    >>> import engine
    >>> engine.backends.cudnn.benchmark = True
"""

from __future__ import annotations

import contextlib

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True
benchmark_limit = 10


def is_available() -> bool:
    """False: the engine uses no cuDNN."""
    return False


def version() -> int | None:
    return None


@contextlib.contextmanager
def flags(enabled: bool = False, benchmark: bool = False, deterministic: bool = False, allow_tf32: bool = True):
    """Set the switches inside the block, as ``torch.backends.cudnn.flags``."""
    module = globals()
    saved = {k: module[k] for k in ("enabled", "benchmark", "deterministic", "allow_tf32")}
    module.update(enabled=enabled, benchmark=benchmark, deterministic=deterministic, allow_tf32=allow_tf32)
    try:
        yield
    finally:
        module.update(saved)
