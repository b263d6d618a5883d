"""Small queries about dtypes and tensors (``torch.can_cast``, ``torch.is_signed`` ...) and torch's
math constants (``torch.pi``, ``torch.inf`` ...)."""

from __future__ import annotations

import math

from engine.dtypes import as_dtype
from engine.tensor import Tensor

e, pi, inf, nan = math.e, math.pi, math.inf, math.nan
newaxis = None


def can_cast(from_, to) -> bool:
    """Whether PyTorch's casting rules allow ``from_`` -> ``to``: never to a lower kind
    (complex -> float -> integer -> bool)."""
    return as_dtype(from_).category <= as_dtype(to).category


def is_signed(input: Tensor) -> bool:
    return input._dtype.is_signed


def is_nonzero(input: Tensor) -> bool:
    """The truth of a one-element tensor; more (or fewer) elements are an error."""
    size = input._data.size
    if size == 0:
        raise RuntimeError("Boolean value of Tensor with no values is ambiguous")
    if size > 1:
        raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
    return bool(input._data.reshape(-1)[0])


def is_same_size(input: Tensor, other: Tensor) -> bool:
    return tuple(input._data.shape) == tuple(other._data.shape)


def typename(obj) -> str:
    """A tensor's type string (``Tensor.type()``), or an object's qualified class name."""
    if isinstance(obj, Tensor):
        return obj.type()
    module = getattr(type(obj), "__module__", "")
    name = type(obj).__qualname__
    return name if module in ("builtins", "", None) else f"{module}.{name}"


def get_device(input: Tensor) -> int:
    """The CUDA device index of ``input``, -1 on the CPU."""
    return -1 if input._device.type == "cpu" else (input._device.index or 0)
