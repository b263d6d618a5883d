"""Memory statistics of CUDA devices (``memory_allocated``, peaks, ``empty_cache``...) from CuPy's memory pool.

Allocated bytes are the bytes of live arrays; reserved bytes are those the pool holds from the driver
(live plus cached). Peaks are tracked by a CuPy memory hook installed on the first statistics call (or
``reset_peak_memory_stats``), so ``reset_peak_memory_stats(); work(); max_memory_allocated()`` measures ``work``.
"""

from __future__ import annotations

from engine import backend
from engine.cuda._lazy import cupy, device_index

_peaks: dict[int, dict[str, int]] = {}  # device -> {"allocated": bytes, "reserved": bytes}
_accumulated: dict[int, dict[str, int]] = {}  # device -> {"count": pool mallocs, "bytes": their sizes}
_hook = None


def _pool():
    return cupy().get_default_memory_pool()


def _ensure_hook() -> None:
    """Install the peak-tracking hook once (it sees allocations from the thread that installed it on)."""
    global _hook
    if _hook is not None:
        return
    cp = cupy()
    pool = cp.get_default_memory_pool()

    class _PeakHook(cp.cuda.memory_hook.MemoryHook):  # type: ignore[name-defined]
        name = "engine_peak_memory"

        def malloc_postprocess(self, device_id, size, mem_size, mem_ptr, pmem_id):
            peak = _peaks.setdefault(device_id, {"allocated": 0, "reserved": 0})
            peak["allocated"] = max(peak["allocated"], pool.used_bytes())
            peak["reserved"] = max(peak["reserved"], pool.total_bytes())
            totals = _accumulated.setdefault(device_id, {"count": 0, "bytes": 0})
            totals["count"] += 1
            totals["bytes"] += int(mem_size)

    _hook = _PeakHook()
    _hook.__enter__()


def _initialized() -> bool:
    return backend._cupy() is not None


def memory_allocated(device=None) -> int:
    """Bytes held by live CUDA tensors on ``device`` (0 where CUDA is unavailable, as in PyTorch)."""
    if not _initialized():
        return 0
    index = device_index(device)
    with cupy().cuda.Device(index):
        return int(_pool().used_bytes())


def memory_reserved(device=None) -> int:
    """Bytes the caching allocator holds on ``device`` (live plus cached for reuse)."""
    if not _initialized():
        return 0
    index = device_index(device)
    with cupy().cuda.Device(index):
        return int(_pool().total_bytes())


def _peak(device, key: str, now: int) -> int:
    if not _initialized():
        return 0
    _ensure_hook()
    peak = _peaks.setdefault(device_index(device), {"allocated": 0, "reserved": 0})
    peak[key] = max(peak[key], now)
    return peak[key]


def max_memory_allocated(device=None) -> int:
    """The most bytes held by live tensors since start (or since ``reset_peak_memory_stats``)."""
    return _peak(device, "allocated", memory_allocated(device))


def max_memory_reserved(device=None) -> int:
    return _peak(device, "reserved", memory_reserved(device))


def reset_peak_memory_stats(device=None) -> None:
    """Restart the peaks from the current figures."""
    index = device_index(device)
    _ensure_hook()
    _peaks[index] = {"allocated": memory_allocated(index), "reserved": memory_reserved(index)}


def reset_max_memory_allocated(device=None) -> None:
    reset_peak_memory_stats(device)


def reset_max_memory_cached(device=None) -> None:
    reset_peak_memory_stats(device)


def empty_cache() -> None:
    """Give the cached (unused) blocks of every pool back to the driver; no-op without CUDA."""
    if not _initialized():
        return
    cp = cupy()
    cp.get_default_memory_pool().free_all_blocks()
    cp.get_default_pinned_memory_pool().free_all_blocks()


def mem_get_info(device=None) -> tuple[int, int]:
    """(free, total) bytes of ``device`` as the driver reports them."""
    cp = cupy()
    with cp.cuda.Device(device_index(device)):
        free, total = cp.cuda.runtime.memGetInfo()
    return int(free), int(total)


def memory_stats(device=None) -> dict:
    """A flat dict of statistics with PyTorch's key names for the figures tracked here."""
    if not _initialized():
        return {}
    allocated, reserved = memory_allocated(device), memory_reserved(device)
    totals = _accumulated.get(device_index(device), {"count": 0, "bytes": 0})
    return {"allocated_bytes.all.current": allocated, "allocated_bytes.all.peak": max_memory_allocated(device),
            "allocated_bytes.all.allocated": totals["bytes"], "allocation.all.allocated": totals["count"],
            "reserved_bytes.all.current": reserved, "reserved_bytes.all.peak": max_memory_reserved(device),
            "inactive_split_bytes.all.current": reserved - allocated}


def memory_stats_as_nested_dict(device=None) -> dict:
    """``memory_stats`` with its dotted keys split into nested dicts (``["allocated_bytes"]["all"]["peak"]``)."""
    nested: dict = {}
    for key, value in memory_stats(device).items():
        *parents, leaf = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def reset_accumulated_memory_stats(device=None) -> None:
    """Restart the accumulated counters (``allocation.all.allocated``, ``allocated_bytes.all.allocated``) at 0."""
    index = device_index(device)
    _ensure_hook()
    _accumulated[index] = {"count": 0, "bytes": 0}


def memory_cached(device=None) -> int:
    """Deprecated alias of ``memory_reserved``, as in PyTorch."""
    return memory_reserved(device)


def max_memory_cached(device=None) -> int:
    """Deprecated alias of ``max_memory_reserved``, as in PyTorch."""
    return max_memory_reserved(device)


def memory_summary(device=None, abbreviated: bool = False) -> str:
    """A readable table of the memory statistics of ``device``."""
    stats = memory_stats(device)
    rows = [("Allocated memory", "allocated_bytes.all"), ("Reserved memory", "reserved_bytes.all")]
    lines = ["|" + "=" * 62 + "|", "|" + " engine.cuda memory summary".ljust(62) + "|", "|" + "-" * 62 + "|",
             f"| {'Metric':<28}| {'Cur Usage':>14} | {'Peak Usage':>14} |", "|" + "-" * 62 + "|"]
    for label, key in rows:
        lines.append(f"| {label:<28}| {_fmt(stats.get(key + '.current', 0)):>14} | "
                     f"{_fmt(stats.get(key + '.peak', 0)):>14} |")
    lines.append("|" + "=" * 62 + "|")
    return "\n".join(lines) + "\n"


def _fmt(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return str(n)


def set_per_process_memory_fraction(fraction: float, device=None) -> None:
    """Cap the pool of ``device`` at ``fraction`` of its memory."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"Invalid fraction value: {fraction}. Allowed range: 0~1")
    cp = cupy()
    with cp.cuda.Device(device_index(device)):
        _pool().set_limit(fraction=fraction)


def get_per_process_memory_fraction(device=None) -> float:
    """The fraction of the memory of ``device`` its pool may hold (1.0: no cap set)."""
    cp = cupy()
    index = device_index(device)
    with cp.cuda.Device(index):
        limit = int(_pool().get_limit())
        total = int(cp.cuda.runtime.getDeviceProperties(index)["totalGlobalMem"])
    return 1.0 if limit == 0 else limit / total
