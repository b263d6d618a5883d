"""Special functions with autograd: ``lgamma``, ``digamma`` and ``polygamma(1, x)`` (trigamma).

They are computed on the device array (NumPy or CuPy) with series that reach ~1e-14 in float64:
a Lanczos approximation (g=7, 9 terms) for log|Gamma|, and upward recurrence to x >= 10 followed by
the asymptotic (Stirling) series for digamma and trigamma; negative arguments use the reflection
formulas. The backward of lgamma is digamma, of digamma is trigamma.
"""

from __future__ import annotations

import math

from engine.autograd.function import Op
from engine.backend import fp_ignore, fp_restore
from engine.dtypes import FLOAT, float64
from engine.ops.promotion import to_float

_LANCZOS_G = 7.0
_LANCZOS = (0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
            -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
            1.5056327351493116e-7)
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _lgamma_positive(x, xp):
    """log Gamma(x) for x >= 0.5 (Lanczos)."""
    z = x - 1.0
    a = xp.full_like(z, _LANCZOS[0])
    for i in range(1, len(_LANCZOS)):
        a = a + _LANCZOS[i] / (z + i)
    t = z + _LANCZOS_G + 0.5
    return _HALF_LOG_2PI + (z + 0.5) * xp.log(t) - t + xp.log(a)


def lgamma_array(data, xp):
    x = data.astype(float64.np)
    token = fp_ignore()
    try:
        small = x < 0.5
        pos = _lgamma_positive(xp.where(small, 1.0 - x, x), xp)
        reflected = math.log(math.pi) - xp.log(xp.abs(xp.sin(math.pi * x))) - pos
        out = xp.where(small, reflected, pos)
        out = xp.where((x <= 0) & (x == xp.floor(x)), xp.inf, out)  # poles
        out = xp.where(xp.isposinf(x), xp.inf, out)
    finally:
        fp_restore(token)
    return out.astype(data.dtype, copy=False)


def _shifted(x, xp, term, limit: float = 10.0):
    """Sum of ``term(x + k)`` for k = 0.. while x + k < limit, and the shifted x."""
    acc = xp.zeros_like(x)
    x = x.copy()
    while True:
        mask = x < limit
        if not bool(mask.any()):
            return acc, x
        acc = acc + xp.where(mask, term(xp.where(mask, x, 1.0)), 0.0)
        x = xp.where(mask, x + 1.0, x)


def digamma_array(data, xp):
    x = data.astype(float64.np)
    token = fp_ignore()
    try:
        neg = x <= 0
        y = xp.where(neg, 1.0 - x, x)
        y = xp.where(xp.isfinite(y), y, 1e300)
        acc, y = _shifted(y, xp, lambda v: -1.0 / v)
        r = 1.0 / (y * y)
        series = xp.log(y) - 0.5 / y - r * (1 / 12 - r * (1 / 120 - r * (1 / 252 - r * (1 / 240 - r / 132))))
        out = acc + series
        out = xp.where(neg, out - math.pi / xp.tan(math.pi * x), out)
        out = xp.where(neg & (x == xp.floor(x)), xp.nan, out)
        out = xp.where(x == 0, -xp.inf, out)  # NOTE: PyTorch returns -inf at 0, nan at negative integers
        out = xp.where(xp.isposinf(x), xp.inf, out)
        out = xp.where(xp.isnan(x), xp.nan, out)
    finally:
        fp_restore(token)
    return out.astype(data.dtype, copy=False)


def trigamma_array(data, xp):
    x = data.astype(float64.np)
    token = fp_ignore()
    try:
        neg = x <= 0
        y = xp.where(neg, 1.0 - x, x)
        y = xp.where(xp.isfinite(y), y, 1e300)
        acc, y = _shifted(y, xp, lambda v: 1.0 / (v * v))
        r = 1.0 / (y * y)
        series = 1.0 / y + 0.5 * r + (r / y) * (1 / 6 - r * (1 / 30 - r * (1 / 42 - r * (1 / 30 - r * 5 / 66))))
        out = acc + series
        out = xp.where(neg, -out + (math.pi / xp.sin(math.pi * x)) ** 2, out)
        out = xp.where(neg & (x == xp.floor(x)), xp.inf, out)
        out = xp.where(xp.isnan(x), xp.nan, out)
    finally:
        fp_restore(token)
    return out.astype(data.dtype, copy=False)


class Lgamma(Op):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return lgamma_array(x._data, x._device.xp)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * digamma(x)


class Digamma(Op):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return digamma_array(x._data, x._device.xp)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * Trigamma.apply(x)


class Trigamma(Op):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return trigamma_array(x._data, x._device.xp)

    @staticmethod
    def backward(ctx, g):
        raise RuntimeError("polygamma(1, x) is not differentiable again in this engine (polygamma(2, x) missing)")


def _float(input):
    return input if input._dtype.category == FLOAT else to_float(input)


def lgamma(input):
    """log|Gamma(input)|, elementwise (as ``torch.lgamma``)."""
    return Lgamma.apply(_float(input))


def digamma(input):
    """The logarithmic derivative of Gamma, elementwise (as ``torch.digamma``)."""
    return Digamma.apply(_float(input))


def polygamma(n: int, input):
    """The n-th derivative of digamma; n = 0 (digamma) and n = 1 (trigamma) are supported."""
    if n == 0:
        return digamma(input)
    if n == 1:
        return Trigamma.apply(_float(input))
    raise NotImplementedError(f"polygamma is implemented for n = 0 and n = 1, got n = {n}")


def mvlgamma(input, p: int):
    """The multivariate log-gamma function of dimension ``p`` (as ``torch.mvlgamma``)."""
    from engine.creation import arange

    if p < 1:
        raise RuntimeError("p has to be greater than or equal to 1")
    offsets = arange(p, dtype=input.dtype, device=input.device) * -0.5
    const = p * (p - 1) / 4 * math.log(math.pi)
    return lgamma(input.unsqueeze(-1) + offsets).sum(-1) + const


def erfinv_array(data, xp):
    """The inverse error function: Giles' single-precision approximation, then two Newton steps on erf."""
    from engine.ops.unary import erf_array

    x = data.astype(float64.np)
    token = fp_ignore()
    try:
        w = -xp.log((1.0 - x) * (1.0 + x))
        ws = w - 2.5
        p_small = 2.81022636e-08
        for c in (3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
                  -0.00417768164, 0.246640727, 1.50140941):
            p_small = c + p_small * ws
        wl = xp.sqrt(xp.where(w >= 5.0, w, 5.0)) - 3.0
        p_large = -0.000200214257
        for c in (0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613, 0.00943887047,
                  1.00167406, 2.83297682):
            p_large = c + p_large * wl
        y = xp.where(w < 5.0, p_small, p_large) * x
        for _ in range(2):  # Newton on erf(y) = x
            err = erf_array(y, xp) - x
            y = y - err / (1.1283791670955126 * xp.exp(-y * y))
        y = xp.where(x == 1.0, xp.inf, xp.where(x == -1.0, -xp.inf, y))
        y = xp.where(xp.abs(x) > 1.0, xp.nan, y)
    finally:
        fp_restore(token)
    return y.astype(data.dtype, copy=False)


class Erfinv(Op):
    _saves_output = True

    @staticmethod
    def forward(ctx, x):
        return erfinv_array(x._data, x._device.xp)

    @staticmethod
    def backward(ctx, g):
        from engine.ops.unary import exp

        out = ctx.output
        return g * (0.886226925452758 * exp(out * out))  # sqrt(pi) / 2 * exp(erfinv(x)^2)


def erfinv(input):
    """The inverse of ``erf`` on (-1, 1), elementwise (as ``torch.erfinv``)."""
    return Erfinv.apply(_float(input))
