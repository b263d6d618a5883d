"""More elementwise functions: copysign, heaviside, logaddexp(2), ldexp, gcd, lcm, nextafter, frexp, positive.

The differentiable ones are compositions of engine ops, so they differentiate (and again) like them.
"""

from __future__ import annotations

import math
from collections import namedtuple

from engine.dtypes import FLOAT, int32
from engine.ops.arithmetic import maximum, pow, where
from engine.ops.comparison import logical_xor
from engine.ops.promotion import binary_operands, is_integral, to_float
from engine.ops.unary import exp, isinf, log, signbit
from engine.tensor import Tensor, wrap

FrexpResult = namedtuple("frexp", ["mantissa", "exponent"])


def _tensors(input, other, name: str):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}(): argument 'input' must be Tensor, not {type(input).__name__}")
    a, b = binary_operands(input, other)
    return a, b if isinstance(b, Tensor) else wrap(a._device.xp.asarray(b, dtype=a._dtype.np), a._device)


def _float_tensors(input, other, name: str):
    a, b = _tensors(input, other, name)
    a = to_float(a)
    return a, b.to(a._dtype)


def copysign(input, other):
    """``|input|`` with the sign of ``other`` (its sign bit, so -0.0 counts as negative)."""
    a, b = _float_tensors(input, other, "copysign")
    return where(logical_xor(signbit(a), signbit(b)), -a, a)


def heaviside(input, values):
    """The Heaviside step: 0 below zero, 1 above, ``values`` at zero (not differentiable)."""
    if not isinstance(values, Tensor):
        raise TypeError("heaviside(): argument 'values' must be Tensor")
    a, v = _tensors(input, values, "heaviside")
    xp = a._device.xp
    data = xp.where(a._data == 0, v._data, (a._data > 0).astype(a._dtype.np))
    return wrap(data.astype(a._dtype.np, copy=False), a._device)


def logaddexp(input, other):
    """``log(exp(input) + exp(other))`` without overflow."""
    a, b = _float_tensors(input, other, "logaddexp")
    # NOTE: shift by the (constant) larger value; infinite shifts are replaced so -inf + -inf stays -inf.
    m = maximum(a, b).detach()
    m = where(isinf(m), 0.0, m)
    return m + log(exp(a - m) + exp(b - m))


def logaddexp2(input, other):
    """``log2(2**input + 2**other)`` without overflow."""
    a, b = _float_tensors(input, other, "logaddexp2")
    return logaddexp(a * math.log(2.0), b * math.log(2.0)) * (1.0 / math.log(2.0))


def ldexp(input, other):
    """``input * 2**other``."""
    a, b = _tensors(input, other, "ldexp")
    a = to_float(a)
    return a * pow(2.0, b.to(a._dtype))


def _integer_pair(input, other, name: str):
    a, b = _tensors(input, other, name)
    if not is_integral(a._dtype) or not is_integral(b._dtype):
        raise RuntimeError(f'"{name}_cpu" not implemented for \'{a._dtype.name.capitalize()}\'')
    return a, b


def gcd(input, other):
    """Elementwise greatest common divisor of integer tensors."""
    a, b = _integer_pair(input, other, "gcd")
    return wrap(a._device.xp.gcd(a._data, b._data).astype(a._dtype.np), a._device)


def lcm(input, other):
    """Elementwise least common multiple of integer tensors."""
    a, b = _integer_pair(input, other, "lcm")
    return wrap(a._device.xp.lcm(a._data, b._data).astype(a._dtype.np), a._device)


def nextafter(input, other):
    """The next floating-point value after ``input`` towards ``other``."""
    a, b = _tensors(input, other, "nextafter")
    if a._dtype.category != FLOAT:
        raise RuntimeError(f'"nextafter_cpu" not implemented for \'{a._dtype.name.capitalize()}\'')
    return wrap(a._device.xp.nextafter(a._data, b._data), a._device)


def frexp(input):
    """``(mantissa, exponent)`` with ``input = mantissa * 2**exponent`` and ``0.5 <= |mantissa| < 1``."""
    if input._dtype.category != FLOAT:
        raise RuntimeError("torch.frexp() only supports floating-point dtypes")
    mantissa, exponent = input._device.xp.frexp(input._data)
    return FrexpResult(wrap(mantissa, input._device), wrap(exponent.astype(int32.np), input._device))


def positive(input):
    """``input`` itself (``+input``); refuses bool tensors as PyTorch does."""
    if input._dtype.name == "bool":
        raise RuntimeError("The `+` operator, on a bool tensor is not supported.")
    return input


def _shift(input, other, name: str, left: bool):
    a, b = _tensors(input, other, name)
    if not is_integral(a._dtype):
        raise RuntimeError(f'"{name}_cpu" not implemented for \'{a._dtype.name.capitalize()}\'')
    xp = a._device.xp
    # NOTE: shifting by the bit width or more gives 0 (or -1 for negative right shifts), as PyTorch
    bits = a._dtype.itemsize * 8
    too_far = (b._data >= bits) | (b._data < 0)
    shift = xp.where(too_far, 0, b._data).astype(a._dtype.np)
    out = xp.left_shift(a._data, shift) if left else xp.right_shift(a._data, shift)
    overflow = 0 if left else xp.where(a._data < 0, -1, 0).astype(a._dtype.np)
    return wrap(xp.where(too_far, overflow, out).astype(a._dtype.np), a._device)


def bitwise_left_shift(input, other):
    """``input << other`` for integer tensors."""
    return _shift(input, other, "lshift", True)


def bitwise_right_shift(input, other):
    """``input >> other`` (arithmetic) for integer tensors."""
    return _shift(input, other, "rshift", False)


def isposinf(input):
    """True where ``input`` is +inf."""
    xp = input._device.xp
    return wrap(xp.isposinf(input._data) if input._dtype.category == FLOAT else xp.zeros(input._data.shape, bool),
                input._device)


def isneginf(input):
    """True where ``input`` is -inf."""
    xp = input._device.xp
    return wrap(xp.isneginf(input._data) if input._dtype.category == FLOAT else xp.zeros(input._data.shape, bool),
                input._device)


def isreal(input):
    """True where ``input`` has no imaginary part (everywhere for real dtypes)."""
    xp = input._device.xp
    if input._dtype.is_complex:
        return wrap(input._data.imag == 0, input._device)
    return wrap(xp.ones(input._data.shape, dtype=bool), input._device)


def isin(elements, test_elements, *, assume_unique=False, invert=False):
    """True where an element of ``elements`` occurs in ``test_elements`` (either may be a number)."""
    if not isinstance(elements, Tensor) and not isinstance(test_elements, Tensor):
        raise TypeError("isin(): at least one of 'elements' and 'test_elements' must be a Tensor")
    like = elements if isinstance(elements, Tensor) else test_elements
    xp = like._device.xp
    values = elements._data if isinstance(elements, Tensor) else xp.asarray(elements)
    tests = test_elements._data if isinstance(test_elements, Tensor) else xp.asarray(test_elements)
    return wrap(xp.isin(values, tests, invert=invert), like._device)
