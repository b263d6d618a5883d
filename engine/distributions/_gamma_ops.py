"""Gamma sampling and its reparameterised (implicit) gradient, on NumPy or CuPy arrays.

A standard Gamma(alpha) draw x has the pathwise derivative dx/dalpha = -(dF(x; alpha)/dalpha) / f(x; alpha)
(F the cdf, f the density). It is computed here to float64 accuracy: for x < alpha + 1 from the series of the
regularised lower incomplete gamma function (all terms of one sign), otherwise from the continued fraction of
the upper one, differentiated in alpha by a central difference. Sampling is Marsaglia and Tsang's method with
the alpha < 1 boost, drawing from an engine Generator so seeds are honoured on every device.
"""

from __future__ import annotations

from engine.autograd.function import Function
from engine.backend import fp_ignore, fp_restore
from engine.ops.special import digamma_array
from engine.tensor import wrap


def standard_gamma_array(alpha, generator, xp):
    """One Gamma(alpha, 1) draw per element of the float64 array ``alpha``."""
    shape = alpha.shape
    a = alpha.reshape(-1)
    boost = a < 1
    d = xp.where(boost, a + 1.0, a) - 1.0 / 3.0
    c = 1.0 / xp.sqrt(9.0 * d)
    out = xp.zeros_like(a)
    todo = xp.arange(a.size)
    while todo.size:
        n = todo.size
        z = generator.normal_array((n,), xp.float64)
        u = generator.uniform_array((n,), xp.float64)
        dt, ct = d[todo], c[todo]
        v = (1.0 + ct * z) ** 3
        token = fp_ignore()
        try:
            ok = (v > 0) & (xp.log(u) < 0.5 * z * z + dt - dt * v + dt * xp.log(xp.where(v > 0, v, 1.0)))
        finally:
            fp_restore(token)
        out[todo[ok]] = (dt * v)[ok]
        todo = todo[~ok]
    if bool(boost.any()):
        u = generator.uniform_array((int(boost.sum()),), xp.float64)
        out[boost] = out[boost] * (1.0 - u) ** (1.0 / a[boost])  # 1 - u in (0, 1]
    tiny = xp.finfo(xp.float64).tiny
    return xp.maximum(out, tiny).reshape(shape)


def standard_gamma_grad_array(alpha, x, xp):
    """dx/dalpha for standard Gamma draws ``x`` (float64 arrays of one shape)."""
    a = alpha.astype(xp.float64)
    x = x.astype(xp.float64)
    out = xp.zeros_like(a)
    token = fp_ignore()
    try:
        low = x < a + 1.0
        if bool(low.any()):
            al, xl = a[low], x[low]
            log_x = xp.log(xl)
            r = xl / al
            psi = digamma_array(al, xp) + 1.0 / al
            total = r * (psi - log_x)
            for n in range(1, 5000):
                r = r * xl / (al + n)
                psi = psi + 1.0 / (al + n)
                term = r * (psi - log_x)
                total = total + term
                if bool((xp.abs(term) <= 1e-17 * xp.abs(total)).all()):
                    break
            out[low] = total
        high = ~low
        if bool(high.any()):
            ah, xh = a[high], x[high]
            h = 1e-6 * xp.maximum(ah, 1.0)
            ratio = xh * _upper_cf(ah, xh, xp)
            derivative = xh * (_upper_cf(ah + h, xh, xp) - _upper_cf(ah - h, xh, xp)) / (2 * h)
            out[high] = derivative + ratio * (xp.log(xh) - digamma_array(ah, xp))
    finally:
        fp_restore(token)
    return out


def _upper_cf(a, x, xp):
    """The continued fraction h with Gamma(a, x) = exp(-x) x^a h (modified Lentz; x >= a + 1)."""
    fpmin = 1e-300
    b = x + 1.0 - a
    c = xp.full_like(x, 1.0 / fpmin)
    d = 1.0 / b
    h = d
    for i in range(1, 10000):
        an = -i * (i - a)
        b = b + 2.0
        d = an * d + b
        d = xp.where(xp.abs(d) < fpmin, fpmin, d)
        c = b + an / c
        c = xp.where(xp.abs(c) < fpmin, fpmin, c)
        d = 1.0 / d
        delta = d * c
        h = h * delta
        if bool((xp.abs(delta - 1.0) < 1e-16).all()):
            break
    return h


class StandardGamma(Function):
    """Draw Gamma(concentration, 1) samples; backward is the implicit reparameterisation gradient."""

    @staticmethod
    def forward(ctx, concentration, generator):
        xp = concentration._device.xp
        data = concentration._data
        x = standard_gamma_array(data.astype(xp.float64), generator, xp)
        ctx.alpha, ctx.x = data, x
        return wrap(x.astype(data.dtype), concentration._device)

    @staticmethod
    def backward(ctx, g):
        xp = g._device.xp
        grad = standard_gamma_grad_array(ctx.alpha, ctx.x, xp).astype(ctx.alpha.dtype)
        return g * wrap(grad, g._device), None


