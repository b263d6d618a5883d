"""The one NumPy/CuPy switch: everything else asks here for the array module of a device."""

from __future__ import annotations

import functools

import numpy as np

_TEST_MODULE = None  # a CuPy-shaped stand-in, set only by _use_array_module_for_tests


def _cupy():
    """CuPy (or the tests' stand-in); None when it is missing or sees no CUDA device."""
    return _TEST_MODULE if _TEST_MODULE is not None else _real_cupy()


def _use_array_module_for_tests(module):
    """TESTS ONLY: make ``module`` (e.g. tests/fake_cupy) serve every CUDA device; None restores CuPy.

    Returns the module it replaces, so a fixture can put it back.
    """
    global _TEST_MODULE
    from engine.device import device
    from engine.random import _cuda_generators

    previous, _TEST_MODULE = _TEST_MODULE, module
    _cuda_generators.clear()  # their states belong to the old module
    for dev in set(device._interned.values()):
        if dev.type == "cuda":
            try:
                del dev.xp  # forget the cached array module; it is looked up again on next use
            except AttributeError:
                pass
    return previous


@functools.cache
def _real_cupy():
    """Import CuPy on first use; None when it is missing or sees no CUDA device."""
    try:
        import cupy
    except ImportError:
        return None
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
    except Exception:  # CUDA driver missing or broken: behave as "no GPU"
        return None
    return cupy


def cupy_or_raise():
    """The CuPy module, or a RuntimeError that says why CUDA can't be used."""
    cp = _cupy()
    if cp is None:
        raise RuntimeError("CUDA is not available: install CuPy (pip install 'kiln[gpu]') on a machine "
                           "with an NVIDIA GPU, or keep tensors on the 'cpu' device")
    return cp


def cuda_available() -> bool:
    return _cupy() is not None


def cuda_device_count() -> int:
    cp = _cupy()
    return 0 if cp is None else cp.cuda.runtime.getDeviceCount()


def get_array_module(device):
    """NumPy for ``cpu``, CuPy for ``cuda``; ``device`` is an engine device."""
    if device.type == "cpu":
        return np
    return cupy_or_raise()


def array_module_of(array):
    """NumPy or CuPy, whichever owns ``array``."""
    if isinstance(array, np.ndarray | np.generic):
        return np
    return cupy_or_raise()


def use_device(device):
    """A context manager that makes ``device`` current for allocations (no-op on CPU)."""
    if device.type == "cpu":
        return _NULL_CONTEXT
    return cupy_or_raise().cuda.Device(device.index or 0)


class _NullContext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


_NULL_CONTEXT = _NullContext()


sync_debug_mode = 0  # engine.cuda.set_sync_debug_mode: 0 silent, 1 warn, 2 error on a device-to-host copy


def _device_to_host(array) -> np.ndarray:
    """The one device-to-host copy (it waits for the GPU), checked against ``sync_debug_mode``."""
    if sync_debug_mode:
        message = "called a synchronizing CUDA operation (a device-to-host copy)"
        if sync_debug_mode == 2:
            raise RuntimeError(message)
        import warnings

        warnings.warn(message, UserWarning, stacklevel=3)
    return cupy_or_raise().asnumpy(array)


def to_device_array(array, device):
    """Copy ``array`` (NumPy or CuPy) onto ``device``; returns it unchanged when already there."""
    if device.type == "cpu":
        if isinstance(array, np.ndarray):
            return array
        return _device_to_host(array)
    cp = cupy_or_raise()
    index = device.index or 0
    if isinstance(array, cp.ndarray) and array.device.id == index:
        return array
    with cp.cuda.Device(index):
        return cp.asarray(array)


def to_numpy(array) -> np.ndarray:
    if isinstance(array, np.ndarray):
        return array
    return _device_to_host(array)


def index_add(xp, target, index, values) -> None:
    """``target[index] += values`` with repeated indices accumulated (np.add.at)."""
    if xp is not np and target.dtype.kind in "fc":  # float atomic adds on the GPU: order-dependent sums
        from engine.deterministic import alert_not_deterministic

        alert_not_deterministic("index_add (atomic adds on the GPU)")
    xp.add.at(target, index, values)  # CuPy >= 13 has ufunc.at (atomic adds on the GPU)


def synchronize(index: int | None = None) -> None:
    cp = _cupy()
    if cp is None:
        return
    if index is None:
        cp.cuda.runtime.deviceSynchronize()
    else:
        with cp.cuda.Device(index):
            cp.cuda.runtime.deviceSynchronize()


def cuda_random_state(index: int):
    """CuPy's random generator for one device."""
    cp = cupy_or_raise()
    with cp.cuda.Device(index):
        return cp.random.get_random_state()


try:  # NumPy 2: the floating-point error state is a context variable, cheap to set and reset
    from numpy._core._ufunc_config import _extobj_contextvar, _make_extobj

    _IGNORE_FP = _make_extobj(all="ignore")
    fp_ignore = functools.partial(_extobj_contextvar.set, _IGNORE_FP)
    fp_restore = _extobj_contextvar.reset
except ImportError:  # older NumPy: the public (slower) context manager

    def fp_ignore():
        state = np.errstate(all="ignore")
        state.__enter__()
        return state

    def fp_restore(state) -> None:
        state.__exit__(None, None, None)


class quiet_fp:
    """Silence NumPy floating-point warnings: inf/nan results are expected, as in PyTorch."""

    __slots__ = ("_token",)

    def __enter__(self):
        self._token = fp_ignore()

    def __exit__(self, *exc):
        fp_restore(self._token)
        return False
