"""Inverse trigonometric and hyperbolic functions (asin, acos, sinh, cosh, asinh, acosh, atanh), atan2, hypot,
deg2rad, rad2deg. Backward multiplies by the conjugate derivative (PyTorch's complex convention)."""

from __future__ import annotations

import math

from engine.autograd.function import Op
from engine.ops import grad_math as gm
from engine.ops.promotion import binary_operands, raw, to_float
from engine.ops.unary import _floating
from engine.tensor import Tensor


class Asin(Op):
    _quiet = True
    _array_backward = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x._device.xp.arcsin(x._data)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / gm.conj((1 - x * x) ** 0.5)


class Acos(Op):
    _quiet = True
    _array_backward = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x._device.xp.arccos(x._data)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return -g / gm.conj((1 - x * x) ** 0.5)


def _cosh(x):
    return (gm.exp(x) + gm.exp(-x)) * 0.5


def _sinh(x):
    return (gm.exp(x) - gm.exp(-x)) * 0.5


class Sinh(Op):
    _quiet = True
    _array_backward = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x._device.xp.sinh(x._data)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * gm.conj(_cosh(x))


class Cosh(Op):
    _quiet = True
    _array_backward = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x._device.xp.cosh(x._data)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * gm.conj(_sinh(x))


class Asinh(Op):
    _quiet = True
    _array_backward = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x._device.xp.arcsinh(x._data)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / gm.conj((x * x + 1) ** 0.5)


class Acosh(Op):
    _quiet = True
    _array_backward = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x._device.xp.arccosh(x._data)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / gm.conj((x * x - 1) ** 0.5)


class Atanh(Op):
    _quiet = True
    _array_backward = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x._device.xp.arctanh(x._data)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / gm.conj(1 - x * x)


class Atan2(Op):
    _quiet = True
    _array_backward = True

    @staticmethod
    def forward(ctx, y, x):
        ctx.save_for_backward(y, x)
        return y._device.xp.arctan2(raw(y), raw(x))

    @staticmethod
    def backward(ctx, g):
        y, x = ctx.saved_tensors
        scale = g / (x * x + y * y)
        need_y, need_x = ctx.needs_input_grad
        return (gm.sum_to(scale * x, gm.shape(y)) if need_y else None,
                gm.sum_to(-scale * y, gm.shape(x)) if need_x else None)


asin = arcsin = _floating(Asin, "arcsin")
acos = arccos = _floating(Acos, "arccos")
sinh = _floating(Sinh, "sinh")
cosh = _floating(Cosh, "cosh")
asinh = arcsinh = _floating(Asinh, "arcsinh")
acosh = arccosh = _floating(Acosh, "arccosh")
atanh = arctanh = _floating(Atanh, "arctanh")


def _float_pair(input, other):
    a, b = binary_operands(input, other)
    if isinstance(a, Tensor):
        a = to_float(a)
        b = b.to(a._dtype) if isinstance(b, Tensor) else b
    else:
        b = to_float(b)
    return a, b


def atan2(input, other):
    """Elementwise ``atan(input / other)`` in the right quadrant (integers become the default float)."""
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise TypeError("atan2(): argument 'input' and 'other' must be Tensors")
    return Atan2.apply(*_float_pair(input, other))


arctan2 = atan2


def hypot(input, other):
    """Elementwise ``sqrt(input**2 + other**2)``."""
    a, b = _float_pair(input, other)
    return (a * a + b * b) ** 0.5


def deg2rad(input):
    return to_float(input) * (math.pi / 180.0)


def rad2deg(input):
    return to_float(input) * (180.0 / math.pi)
