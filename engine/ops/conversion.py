"""Copies and conversions: ``to`` (dtype / device), ``clone``, ``contiguous``."""

from __future__ import annotations

import warnings

from engine import backend
from engine.autograd.function import Function, Op
from engine.device import as_device
from engine.device import device as device_type
from engine.dtypes import as_dtype
from engine.tensor import Tensor, _make


class ToCopy(Function):
    """Copy to another dtype and/or device; the gradient converts back."""

    @staticmethod
    def forward(ctx, x, dtype_, device_):
        ctx.source = (x._dtype, x._device)
        data = x._data
        if device_ is not x._device:
            data = backend.to_device_array(data, device_)
        if dtype_ is not x._dtype:
            if x._dtype.is_complex and not dtype_.is_complex:
                warnings.warn("Casting complex values to real discards the imaginary part", UserWarning,
                              stacklevel=4)
                data = data.real
            data = data.astype(dtype_.np)
        return _make(data, dtype_, device_)

    @staticmethod
    def backward(ctx, g):
        source_dtype, source_device = ctx.source
        if g._dtype.is_complex and not source_dtype.is_complex:
            g = g.real  # NOTE: the gradient of a real -> complex cast is the real part, as in PyTorch
        return to_copy(g, source_dtype, source_device), None, None


def to_copy(x: Tensor, dtype_=None, device_=None, copy: bool = False) -> Tensor:
    dtype_ = x._dtype if dtype_ is None else dtype_
    device_ = x._device if device_ is None else device_
    if dtype_ is x._dtype and device_ is x._device and not copy:
        return x
    if dtype_ is x._dtype and device_ is x._device:
        return clone(x)
    return ToCopy.apply(x, dtype_, device_)


def to(x: Tensor, *args, dtype=None, device=None, copy: bool = False, non_blocking: bool = False,
       memory_format=None) -> Tensor:
    """``x.to(device)``, ``x.to(dtype)``, ``x.to(device, dtype)``, ``x.to(other_tensor)``."""
    for arg in args:
        if isinstance(arg, Tensor):
            dtype, device = arg._dtype, arg._device
        elif _looks_like_device(arg):
            device = arg
        elif arg is not None:
            dtype = arg
    dtype = None if dtype is None else as_dtype(dtype)
    device = None if device is None else as_device(device)
    return to_copy(x, dtype, device, copy)


def _looks_like_device(arg) -> bool:
    if isinstance(arg, device_type):
        return True
    if isinstance(arg, str):
        return arg.startswith(("cpu", "cuda"))
    return isinstance(arg, int) and not isinstance(arg, bool)


class Clone(Op):
    """A copy with its own memory; the gradient passes through."""

    _array_backward = True

    @staticmethod
    def forward(ctx, x):
        return x._data.copy()

    @staticmethod
    def backward(ctx, g):
        return g


def clone(x: Tensor, *, memory_format=None) -> Tensor:
    return Clone.apply(x)


def contiguous(x: Tensor, memory_format=None) -> Tensor:
    if x._data.flags.c_contiguous:
        return x
    return Clone.apply(x)


def type_as(x: Tensor, other: Tensor) -> Tensor:
    return to_copy(x, other._dtype)
