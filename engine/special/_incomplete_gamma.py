"""The regularised incomplete gamma functions P(a, x) (``gammainc``) and Q(a, x) = 1 - P (``gammaincc``).

A power series for x < a + 1 and a continued fraction (modified Lentz) beyond, in float64, with PyTorch's
edge values. The gradient flows to x only (dP/dx = x^(a-1) e^-x / Gamma(a)); PyTorch has none for a either.
"""

from __future__ import annotations

from engine.autograd.function import Function
from engine.backend import fp_ignore, fp_restore
from engine.dtypes import float64
from engine.ops.special import lgamma_array
from engine.tensor import wrap

_MAX_TERMS = 2000


def _lower_series(a, x, xp):
    """P(a, x) = e^-x x^a / Gamma(a + 1) * sum_n x^n / ((a + 1) ... (a + n)), for x < a + 1."""
    term = xp.ones_like(x)
    total = term.copy()
    for n in range(1, _MAX_TERMS):
        term = term * x / (a + n)
        total = total + term
        if bool((xp.abs(term) <= 1e-17 * xp.abs(total)).all()):
            break
    return total * xp.exp(a * xp.log(x) - x - lgamma_array(a + 1.0, xp))


def _upper_fraction(a, x, xp):
    """Q(a, x) by the continued fraction of Gamma(a, x) = e^-x x^a h, for x >= a + 1."""
    tiny = 1e-300
    b = x + 1.0 - a
    c = xp.full_like(x, 1.0 / tiny)
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_TERMS):
        an = -i * (i - a)
        b = b + 2.0
        d = an * d + b
        d = xp.where(xp.abs(d) < tiny, tiny, d)
        c = b + an / c
        c = xp.where(xp.abs(c) < tiny, tiny, c)
        d = 1.0 / d
        delta = d * c
        h = h * delta
        if bool((xp.abs(delta - 1.0) < 1e-16).all()):
            break
    return h * xp.exp(a * xp.log(x) - x - lgamma_array(a, xp))


def regularized_gamma_array(a_data, x_data, upper: bool, xp):
    a, x = a_data.astype(float64.np), x_data.astype(float64.np)
    token = fp_ignore()
    try:
        inner = (a > 0) & (x > 0) & xp.isfinite(a) & xp.isfinite(x)
        series = inner & (x < a + 1.0)
        fraction = inner & ~series
        safe_a, safe_x = xp.where(inner, a, 1.0), xp.where(inner, x, 1.0)
        p = xp.where(series, _lower_series(xp.where(series, safe_a, 1.0), xp.where(series, safe_x, 0.5), xp), 0.0)
        q = xp.where(fraction, _upper_fraction(xp.where(fraction, safe_a, 1.0), xp.where(fraction, safe_x, 2.0),
                                               xp), 0.0)
        out_p = xp.where(series, p, 1.0 - q)
        # PyTorch's edges: P(0, x > 0) = 1, P(a, 0) = 0, P(a, inf) = 1, P(inf, x) = 0; negative or NaN -> NaN
        out_p = xp.where(~inner & (x == 0), 0.0, out_p)
        out_p = xp.where(~inner & (a == 0) & (x > 0), 1.0, out_p)
        out_p = xp.where(~inner & xp.isinf(x) & (x > 0) & (a >= 0) & ~xp.isinf(a), 1.0, out_p)
        out_p = xp.where(~inner & xp.isinf(a) & (a > 0) & xp.isfinite(x) & (x >= 0), 0.0, out_p)
        bad = (a < 0) | (x < 0) | xp.isnan(a) | xp.isnan(x) | (xp.isinf(a) & xp.isinf(x))
        out = xp.where(bad, xp.nan, 1.0 - out_p if upper else out_p)
        if upper:  # the complement from the fraction side keeps Q's small values exact
            out = xp.where(fraction & ~bad, q, out)
    finally:
        fp_restore(token)
    return out.astype(a_data.dtype, copy=False)


class RegularizedGamma(Function):
    """P(a, x), or Q(a, x) with ``upper``."""

    @staticmethod
    def forward(ctx, a, x, upper: bool):
        ctx.save_for_backward(a, x)
        ctx.upper = upper
        return wrap(regularized_gamma_array(a._data, x._data, upper, a._device.xp), a._device)

    @staticmethod
    def backward(ctx, g):
        a, x = ctx.saved_tensors
        if ctx.needs_input_grad and ctx.needs_input_grad[0]:
            name = "igammac" if ctx.upper else "igamma"
            raise NotImplementedError(f"the derivative for '{name}: input' is not implemented.")
        from engine.ops.special import lgamma

        density = ((a - 1) * x.log() - x - lgamma(a)).exp()
        return None, g * (-density if ctx.upper else density), None
