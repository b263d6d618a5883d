"""Modified Bessel functions I0, I1 and their exponentially scaled forms, on the device array.

A power series for |x| <= 30 (all terms positive, 90 of them reach float64 precision there) and the
large-argument asymptotic series of ``exp(-|x|) I_nu(|x|)`` beyond. I1 is odd, I0 even.
"""

from __future__ import annotations

import math

from engine.backend import fp_ignore, fp_restore
from engine.dtypes import float64

_SERIES_LIMIT = 30.0
_TERMS = 90


def _series(ax, nu: int, xp):
    """I_nu(ax) = sum_k (ax/2)^(2k+nu) / (k! (k+nu)!) for ax <= 30."""
    half = ax / 2.0
    q = half * half
    term = xp.ones_like(ax) if nu == 0 else half.copy()
    total = term.copy()
    for k in range(1, _TERMS):
        term = term * q / (k * (k + nu))
        total = total + term
    return total


def _asymptotic_scaled(ax, nu: int, xp):
    """exp(-ax) I_nu(ax) ~ 1/sqrt(2 pi ax) sum_k (-1)^k a_k(nu) / ax^k for large ax."""
    mu = 4.0 * nu * nu
    term = xp.ones_like(ax)
    total = term.copy()
    for k in range(1, 12):
        term = -term * (mu - (2 * k - 1) ** 2) / (k * 8.0 * ax)
        total = total + term
    return total / xp.sqrt(2.0 * math.pi * ax)


def bessel_array(data, nu: int, scaled: bool, xp):
    x = data.astype(float64.np)
    token = fp_ignore()
    try:
        ax = xp.abs(x)
        small = ax <= _SERIES_LIMIT
        s = _series(xp.where(small, ax, 0.0), nu, xp)
        a = _asymptotic_scaled(xp.where(small, _SERIES_LIMIT + 1.0, ax), nu, xp)
        out = xp.where(small, s * xp.exp(-ax), a) if scaled else xp.where(small, s, a * xp.exp(ax))
        if nu == 1:
            out = xp.where(x < 0, -out, out)
        out = xp.where(xp.isnan(x), xp.nan, out)
    finally:
        fp_restore(token)
    return out.astype(data.dtype, copy=False)
