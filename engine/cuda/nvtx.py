"""``engine.cuda.nvtx``: NVTX ranges and markers for Nsight timelines, as ``torch.cuda.nvtx``, through ``cupy.cuda.nvtx``.

Where CuPy has no NVTX (or there is no CuPy) each call only keeps the range depth: nothing reaches a profiler.
"""

from __future__ import annotations

import contextlib
import itertools
import threading

from engine.cuda._optional import cupy_submodule

__all__ = ["mark", "range", "range_end", "range_pop", "range_push", "range_start"]

_state = threading.local()
_range_ids = itertools.count(1)


def _stack() -> list:
    if not hasattr(_state, "stack"):
        _state.stack = []
    return _state.stack


def range_push(msg: str) -> int:
    """Open a nested range named ``msg``; returns its zero-based depth."""
    nvtx = cupy_submodule("cuda.nvtx")
    if nvtx is not None:
        nvtx.RangePush(msg)
    _stack().append(msg)
    return len(_stack()) - 1


def range_pop() -> int:
    """Close the innermost range; returns the depth it had (-1 when no range is open)."""
    if not _stack():
        return -1
    nvtx = cupy_submodule("cuda.nvtx")
    if nvtx is not None:
        nvtx.RangePop()
    _stack().pop()
    return len(_stack())


def range_start(msg: str) -> int:
    """Open a range that may end on another thread; returns the id for ``range_end``."""
    nvtx = cupy_submodule("cuda.nvtx")
    if nvtx is not None and hasattr(nvtx, "RangeStart"):
        return int(nvtx.RangeStart(msg))
    return next(_range_ids)


def range_end(range_id: int) -> None:
    nvtx = cupy_submodule("cuda.nvtx")
    if nvtx is not None and hasattr(nvtx, "RangeEnd"):
        nvtx.RangeEnd(range_id)


def mark(msg: str) -> None:
    """An instantaneous marker named ``msg``."""
    nvtx = cupy_submodule("cuda.nvtx")
    if nvtx is not None:
        nvtx.Mark(msg)


@contextlib.contextmanager
def range(msg: str, *args, **kwargs):
    """``with nvtx.range("step {}", i):`` brackets the block in a range named ``msg.format(*args, **kwargs)``."""
    range_push(msg.format(*args, **kwargs))
    try:
        yield
    finally:
        range_pop()
