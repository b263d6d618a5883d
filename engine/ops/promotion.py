"""Operand preparation for elementwise ops: type promotion, device checks, scalars."""

from __future__ import annotations

import numpy as np

from engine.dtypes import FLOAT, INT, bfloat16, bool_, get_default_dtype, int64, result_type_of
from engine.tensor import Tensor

_PY_SCALARS = (int, float, bool, complex)


def raw(value):
    """The array of a tensor, or the value itself for a Python scalar."""
    return value._data if isinstance(value, Tensor) else value


def shape_of(value) -> tuple:
    return value._data.shape if isinstance(value, Tensor) else ()


def as_scalar(value):
    """A Python number for scalars (NumPy scalars included); None for anything else."""
    if type(value) in _PY_SCALARS:
        return value
    if isinstance(value, np.generic) and value.ndim == 0:
        if value.dtype.kind in "biufc":
            return value.item()
        if value.dtype == bfloat16.np:
            return float(value)
    if isinstance(value, _PY_SCALARS):  # e.g. subclasses of int/float
        return value
    return None


def cast(t: Tensor, dtype) -> Tensor:
    return t if t._dtype is dtype else t.to(dtype)


def check_same_device(a: Tensor, b: Tensor) -> None:
    if a._device is not b._device:
        raise RuntimeError("Expected all tensors to be on the same device, but found at least two devices, "
                           f"{a._device} and {b._device}!")


def scalar_result_dtype(t: Tensor, scalar):
    """dtype of ``t <op> scalar``: the scalar only matters when its category is higher."""
    dtype = t._dtype
    if isinstance(scalar, bool):
        return dtype
    if isinstance(scalar, int):
        return int64 if dtype is bool_ else dtype
    if isinstance(scalar, complex):
        # NOTE: a complex scalar keeps a floating tensor's precision (float64 -> complex128).
        return dtype.to_complex() if dtype.category >= FLOAT else get_default_dtype().to_complex()
    return dtype if dtype.category >= FLOAT else get_default_dtype()


def binary_operands(a, b):
    """(a, b) ready for a binary op: tensors share device and promoted dtype; scalars stay numbers."""
    if isinstance(a, Tensor):
        if isinstance(b, Tensor):
            if a._dtype is b._dtype and a._device is b._device:
                return a, b
            return _promote_tensors(a, b)
        s = as_scalar(b)
        if s is None:
            return _promote_tensors(a, _to_tensor(b, a))
        a = cast(a, scalar_result_dtype(a, s))
        return a, (s if a._dtype is not bfloat16 else _bfloat16_scalar(s))
    s = as_scalar(a)
    if s is None:
        return _promote_tensors(_to_tensor(a, b), b)
    b = cast(b, scalar_result_dtype(b, s))
    return (s if b._dtype is not bfloat16 else _bfloat16_scalar(s)), b


def _bfloat16_scalar(value):
    # NOTE: ml_dtypes promotes bfloat16 with a Python float to float32; a bfloat16 scalar keeps bfloat16.
    return bfloat16.np.type(value) if isinstance(value, float) else value


def _to_tensor(value, like: Tensor) -> Tensor:
    from engine.creation import as_tensor

    if not isinstance(value, list | tuple | np.ndarray):
        raise TypeError(f"unsupported operand type for a tensor operation: {type(value).__name__}")
    return as_tensor(value, device=like._device)


def _promote_tensors(a: Tensor, b: Tensor):
    if a._device is not b._device:
        # NOTE: like PyTorch, a 0-dim CPU tensor may join a CUDA tensor (it is a scalar).
        if a._device.type == "cpu" and a._data.ndim == 0:
            a = a.to(b._device)
        elif b._device.type == "cpu" and b._data.ndim == 0:
            b = b.to(a._device)
        else:
            check_same_device(a, b)
    dtype = result_type(a, b)
    return cast(a, dtype), cast(b, dtype)


def result_type(*operands):
    """The dtype PyTorch's promotion gives for tensors and Python scalars (``torch.result_type``)."""
    dims, zero_dims, scalars = [], [], []
    from engine.dtypes import scalar_dtype

    for x in operands:
        if isinstance(x, Tensor):
            (dims if x._data.ndim else zero_dims).append(x._dtype)
        else:
            s = as_scalar(x)
            if s is None:
                raise TypeError(f"result_type() got an unsupported operand {type(x).__name__}")
            scalars.append(scalar_dtype(s))
    return result_type_of(dims, zero_dims, scalars)


def to_float(t: Tensor) -> Tensor:
    """Integer and bool tensors become the default float dtype (for exp, log, true division ...)."""
    return t if t._dtype.category >= FLOAT else t.to(get_default_dtype())


def is_integral(dtype) -> bool:
    return dtype.category <= INT
