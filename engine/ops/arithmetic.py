"""Elementwise arithmetic with broadcasting: add, sub, mul, div, pow, remainder, maximum, minimum,
clamp, where, lerp, addcmul, addcdiv."""

from __future__ import annotations

from engine.autograd.function import Op
from engine.autograd.grad_mode import state
from engine.backend import quiet_fp
from engine.dtypes import FLOAT, bool_, get_default_dtype
from engine.ops import grad_math as gm
from engine.ops.complex import no_complex
from engine.ops.promotion import as_scalar, binary_operands, cast, raw, result_type, shape_of, to_float
from engine.ops.reduction import sum_to
from engine.tensor import Tensor, result_like, wrap


class Add(Op):
    _array_backward = True

    @staticmethod
    def forward(ctx, a, b):
        x = a._data if isinstance(a, Tensor) else a
        y = b._data if isinstance(b, Tensor) else b
        ctx.shapes = (x.shape if isinstance(a, Tensor) else (), y.shape if isinstance(b, Tensor) else ())
        return x + y

    @staticmethod
    def backward(ctx, g):
        shape_a, shape_b = ctx.shapes
        need_a, need_b = ctx.needs_input_grad
        return (gm.sum_to(g, shape_a) if need_a else None), (gm.sum_to(g, shape_b) if need_b else None)


class Sub(Op):
    _array_backward = True

    @staticmethod
    def forward(ctx, a, b):
        x = a._data if isinstance(a, Tensor) else a
        y = b._data if isinstance(b, Tensor) else b
        ctx.shapes = (x.shape if isinstance(a, Tensor) else (), y.shape if isinstance(b, Tensor) else ())
        return x - y

    @staticmethod
    def backward(ctx, g):
        shape_a, shape_b = ctx.shapes
        need_a, need_b = ctx.needs_input_grad
        return (gm.sum_to(g, shape_a) if need_a else None), (gm.sum_to(-g, shape_b) if need_b else None)


class Mul(Op):
    _array_backward = True

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return (a._data if isinstance(a, Tensor) else a) * (b._data if isinstance(b, Tensor) else b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        a, b = gm.conj(a), gm.conj(b)  # complex: g * conj(df/dz), PyTorch's convention
        need_a, need_b = ctx.needs_input_grad
        return (gm.sum_to(g * b, gm.shape(a)) if need_a else None,
                gm.sum_to(g * a, gm.shape(b)) if need_b else None)


class Div(Op):
    _quiet = True
    _array_backward = True

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return raw(a) / raw(b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        a, b = gm.conj(a), gm.conj(b)  # complex: g * conj(df/dz), PyTorch's convention
        need_a, need_b = ctx.needs_input_grad
        grad_a = gm.sum_to(g / b, gm.shape(a)) if need_a else None
        grad_b = gm.sum_to(-g * a / (b * b), gm.shape(b)) if need_b else None
        return grad_a, grad_b


class Pow(Op):
    _quiet = True
    _array_backward = True

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return raw(a) ** raw(b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        grad_a = grad_b = None
        # NOTE: complex operands take g * conj(derivative), PyTorch's convention
        if need_a:
            if gm.is_scalar(b):
                grad_a = g * 0.0 if b == 0 else g * gm.conj(b * a ** (b - 1))
            else:
                grad_a = gm.sum_to(g * gm.conj(b * a ** (b - 1)), gm.shape(a))
        if need_b:
            # NOTE: d(a**b)/db = a**b * log(a); at a == 0 (real(b) >= 0) PyTorch defines it as 0.
            out = a**b
            if gm.is_scalar(a):
                term = out * _log_scalar(a)
            else:
                term = gm.where((a == 0) & (b.real >= 0), 0.0, out * gm.log(a))
            grad_b = gm.sum_to(g * gm.conj(term), gm.shape(b))
        return grad_a, grad_b


def _log_scalar(a):
    import cmath
    import math

    if gm.dtype_kind(a) == "c":
        return cmath.log(a) if a else complex(float("-inf"))
    return math.log(a) if a > 0 else (float("-inf") if a == 0 else float("nan"))


class Remainder(Op):
    _quiet = True

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return ctx_xp(a, b).remainder(raw(a), raw(b))

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        grad_a = sum_to(g, a._data.shape) if need_a else None
        grad_b = sum_to(-g * div(a, b, rounding_mode="floor"), b._data.shape) if need_b else None
        return grad_a, grad_b


def ctx_xp(a, b):
    return (a if isinstance(a, Tensor) else b)._device.xp


class Maximum(Op):
    _array_backward = True

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a._device.xp.maximum(a._data, b._data)

    @staticmethod
    def backward(ctx, g):
        return _pick_backward(ctx, g, greater=True)


class Minimum(Op):
    _array_backward = True

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a._device.xp.minimum(a._data, b._data)

    @staticmethod
    def backward(ctx, g):
        return _pick_backward(ctx, g, greater=False)


def _pick_backward(ctx, g, greater: bool):
    # NOTE: ties split the gradient in half between both inputs, as in PyTorch.
    a, b = ctx.saved_tensors
    need_a, need_b = ctx.needs_input_grad
    a_wins = a > b if greater else a < b
    tie = a == b
    half = g * 0.5
    grad_a = gm.sum_to(gm.where(tie, half, gm.where(a_wins, g, 0.0)), gm.shape(a)) if need_a else None
    grad_b = gm.sum_to(gm.where(tie, half, gm.where(a_wins, 0.0, g)), gm.shape(b)) if need_b else None
    return grad_a, grad_b


class Clamp(Op):
    _array_backward = True

    @staticmethod
    def forward(ctx, x, low, high):
        ctx.save_for_backward(x)
        ctx.bounds = (low, high)
        return x._device.xp.clip(x._data, low, high).astype(x._data.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        low, high = ctx.bounds
        inside = None
        if low is not None:
            inside = x >= low
        if high is not None:
            inside = (x <= high) if inside is None else inside & (x <= high)
        return gm.where(inside, g, 0.0), None, None


class Where(Op):
    _array_backward = True

    @staticmethod
    def forward(ctx, condition, a, b):
        ctx.save_for_backward(condition)
        ctx.shapes = (shape_of(a), shape_of(b))
        return condition._device.xp.where(condition._data, raw(a), raw(b))

    @staticmethod
    def backward(ctx, g):
        (condition,) = ctx.saved_tensors
        shape_a, shape_b = ctx.shapes
        _, need_a, need_b = ctx.needs_input_grad
        grad_a = gm.sum_to(gm.where(condition, g, 0.0), shape_a) if need_a else None
        grad_b = gm.sum_to(gm.where(condition, 0.0, g), shape_b) if need_b else None
        return None, grad_a, grad_b


# ----- public functions ---------------------------------------------------------------------------
def add(input, other, *, alpha=1):
    """``input + alpha * other`` with broadcasting and type promotion."""
    a, b = binary_operands(input, other)
    if alpha != 1:
        b = b * alpha
    return Add.apply(a, b)


def sub(input, other, *, alpha=1):
    """``input - alpha * other``."""
    a, b = binary_operands(input, other)
    if alpha != 1:
        b = b * alpha
    return Sub.apply(a, b)


subtract = sub


def rsub(input, other, *, alpha=1):
    """``other - alpha * input``."""
    return sub(other, input, alpha=alpha)


def mul(input, other):
    return Mul.apply(*binary_operands(input, other))


multiply = mul


def div(input, other, *, rounding_mode=None):
    """True division (``rounding_mode=None``), or ``"floor"`` / ``"trunc"`` division."""
    a, b = binary_operands(input, other)
    if rounding_mode is None:
        if isinstance(a, Tensor):
            a = to_float(a)
            if isinstance(b, Tensor):
                b = cast(b, a._dtype)
        else:
            b = to_float(b)
        return Div.apply(a, b)
    t = a if isinstance(a, Tensor) else b
    xp = t._device.xp
    with quiet_fp():
        if rounding_mode == "floor":
            out = xp.floor_divide(raw(a), raw(b))
        elif rounding_mode == "trunc":
            if t._dtype.category == FLOAT:
                out = xp.trunc(raw(a) / raw(b))
            else:
                quotient = xp.abs(raw(a)) // xp.abs(raw(b))
                out = (quotient * xp.sign(raw(a)) * xp.sign(raw(b))).astype(t._dtype.np)
        else:
            raise ValueError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
                             f"'{rounding_mode}'")
    return wrap(out, t._device)


divide = true_divide = div


def floor_divide(input, other):
    return div(input, other, rounding_mode="floor")


def pow(input, exponent):
    a, b = binary_operands(input, exponent)
    return Pow.apply(a, b)


def float_power(input, exponent):
    from engine.dtypes import float64

    a = input.to(float64) if isinstance(input, Tensor) else input
    b = exponent.to(float64) if isinstance(exponent, Tensor) else exponent
    return pow(a, b)


def remainder(input, other):
    return Remainder.apply(*binary_operands(input, other))


def fmod(input, other):
    a, b = binary_operands(input, other)
    t = a if isinstance(a, Tensor) else b
    with quiet_fp():
        return wrap(t._device.xp.fmod(raw(a), raw(b)), t._device)


def maximum(input, other):
    no_complex(input, "maximum")
    a, b = binary_operands(input, other)
    return Maximum.apply(a, b)


def minimum(input, other):
    no_complex(input, "minimum")
    a, b = binary_operands(input, other)
    return Minimum.apply(a, b)


def fmax(input, other):
    return maximum(input, other)


def fmin(input, other):
    return minimum(input, other)


def clamp(input, min=None, max=None):
    """Clip values into ``[min, max]``; bounds are numbers or tensors."""
    no_complex(input, "clamp")
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = input
        if min is not None:
            out = maximum(out, min)
        if max is not None:
            out = minimum(out, max)
        return out
    low, high = as_scalar(min), as_scalar(max)
    for bound in (low, high):
        if bound is not None and isinstance(bound, float) and input._dtype.category != FLOAT:
            input = input.to(get_default_dtype())
    return Clamp.apply(input, low, high)


clip = clamp


def clamp_min(input, min):
    return clamp(input, min=min)


def clamp_max(input, max):
    return clamp(input, max=max)


def where(condition, input=None, other=None):
    """Elements of ``input`` where ``condition`` holds, else of ``other`` (both may be scalars)."""
    if input is None and other is None:
        from engine.ops.indexing import nonzero

        return nonzero(condition, as_tuple=True)
    if condition._dtype is not bool_:
        condition = condition.to(bool_)
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        from engine.creation import scalar_tensor

        dtype = result_type(input, other)
        input = scalar_tensor(input, dtype=dtype, device=condition._device)
    a, b = binary_operands(input, other)
    return Where.apply(condition, a, b)


def lerp(input, end, weight):
    """``input + weight * (end - input)``."""
    return input + weight * (end - input)


def addcmul(input, tensor1, tensor2, *, value=1):
    return input + value * (tensor1 * tensor2) if value != 1 else input + tensor1 * tensor2


def addcdiv(input, tensor1, tensor2, *, value=1):
    return input + value * (tensor1 / tensor2) if value != 1 else input + tensor1 / tensor2


# ----- operator forms ------------------------------------------------------------------------
# NOTE: the hottest calls in the engine. Same-dtype tensors skip promotion, and when no graph is
# needed the result is computed right here (the op's forward is the same one-line expression).
def add_op(a, b):
    if isinstance(b, Tensor) and a._dtype is b._dtype and a._device is b._device:
        if (a._requires_grad or b._requires_grad) and state.enabled:
            return Add.apply(a, b)
        return result_like(a._data + b._data, a)
    return Add.apply(*binary_operands(a, b))


def radd_op(a, b):
    return Add.apply(*binary_operands(b, a))


def sub_op(a, b):
    if isinstance(b, Tensor) and a._dtype is b._dtype and a._device is b._device:
        if (a._requires_grad or b._requires_grad) and state.enabled:
            return Sub.apply(a, b)
        return result_like(a._data - b._data, a)
    return Sub.apply(*binary_operands(a, b))


def rsub_op(a, b):
    return Sub.apply(*binary_operands(b, a))


def mul_op(a, b):
    if isinstance(b, Tensor) and a._dtype is b._dtype and a._device is b._device:
        if (a._requires_grad or b._requires_grad) and state.enabled:
            return Mul.apply(a, b)
        return result_like(a._data * b._data, a)
    return Mul.apply(*binary_operands(a, b))


def rmul_op(a, b):
    return Mul.apply(*binary_operands(b, a))


def truediv_op(a, b):
    if isinstance(b, Tensor) and a._dtype is b._dtype and a._device is b._device and a._dtype.category == FLOAT:
        return Div.apply(a, b)
    return div(a, b)


def rtruediv_op(a, b):
    return div(b, a)


def floordiv_op(a, b):
    return div(a, b, rounding_mode="floor")


def rfloordiv_op(a, b):
    return div(b, a, rounding_mode="floor")


def mod_op(a, b):
    return remainder(a, b)


def rmod_op(a, b):
    return remainder(b, a)


def pow_op(a, b):
    return pow(a, b)


def rpow_op(a, b):
    return pow(b, a)
