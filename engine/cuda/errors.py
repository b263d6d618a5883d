"""``engine.cuda.CudaError``, ``check_error``, ``cudart`` and ``cudaStatus``, as ``torch.cuda``'s."""

from __future__ import annotations

from engine.cuda._lazy import cupy


def cudart():
    """The CUDA runtime bindings in use: CuPy's ``cupy.cuda.runtime`` (raises without CUDA)."""
    return cupy().cuda.runtime


class cudaStatus:
    SUCCESS: int = 0
    ERROR_NOT_READY: int = 34


class CudaError(RuntimeError):
    """A CUDA runtime error code, with the runtime's description of it where the runtime can give one."""

    def __init__(self, code: int) -> None:
        self.code = int(code)
        try:  # CuPy's CUDARuntimeError words the code as "cudaErrorName: description"
            msg = str(cudart().CUDARuntimeError(self.code))
        except Exception:  # no runtime to describe it: the bare code still identifies the error
            msg = "CUDA error"
        super().__init__(f"{msg} ({self.code})")


class DeferredCudaCallError(Exception):
    """A call queued until CUDA initialisation failed when it finally ran."""


def check_error(res: int) -> None:
    """Raise ``CudaError`` when the runtime status ``res`` is not success."""
    if res != cudaStatus.SUCCESS:
        raise CudaError(res)
