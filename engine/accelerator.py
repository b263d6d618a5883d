"""``engine.accelerator``: the device-agnostic accelerator API, as ``torch.accelerator``.

The engine's one accelerator is CUDA (through CuPy); every call goes to ``engine.cuda``. Without a
usable GPU, ``is_available()`` is False, ``current_accelerator()`` is None, ``device_count()`` is 0,
and the calls that need a device raise PyTorch's error.

Example:
    >>> device = engine.accelerator.current_accelerator() or engine.device("cpu")
"""

from __future__ import annotations

_NONE = "Cannot access accelerator device when none is available."

__all__ = ["current_accelerator", "current_device_idx", "current_device_index", "current_stream", "device_count",
           "device_index", "empty_cache", "is_available", "max_memory_allocated", "max_memory_reserved",
           "memory_allocated", "memory_reserved", "memory_stats", "reset_accumulated_memory_stats",
           "reset_peak_memory_stats", "set_device_idx", "set_device_index", "set_stream", "synchronize"]


def _cuda():
    import engine.cuda

    return engine.cuda


def _require():
    cuda = _cuda()
    if not cuda.is_available():
        raise RuntimeError(_NONE)
    return cuda


def is_available() -> bool:
    """Whether an accelerator (a CUDA GPU through CuPy) can be used."""
    return bool(_cuda().is_available())


def current_accelerator(check_available: bool = False):
    """``engine.device("cuda")`` when a GPU is usable, else None."""
    from engine.device import device

    return device("cuda") if is_available() else None


def device_count() -> int:
    """The number of accelerator devices (0 without one)."""
    return int(_cuda().device_count()) if is_available() else 0


def current_device_index() -> int:
    """The index of the current accelerator device."""
    return int(_require().current_device())


current_device_idx = current_device_index


def set_device_index(device, /) -> None:
    """Make ``device`` (an index, ``"cuda:1"`` or a device) the current accelerator device."""
    _require().set_device(device)


set_device_idx = set_device_index


class device_index:
    """Context manager: ``device`` is the current accelerator device inside the block (None: no change)."""

    def __init__(self, device, /):
        self.device = device
        self._previous = None

    def __enter__(self):
        if self.device is not None:
            self._previous = current_device_index()
            set_device_index(self.device)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            set_device_index(self._previous)
        return False


def synchronize(device=None, /) -> None:
    """Wait for all work queued on the accelerator device."""
    _require().synchronize(device)


def current_stream(device=None, /):
    """The current stream of the accelerator device."""
    return _require().current_stream(device)


def set_stream(stream) -> None:
    """Make ``stream`` the current stream of its device."""
    _require().set_stream(stream)


def empty_cache() -> None:
    """Release the cached, unused accelerator memory (nothing to do without an accelerator)."""
    if is_available():
        _cuda().empty_cache()


def memory_allocated(device_index=None, /) -> int:
    """Bytes held by tensors on the accelerator device."""
    return int(_require().memory_allocated(device_index))


def max_memory_allocated(device_index=None, /) -> int:
    """Peak of ``memory_allocated`` since the start or the last reset."""
    return int(_require().max_memory_allocated(device_index))


def memory_reserved(device_index=None, /) -> int:
    """Bytes held by the allocator's pool on the accelerator device."""
    return int(_require().memory_reserved(device_index))


def max_memory_reserved(device_index=None, /) -> int:
    """Peak of ``memory_reserved`` since the start or the last reset."""
    return int(_require().max_memory_reserved(device_index))


def memory_stats(device_index=None, /):
    """The allocator's statistics for the accelerator device."""
    return _require().memory_stats(device_index)


def reset_peak_memory_stats(device_index=None, /) -> None:
    """Restart the peaks that ``max_memory_*`` report."""
    _require().reset_peak_memory_stats(device_index)


def reset_accumulated_memory_stats(device_index=None, /) -> None:
    """Reset the allocator's accumulated counters."""
    _require().reset_accumulated_memory_stats(device_index)
