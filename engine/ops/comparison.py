"""Comparisons and logical/bitwise ops; their results are bool (or integer) and carry no gradient."""

from __future__ import annotations

from engine.backend import quiet_fp
from engine.dtypes import bool_
from engine.ops.promotion import binary_operands, raw
from engine.tensor import Tensor, wrap


def _elementwise(input, other, name: str) -> Tensor:
    a, b = binary_operands(input, other)
    t = a if isinstance(a, Tensor) else b
    if name in _ORDERED and t._dtype.is_complex:
        raise RuntimeError(f"{name} is not supported for complex tensors: complex numbers are not ordered")
    with quiet_fp():
        return wrap(getattr(t._device.xp, name)(raw(a), raw(b)), t._device)


_ORDERED = frozenset(("less", "less_equal", "greater", "greater_equal"))


def eq(input, other) -> Tensor:
    return _elementwise(input, other, "equal")


def ne(input, other) -> Tensor:
    return _elementwise(input, other, "not_equal")


def lt(input, other) -> Tensor:
    return _elementwise(input, other, "less")


def le(input, other) -> Tensor:
    return _elementwise(input, other, "less_equal")


def gt(input, other) -> Tensor:
    return _elementwise(input, other, "greater")


def ge(input, other) -> Tensor:
    return _elementwise(input, other, "greater_equal")


less, less_equal, greater, greater_equal, not_equal = lt, le, gt, ge, ne


def logical_and(input, other) -> Tensor:
    return _elementwise(_as_bool(input), _as_bool(other), "logical_and")


def logical_or(input, other) -> Tensor:
    return _elementwise(_as_bool(input), _as_bool(other), "logical_or")


def logical_xor(input, other) -> Tensor:
    return _elementwise(_as_bool(input), _as_bool(other), "logical_xor")


def logical_not(input) -> Tensor:
    return wrap(input._device.xp.logical_not(input._data), input._device)


def _as_bool(x):
    return x.to(bool_) if isinstance(x, Tensor) else bool(x)


def _check_integral(*values) -> None:
    for v in values:
        if isinstance(v, Tensor) and v._dtype.is_floating_point:
            raise RuntimeError('"bitwise" ops are only supported for integer and bool tensors, '
                               f"got {v._dtype.name}")


def bitwise_and(input, other) -> Tensor:
    _check_integral(input, other)
    return _elementwise(input, other, "bitwise_and")


def bitwise_or(input, other) -> Tensor:
    _check_integral(input, other)
    return _elementwise(input, other, "bitwise_or")


def bitwise_xor(input, other) -> Tensor:
    _check_integral(input, other)
    return _elementwise(input, other, "bitwise_xor")


def bitwise_not(input) -> Tensor:
    _check_integral(input)
    return wrap(input._device.xp.invert(input._data), input._device)


def isclose(input, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> Tensor:
    a, b = binary_operands(input, other)
    t = a if isinstance(a, Tensor) else b
    with quiet_fp():
        return wrap(t._device.xp.isclose(raw(a), raw(b), rtol=rtol, atol=atol, equal_nan=equal_nan), t._device)


def allclose(input, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    return bool(isclose(input, other, rtol, atol, equal_nan)._data.all())


def equal(input, other) -> bool:
    """True when both tensors have the same shape and elements."""
    return input._data.shape == other._data.shape and bool((input._data == other._data).all())


# ----- operator forms ----------------------------------------------------------------------------
def and_op(a, b):
    return bitwise_and(a, b)


def or_op(a, b):
    return bitwise_or(a, b)


def xor_op(a, b):
    return bitwise_xor(a, b)


def invert_op(a):
    return logical_not(a) if a._dtype is bool_ else bitwise_not(a)
