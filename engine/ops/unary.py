"""Elementwise functions of one tensor: abs, neg, exp, log, sqrt, trig, tanh, sigmoid, erf, rounding.

Complex inputs follow PyTorch's gradient convention: a holomorphic f's backward is ``g * conj(f'(z))``.
"""

from __future__ import annotations

from engine.autograd.function import Op
from engine.autograd.grad_mode import state
from engine.backend import fp_ignore, fp_restore
from engine.dtypes import COMPLEX, FLOAT, float32, float64
from engine.ops import grad_math as gm
from engine.ops.promotion import to_float
from engine.tensor import Tensor, result_like, wrap


class Neg(Op):
    _array_backward = True

    @staticmethod
    def forward(ctx, x):
        return -x._data

    @staticmethod
    def backward(ctx, g):
        return -g


class Abs(Op):
    _array_backward = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x._device.xp.abs(x._data)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * gm.sgn(x)


class Exp(Op):
    _saves_output = True
    _array_backward = True

    _quiet = True

    @staticmethod
    def forward(ctx, x):
        out = x._device.xp.exp(x._data)
        return out

    @staticmethod
    def backward(ctx, g):
        out = ctx.output
        return g * gm.conj(out)


class Log(Op):
    _array_backward = True

    _quiet = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x._device.xp.log(x._data)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / gm.conj(x)


class Log2(Op):
    _array_backward = True

    _quiet = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x._device.xp.log2(x._data)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / (gm.conj(x) * 0.6931471805599453)


class Log10(Op):
    _array_backward = True

    _quiet = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x._device.xp.log10(x._data)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / (gm.conj(x) * 2.302585092994046)


class Log1p(Op):
    _array_backward = True

    _quiet = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x._device.xp.log1p(x._data)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / gm.conj(x + 1)


class Expm1(Op):
    _saves_output = True
    _array_backward = True

    _quiet = True

    @staticmethod
    def forward(ctx, x):
        return x._device.xp.expm1(x._data)

    @staticmethod
    def backward(ctx, g):
        out = ctx.output
        return g * gm.conj(out + 1)


class Sqrt(Op):
    _saves_output = True
    _array_backward = True

    _quiet = True

    @staticmethod
    def forward(ctx, x):
        return x._device.xp.sqrt(x._data)

    @staticmethod
    def backward(ctx, g):
        out = ctx.output
        return g / gm.conj(out * 2)


class Rsqrt(Op):
    _saves_output = True
    _array_backward = True

    _quiet = True

    @staticmethod
    def forward(ctx, x):
        return 1 / x._device.xp.sqrt(x._data)

    @staticmethod
    def backward(ctx, g):
        out = ctx.output
        return g * gm.conj(out * out * out * -0.5)


class Reciprocal(Op):
    _saves_output = True
    _array_backward = True

    _quiet = True

    @staticmethod
    def forward(ctx, x):
        return 1 / x._data

    @staticmethod
    def backward(ctx, g):
        out = ctx.output
        return -g * gm.conj(out * out)


class Sin(Op):
    _array_backward = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x._device.xp.sin(x._data)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * gm.conj(gm.cos(x))


class Cos(Op):
    _array_backward = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x._device.xp.cos(x._data)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return -g * gm.conj(gm.sin(x))


class Tan(Op):
    _saves_output = True
    _array_backward = True

    @staticmethod
    def forward(ctx, x):
        return x._device.xp.tan(x._data)

    @staticmethod
    def backward(ctx, g):
        out = ctx.output
        return g * gm.conj(out * out + 1)


class Atan(Op):
    _array_backward = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x._device.xp.arctan(x._data)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / gm.conj(x * x + 1)


class Tanh(Op):
    _saves_output = True
    _array_backward = True

    @staticmethod
    def forward(ctx, x):
        return x._device.xp.tanh(x._data)

    @staticmethod
    def backward(ctx, g):
        out = ctx.output
        return g * gm.conj(1 - out * out)


class Sigmoid(Op):
    _saves_output = True
    _array_backward = True

    @staticmethod
    def forward(ctx, x):
        xp = x._device.xp
        data = x._data
        # NOTE: 1/(1+exp(-x)) overflows exp for very negative x; tanh form is stable everywhere.
        out = xp.tanh(data * 0.5)
        out *= 0.5
        out += 0.5
        return out.astype(data.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        out = ctx.output
        return g * gm.conj(out * (1 - out))


class Erf(Op):
    _array_backward = True
    _real_only = True  # as in PyTorch: erf has no complex kernel

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return erf_array(x._data, x._device.xp)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (gm.exp(-(x * x)) * 1.1283791670955126)  # 2 / sqrt(pi)


class ZeroGradient(Op):
    """Piecewise-constant functions (sign, floor, ceil, round, trunc): the gradient is zero."""

    _array_backward = True

    @staticmethod
    def forward(ctx, x, fn):
        return fn(x._data)

    @staticmethod
    def backward(ctx, g):
        return g * 0.0, None


class Round(ZeroGradient):
    """round: zero gradient."""


# ----- erf ---------------------------------------------------------------------------------------
# NOTE: no SciPy. Chebyshev fits (max error ~2e-15, computed in float64): erf(x) = x * P(2x^2 - 1)
# for |x| < 1, and erfc(x) = exp(-x^2) * Q(u) in u = 1/x mapped to [-1, 1] for 1 <= |x| < 6;
# beyond 6, erfc(x) < 2e-17 so erf is +-1 in every dtype.
_ERF_SMALL = (
    0.975476939382654, -0.14226120510371365, 0.01003558218759958, -0.0005768764699767281,
    2.7419931252194793e-05, -1.1043175507576628e-06, 3.8488755071952596e-08, -1.1808581334982193e-09,
    3.233384267402202e-11, -7.990275108227252e-13, 1.7511244979314968e-14,
)
_ERFC_LARGE = (
    0.27477468589795284, 0.16699329119310397, -0.014778434908201278, 0.00046076600437348393,
    0.00017657967835403321, -5.0269840642492767e-05, 7.427013355427789e-06, -3.5188112195453026e-07,
    -1.7150112892918994e-07, 6.706623049295837e-08, -1.4316589347544044e-08, 1.7595567434297065e-09,
    7.452114779619806e-11, -1.1543786158877149e-10, 3.8873431316009044e-11, -8.50490962567883e-12,
    1.1271899209908815e-12, 4.324144981450827e-14, -8.441341759862331e-14, 3.191421178016102e-14,
    -8.50662821024507e-15,
)


def _chebyshev_to_power(coefficients, scale=1.0, shift=0.0):
    """Power-series coefficients (lowest first) in t of sum c_k T_k(scale * t + shift)."""
    s = [shift, scale]  # s(t) as a polynomial in t
    prev, cur = [1.0], s[:]  # T_0, T_1
    out = [0.0] * len(coefficients)
    for k, c in enumerate(coefficients):
        term = prev if k == 0 else cur
        for i, v in enumerate(term):
            out[i] += c * v
        if k >= 1:
            nxt = [0.0] * (len(cur) + 1)  # T_{k+1} = 2 s T_k - T_{k-1}
            for i, v in enumerate(cur):
                nxt[i] += 2 * s[0] * v
                nxt[i + 1] += 2 * s[1] * v
            for i, v in enumerate(prev):
                nxt[i] -= v
            prev, cur = cur, nxt
    return tuple(out)


# NOTE: the fits as power series, for Horner's rule (2 in-place passes per coefficient): erf(x) = x * P(x^2)
# for |x| < 1, erfc = exp(-x^2) * Q(s) with s = 2.4/|x| - 1.4. Both series have sum |coefficient| < 2, so
# the conversion costs no accuracy.
_ERF_SMALL_POWER = _chebyshev_to_power(_ERF_SMALL, 2.0, -1.0)
_ERFC_LARGE_POWER = _chebyshev_to_power(_ERFC_LARGE)


def _horner(coefficients, t, xp):
    """sum c_k t^k (lowest coefficient first), evaluated in place."""
    out = xp.full_like(t, coefficients[-1])
    for c in coefficients[-2::-1]:
        out *= t
        out += c
    return out


def erf_array(data, xp):
    """erf of an array, accurate to ~1e-15 in float64 (computed in float64, returned in its dtype).

    Each element is evaluated by one series only: |x| < 1, 1 <= |x| < 6, and the rest (+-1, or NaN).
    """
    x = data.astype(float64.np)
    a = xp.abs(x)
    out = xp.copysign(xp.ones_like(x), x)
    out[xp.isnan(x)] = xp.nan
    small = a < 1
    xs = x[small]
    out[small] = xs * _horner(_ERF_SMALL_POWER, xs * xs, xp)
    large = (a >= 1) & (a < 6)
    xl = x[large]
    al = xp.abs(xl)
    lo = 1 / 6
    erfc = xp.exp(-al * al) * _horner(_ERFC_LARGE_POWER, (2 / (1 - lo)) * (1 / al - lo) - 1, xp)
    out[large] = xp.copysign(1 - erfc, xl)
    return out.astype(data.dtype, copy=False)


# ----- public functions ---------------------------------------------------------------------------
def _floating(fn_class, array_function: str):
    quiet = fn_class._quiet

    def op(input):
        if input._dtype.category < FLOAT:
            input = to_float(input)
        elif input._dtype.category == COMPLEX:
            return _complex_unary(fn_class, array_function, input)
        elif array_function and input._dtype.itemsize >= 4 and not (input._requires_grad and state.enabled):
            # NOTE: graph-free fast path (half types take the op, which keeps their dtype exact)
            compute = getattr(input._device.xp, array_function)
            if not quiet:
                return result_like(compute(input._data), input)
            token = fp_ignore()
            try:
                return result_like(compute(input._data), input)
            finally:
                fp_restore(token)
        return fn_class.apply(input)

    op.__name__ = fn_class.__name__.lower()
    op.__doc__ = f"Elementwise {op.__name__} (integer inputs become the default float dtype)."
    return op


def _complex_unary(fn_class, array_function: str, input):
    """Complex inputs: the op itself (its backward conjugates the derivative, PyTorch's convention)."""
    if getattr(fn_class, "_real_only", False):
        raise RuntimeError(f"{fn_class.__name__.lower()} is not supported for complex tensors")
    if not array_function or (input._requires_grad and state.enabled):
        return fn_class.apply(input)
    token = fp_ignore()
    try:
        return result_like(getattr(input._device.xp, array_function)(input._data), input)
    finally:
        fp_restore(token)


exp = _floating(Exp, "exp")
log = _floating(Log, "log")
log2 = _floating(Log2, "log2")
log10 = _floating(Log10, "log10")
log1p = _floating(Log1p, "log1p")
expm1 = _floating(Expm1, "expm1")
sqrt = _floating(Sqrt, "sqrt")
rsqrt = _floating(Rsqrt, "")
reciprocal = _floating(Reciprocal, "")
sin = _floating(Sin, "sin")
cos = _floating(Cos, "cos")
tan = _floating(Tan, "tan")
atan = arctan = _floating(Atan, "arctan")
tanh = _floating(Tanh, "tanh")
sigmoid = _floating(Sigmoid, "")
erf = _floating(Erf, "")


def neg(input):
    return Neg.apply(input)


negative = neg


def abs(input):
    if input._dtype.category < FLOAT:
        return wrap(input._device.xp.abs(input._data), input._device)
    return Abs.apply(input)


absolute = abs


def _zero_gradient(name: str, numpy_name: str):
    node_class = type(name.capitalize(), (ZeroGradient,), {"__doc__": f"{name}: zero gradient."})

    def op(input):
        xp = input._device.xp
        if input._dtype.category == COMPLEX:
            if name == "sign":
                raise RuntimeError("Unlike NumPy, torch.sign is not intended to support complex numbers. "
                                   "Please use torch.sgn instead.")
            raise RuntimeError(f"{name} is not supported for complex inputs")
        if input._dtype.category != FLOAT:
            return wrap(xp.sign(input._data), input._device) if name == "sign" else input.clone()
        return node_class.apply(input, getattr(xp, numpy_name))

    op.__name__ = name
    op.__doc__ = f"Elementwise {name}; its gradient is zero."
    return op


sign = _zero_gradient("sign", "sign")
floor = _zero_gradient("floor", "floor")
ceil = _zero_gradient("ceil", "ceil")
trunc = fix = _zero_gradient("trunc", "trunc")


def round(input, *, decimals: int = 0):
    """Round half to even (as PyTorch and NumPy do)."""
    if input._dtype.category == COMPLEX:
        raise RuntimeError("round is not supported for complex inputs")
    if input._dtype.category != FLOAT:
        return input.clone()
    xp = input._device.xp
    if decimals == 0:
        return Round.apply(input, xp.round)
    return Round.apply(input, lambda data: xp.round(data, decimals))


def square(input):
    return input * input


def frac(input):
    return input - trunc(input)


def signbit(input):
    return wrap(input._device.xp.signbit(input._data), input._device)


def nan_to_num(input, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None):
    from engine.ops.arithmetic import where

    out = where(isnan(input), nan, input)
    big = float(input._device.xp.finfo(input._dtype.np if input._dtype is not float32 else float32.np).max) \
        if input._dtype.category == FLOAT else 0
    out = where(out == float("inf"), big if posinf is None else posinf, out)
    return where(out == float("-inf"), -big if neginf is None else neginf, out)


def isnan(input) -> Tensor:
    return wrap(input._device.xp.isnan(input._data), input._device)


def isinf(input) -> Tensor:
    return wrap(input._device.xp.isinf(input._data), input._device)


def isfinite(input) -> Tensor:
    return wrap(input._device.xp.isfinite(input._data), input._device)
