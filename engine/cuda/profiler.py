"""``engine.cuda.profiler``: start and stop the CUDA profiler's collection (Nsight Systems' ``--capture-range=cudaProfilerApi``),
as ``torch.cuda.profiler``, through CuPy's runtime."""

from __future__ import annotations

import contextlib

from engine.cuda._lazy import cupy

__all__ = ["profile", "start", "stop"]


def start() -> None:
    """Begin collecting (cudaProfilerStart)."""
    cupy().cuda.runtime.profilerStart()


def stop() -> None:
    """End collecting (cudaProfilerStop)."""
    cupy().cuda.runtime.profilerStop()


@contextlib.contextmanager
def profile():
    """``with engine.cuda.profiler.profile():`` collects for the duration of the block."""
    start()
    try:
        yield
    finally:
        stop()
