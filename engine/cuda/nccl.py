"""``engine.cuda.nccl``: NCCL's presence and version, as ``torch.cuda.nccl``, through ``cupy.cuda.nccl``."""

from __future__ import annotations

from engine.cuda._optional import cupy_submodule

__all__ = ["is_available", "version"]


def _nccl():
    nccl = cupy_submodule("cuda.nccl")
    if nccl is None or not getattr(nccl, "available", True):
        return None
    return nccl


def is_available(tensors) -> bool:
    """True when NCCL is present and ``tensors`` are dense contiguous CUDA tensors on distinct devices."""
    if _nccl() is None:
        return False
    devices = set()
    for t in tensors:
        if t.is_sparse or not t.is_contiguous() or t.device.type != "cuda" or t.device.index in devices:
            return False
        devices.add(t.device.index)
    return True


def version() -> tuple[int, int, int]:
    """NCCL's (major, minor, patch)."""
    nccl = _nccl()
    if nccl is None:
        raise RuntimeError("NCCL is not available: this CuPy was built without it (pip install nvidia-nccl-cu12)")
    code = int(nccl.get_version())
    major, rest = (code // 10000, code % 10000) if code >= 20900 else (code // 1000, code % 1000)
    return major, rest // 100, rest % 100
