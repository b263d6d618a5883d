"""The CUDA runtime behind ``engine.cuda``: availability checks and device-index parsing, in one place."""

from __future__ import annotations

from engine import backend


class CudaUnavailableError(RuntimeError, AssertionError):
    """Raised where a CUDA runtime is needed and none is present.

    PyTorch raises ``AssertionError("Torch not compiled with CUDA enabled")`` on a CPU-only build and
    ``RuntimeError("No CUDA GPUs are available")`` on a CUDA build without a GPU: this is both.
    """


def cupy():
    """The CuPy module serving CUDA devices, or CudaUnavailableError."""
    cp = backend._cupy()
    if cp is None:
        raise CudaUnavailableError(
            "CUDA is not available: install CuPy (pip install 'kiln[gpu]') on a machine with an NVIDIA GPU, "
            "or keep tensors on the 'cpu' device")
    return cp


def device_index(device=None, optional: bool = True) -> int:
    """The CUDA ordinal that ``device`` names: an int, ``"cuda:N"``, an ``engine.device``; None = current."""
    from engine.device import device as device_type

    if device is None:
        if not optional:
            raise ValueError("Expected a cuda device, but got: None")
        return current_index()
    if isinstance(device, str):
        if device == "cuda":  # no ordinal: the current device, as in PyTorch
            return current_index()
        device = device_type(device)
    if isinstance(device, device_type):
        if device.type != "cuda":
            raise ValueError(f"Expected a cuda device, but got: {device}")
        index = device.index
    elif isinstance(device, int) and not isinstance(device, bool):
        index = device
    elif hasattr(device, "idx"):  # engine.cuda.device
        index = device.idx
    else:
        raise ValueError(f"Expected a cuda device, but got: {device!r}")
    if index is None or index < 0:
        return current_index()
    count = cupy().cuda.runtime.getDeviceCount()
    if index >= count:
        raise RuntimeError(f"CUDA error: invalid device ordinal (device {index}; {count} device(s) visible)")
    return index


def current_index() -> int:
    return int(cupy().cuda.runtime.getDevice())
