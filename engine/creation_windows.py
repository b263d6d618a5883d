"""More factories: the signal windows (hann, hamming, blackman, bartlett, kaiser), ``range``,
``empty_strided``, ``empty_permuted``, ``asarray`` and ``frombuffer``."""

from __future__ import annotations

import math

import numpy as np

from engine import backend
from engine.creation import _factory_dtype, _finish, as_tensor, empty, tensor
from engine.device import CPU, as_device
from engine.dtypes import FLOAT, as_dtype
from engine.tensor import Tensor


def _window(values: np.ndarray, dtype, device, requires_grad: bool) -> Tensor:
    dtype, device = _factory_dtype(dtype), as_device(device)
    if dtype.category != FLOAT:
        raise RuntimeError(f"window functions expect a floating point dtype, got {dtype.name}")
    data = values.astype(dtype.np)
    if device is not CPU:
        data = backend.to_device_array(data, device)
    return _finish(data, dtype, device, requires_grad)


def _cosine_window(window_length: int, periodic: bool, coefficients, dtype, device, requires_grad) -> Tensor:
    if window_length < 0:
        raise RuntimeError(f"window_length must be non-negative, got {window_length}")
    if window_length <= 1:
        return _window(np.ones(window_length), dtype, device, requires_grad)
    n = window_length + 1 if periodic else window_length
    k = np.arange(n, dtype=np.float64)
    values = sum(((-1) ** i) * c * np.cos(2 * math.pi * i * k / (n - 1)) for i, c in enumerate(coefficients))
    return _window(values[:window_length], dtype, device, requires_grad)


def hann_window(window_length: int, periodic: bool = True, *, dtype=None, layout=None, device=None,
                requires_grad: bool = False) -> Tensor:
    """The Hann window ``0.5 - 0.5 cos(2 pi n / (N - 1))`` (N = length + 1 when ``periodic``)."""
    return _cosine_window(window_length, periodic, (0.5, 0.5), dtype, device, requires_grad)


def hamming_window(window_length: int, periodic: bool = True, alpha: float = 0.54, beta: float = 0.46, *,
                   dtype=None, layout=None, device=None, requires_grad: bool = False) -> Tensor:
    """The Hamming window ``alpha - beta cos(2 pi n / (N - 1))``."""
    return _cosine_window(window_length, periodic, (alpha, beta), dtype, device, requires_grad)


def blackman_window(window_length: int, periodic: bool = True, *, dtype=None, layout=None, device=None,
                    requires_grad: bool = False) -> Tensor:
    """The Blackman window ``0.42 - 0.5 cos(2 pi n / (N - 1)) + 0.08 cos(4 pi n / (N - 1))``."""
    return _cosine_window(window_length, periodic, (0.42, 0.5, 0.08), dtype, device, requires_grad)


def bartlett_window(window_length: int, periodic: bool = True, *, dtype=None, layout=None, device=None,
                    requires_grad: bool = False) -> Tensor:
    """The triangular Bartlett window."""
    if window_length < 0:
        raise RuntimeError(f"window_length must be non-negative, got {window_length}")
    if window_length <= 1:
        return _window(np.ones(window_length), dtype, device, requires_grad)
    n = window_length + 1 if periodic else window_length
    k = np.arange(n, dtype=np.float64)
    values = 1 - np.abs(2 * k / (n - 1) - 1)
    return _window(values[:window_length], dtype, device, requires_grad)


def kaiser_window(window_length: int, periodic: bool = True, beta: float = 12.0, *, dtype=None, layout=None,
                  device=None, requires_grad: bool = False) -> Tensor:
    """The Kaiser window ``I0(beta sqrt(1 - (2n / (N - 1) - 1)^2)) / I0(beta)``."""
    if window_length < 0:
        raise RuntimeError(f"window_length must be non-negative, got {window_length}")
    if window_length <= 1:
        return _window(np.ones(window_length), dtype, device, requires_grad)
    n = window_length + 1 if periodic else window_length
    k = np.arange(n, dtype=np.float64)
    values = np.i0(beta * np.sqrt(np.clip(1 - (2 * k / (n - 1) - 1) ** 2, 0, None))) / np.i0(beta)
    return _window(values[:window_length], dtype, device, requires_grad)


def range(start=0, end=None, step=1, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Deprecated in PyTorch: values from ``start`` to ``end`` *inclusive* (default float dtype)."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError("upper bound and larger bound inconsistent with step sign")
    dtype = _factory_dtype(dtype)
    count = math.floor((end - start) / step) + 1
    values = start + np.arange(count, dtype=np.float64) * step
    device = as_device(device)
    data = values.astype(dtype.np)
    if device is not CPU:
        data = backend.to_device_array(data, device)
    return _finish(data, dtype, device, requires_grad)


def empty_strided(size, stride, *, dtype=None, layout=None, device=None, requires_grad: bool = False,
                  pin_memory: bool = False) -> Tensor:
    """An uninitialised tensor of ``size`` (the engine keeps its own contiguous strides)."""
    if len(tuple(size)) != len(tuple(stride)):
        raise RuntimeError(f"mismatch in length of strides and shape: {len(tuple(size))} vs {len(tuple(stride))}")
    return empty(tuple(size), dtype=dtype, device=device, requires_grad=requires_grad)


def empty_permuted(size, physical_layout, *, dtype=None, layout=None, device=None, requires_grad: bool = False,
                   pin_memory: bool = False) -> Tensor:
    """An uninitialised tensor of ``size``; ``physical_layout`` must be a permutation of its dims."""
    if sorted(physical_layout) != list(np.arange(len(tuple(size)))):
        raise RuntimeError("Number of dimensions in size does not match the length of the physical_layout; "
                           "physical_layout must be a permutation of the dims")
    return empty(tuple(size), dtype=dtype, device=device, requires_grad=requires_grad)


def asarray(obj, *, dtype=None, device=None, copy=None, requires_grad: bool = False) -> Tensor:
    """A tensor from ``obj``, sharing its memory when it can (``copy=False`` insists, ``True`` copies)."""
    if isinstance(obj, Tensor):
        out = obj.to(dtype=as_dtype(dtype) if dtype else obj.dtype, device=device or obj.device)
        if copy and out is obj:
            out = obj.clone()
        if copy is False and out is not obj:
            raise ValueError("asarray(): the input cannot be shared with copy=False (a dtype or device change)")
        return out.requires_grad_(requires_grad) if requires_grad else out
    if copy:
        out = tensor(obj, dtype=dtype, device=device)
    else:
        out = as_tensor(obj, dtype=dtype, device=device)
        if copy is False and isinstance(obj, np.ndarray) and not np.shares_memory(out._data, obj):
            raise ValueError("asarray(): the array cannot be shared with copy=False (a dtype or device change)")
    return out.requires_grad_(requires_grad) if requires_grad else out


def frombuffer(buffer, *, dtype, count: int = -1, offset: int = 0, requires_grad: bool = False) -> Tensor:
    """A 1-d tensor sharing the memory of a Python buffer (``bytearray``, ``memoryview``, ``array``)."""
    dtype = as_dtype(dtype)
    view = memoryview(buffer)
    if view.nbytes == 0:
        raise ValueError("both buffer length (0) and count (-1) must not be 0")
    if offset < 0 or offset >= view.nbytes:
        raise ValueError(f"offset ({offset} bytes) must be non-negative and no greater than buffer length "
                         f"({view.nbytes} bytes) minus 1")
    array = np.frombuffer(buffer, dtype=dtype.np, count=count, offset=offset)
    return as_tensor(array).requires_grad_(requires_grad) if requires_grad else as_tensor(array)


def fill(input, value) -> Tensor:
    """A tensor like ``input`` filled with ``value`` (a number or a 0-d tensor)."""
    from engine.creation import full_like

    if isinstance(value, Tensor):
        if value.dim() != 0:
            raise RuntimeError(f"fill only supports 0-dimension value tensor but got tensor with {value.dim()} "
                               "dimensions.")
        return value.to(input.dtype).expand(input.shape).clone()
    return full_like(input, value)
