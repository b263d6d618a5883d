"""The torch.special functions the engine had no kernel for, as autograd ops (PyTorch's derivatives)."""

from __future__ import annotations

import math

from engine.autograd.function import Function, Op
from engine.backend import fp_ignore, fp_restore
from engine.dtypes import float64
from engine.ops.arithmetic import where
from engine.special._bessel import bessel_array

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_CF_DEPTH = 60  # continued-fraction depth of erfcx for x >= 2


def erfcx_array(data, xp):
    """exp(x^2) erfc(x): a continued fraction for x >= 2, exp(x^2) (1 - erf(x)) below."""
    from engine.ops.unary import erf_array

    x = data.astype(float64.np)
    token = fp_ignore()
    try:
        big = x >= 2.0
        xb = xp.where(big, x, 2.0)
        t = xb.copy()
        for k in range(_CF_DEPTH, 0, -1):
            t = xb + (k / 2.0) / t
        cf = 1.0 / (math.sqrt(math.pi) * t)
        xs = xp.where(big, 0.0, x)
        direct = xp.exp(xs * xs) * (1.0 - erf_array(xs, xp))
        out = xp.where(big, cf, direct)
        out = xp.where(xp.isposinf(x), 0.0, out)
    finally:
        fp_restore(token)
    return out.astype(data.dtype, copy=False)


def erfc_array(data, xp):
    x = data.astype(float64.np)
    token = fp_ignore()
    try:
        out = erfcx_array(xp.abs(x), xp) * xp.exp(-x * x)
        out = xp.where(x < 0, 2.0 - out, out)
        out = xp.where(xp.isnan(x), xp.nan, out)
    finally:
        fp_restore(token)
    return out.astype(data.dtype, copy=False)


class Erfc(Op):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return erfc_array(x._data, x._device.xp)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (-_TWO_OVER_SQRT_PI * (-(x * x)).exp())


class Erfcx(Op):
    _saves_output = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return erfcx_array(x._data, x._device.xp)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (2.0 * x * ctx.output - _TWO_OVER_SQRT_PI)


class I0(Op):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return bessel_array(x._data, 0, False, x._device.xp)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * I1.apply(x)


class I0e(Op):
    _saves_output = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return bessel_array(x._data, 0, True, x._device.xp)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (I1e.apply(x) - x.sign() * ctx.output)


class I1(Op):
    _saves_output = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return bessel_array(x._data, 1, False, x._device.xp)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        safe = where(x == 0, 1.0, x)
        return g * where(x == 0, 0.5, I0.apply(x) - ctx.output / safe)


class I1e(Op):
    _saves_output = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return bessel_array(x._data, 1, True, x._device.xp)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        safe = where(x == 0, 1.0, x)
        out = ctx.output
        return g * where(x == 0, 0.5, I0e.apply(x) - out * (x.sign() + 1.0 / safe))


class XLogY(Function):
    """x * log(y) with 0 where x == 0 (unless y is nan); ``log1p`` selects xlog1py."""

    @staticmethod
    def forward(ctx, x, y, log1p: bool):
        ctx.save_for_backward(x, y)
        ctx.log1p = log1p
        xp = x._device.xp
        token = fp_ignore()
        try:
            logy = xp.log1p(y._data) if log1p else xp.log(y._data)
            out = xp.where((x._data == 0) & ~xp.isnan(y._data), 0.0, x._data * logy).astype(x._data.dtype)
        finally:
            fp_restore(token)
        from engine.tensor import _make

        return _make(out, x._dtype, x._device)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        gx = gy = None
        if ctx.needs_input_grad[0]:
            logy = y.log1p() if ctx.log1p else y.log()
            gx = g * where((x == 0) & (y == (-1.0 if ctx.log1p else 0.0)), 0.0, logy)  # torch's derivative
        if ctx.needs_input_grad[1]:
            gy = g * x / (y + 1.0 if ctx.log1p else y)
        return gx, gy, None


def hurwitz_zeta_array(x, q, xp):
    """zeta(x, q) = sum_k (q + k)^-x by Euler-Maclaurin (10 terms, 12 Bernoulli corrections)."""
    bernoulli = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510, 43867 / 798,
                 -174611 / 330, 854513 / 138, -236364091 / 2730)
    x = x.astype(float64.np)
    q = q.astype(float64.np)
    token = fp_ignore()
    try:
        n = 10
        total = xp.zeros(xp.broadcast(x, q).shape)
        for k in range(n):
            total = total + (q + k) ** -x
        a = q + n
        total = total + a ** (1.0 - x) / (x - 1.0) + 0.5 * a ** -x
        rising = x.copy() * xp.ones_like(total)  # x (x+1) ... (x+2j-2)
        fact = 2.0
        for j, b in enumerate(bernoulli, start=1):
            total = total + b / fact * rising * a ** (-x - 2 * j + 1)
            rising = rising * (x + 2 * j - 1) * (x + 2 * j)
            fact = fact * (2 * j + 1) * (2 * j + 2)
        total = xp.where(x == 1.0, xp.inf, total)
        total = xp.where(x < 1.0, xp.nan, total)
        total = xp.where((q <= 0) & (q == xp.floor(q)), xp.inf, total)
    finally:
        fp_restore(token)
    return total


class Zeta(Function):
    @staticmethod
    def forward(ctx, x, q):
        from engine.tensor import _make

        ctx.save_for_backward(x, q)
        out = hurwitz_zeta_array(x._data, q._data, x._device.xp).astype(x._dtype.np, copy=False)
        return _make(out, x._dtype, x._device)

    @staticmethod
    def backward(ctx, g):
        x, q = ctx.saved_tensors
        if ctx.needs_input_grad[0]:
            raise NotImplementedError("the derivative of zeta with respect to self (x) is not implemented, "
                                      "as in PyTorch")
        return None, g * -x * Zeta.apply(x + 1.0, q)
