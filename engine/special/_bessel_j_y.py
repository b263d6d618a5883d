"""Bessel functions of the first and second kind, J0, J1, Y0, Y1, on the device array (float64).

The power series (Y with its logarithmic term) for |x| <= 14, where the alternating terms lose at most
~1e-11, and Hankel's asymptotic expansion beyond, whose error there is below 1e-12. J1 is odd, J0 even;
Y is NaN for x < 0 and -inf at 0, and all four are NaN at +-inf, as in PyTorch. PyTorch records no autograd graph for these.
"""

from __future__ import annotations

import math

from engine.backend import fp_ignore, fp_restore
from engine.dtypes import float64
from engine.tensor import wrap

_SWITCH = 14.0
_SERIES_TERMS = 60
_ASYMPTOTIC_TERMS = 16
_EULER = 0.57721566490153286061


def _series(x, nu: int, second: bool, xp):
    """J_nu(x), or Y_nu(x) with ``second``, by the power series (x > 0 for Y)."""
    half = x / 2.0
    q = -half * half
    term = xp.ones_like(x) if nu == 0 else half.copy()  # (-1)^k (x/2)^(2k+nu) / (k! (k+nu)!)
    j = term.copy()
    harmonic_k, harmonic_kn = 0.0, 1.0 if nu == 1 else 0.0  # H_k and H_(k+nu)
    weighted = term * (harmonic_k + harmonic_kn)
    for k in range(1, _SERIES_TERMS):
        term = term * q / (k * (k + nu))
        j = j + term
        harmonic_k += 1.0 / k
        harmonic_kn += 1.0 / (k + nu)
        weighted = weighted + term * (harmonic_k + harmonic_kn)
    if not second:
        return j
    log_term = (2.0 / math.pi) * (xp.log(half) + _EULER) * j
    if nu == 0:  # Y0 = 2/pi (ln(x/2) + gamma) J0 - 2/pi sum (-1)^k H_k (x/2)^2k / k!^2 (weighted holds 2 H_k)
        return log_term - weighted / math.pi
    # Y1 = -2/(pi x) + 2/pi (ln(x/2) + gamma) J1 - 1/pi sum (-1)^k (H_k + H_(k+1)) (x/2)^(2k+1) / (k! (k+1)!)
    return log_term - 2.0 / (math.pi * x) - weighted / math.pi


def _asymptotic(x, nu: int, second: bool, xp):
    """Hankel's expansion: sqrt(2 / (pi x)) (P cos chi - Q sin chi) for J, (P sin chi + Q cos chi) for Y."""
    mu = 4.0 * nu * nu
    p = xp.ones_like(x)
    q = xp.zeros_like(x)
    term = xp.ones_like(x)
    for k in range(1, 2 * _ASYMPTOTIC_TERMS):
        term = term * (mu - (2 * k - 1) ** 2) / (k * 8.0 * x)
        sign = -1.0 if (k // 2) % 2 else 1.0  # a_k enters P (k even) and Q (k odd) with alternating signs
        if k % 2:
            q = q + sign * term
        else:
            p = p + sign * term
    chi = x - (nu / 2.0 + 0.25) * math.pi
    scale = xp.sqrt(2.0 / (math.pi * x))
    if second:
        return scale * (p * xp.sin(chi) + q * xp.cos(chi))
    return scale * (p * xp.cos(chi) - q * xp.sin(chi))


def bessel_jy_array(data, nu: int, second: bool, xp):
    x = data.astype(float64.np)
    token = fp_ignore()
    try:
        ax = xp.abs(x)
        small = ax <= _SWITCH
        s = _series(xp.where(small, xp.where(ax == 0, 1.0, ax) if second else ax, 1.0), nu, second, xp)
        a = _asymptotic(xp.where(small, _SWITCH + 1.0, ax), nu, second, xp)
        out = xp.where(small, s, a)
        if second:
            out = xp.where(x == 0, -xp.inf, xp.where(x < 0, xp.nan, out))
        elif nu == 1:
            out = xp.where(x < 0, -out, out)
        out = xp.where(xp.isnan(x) | xp.isinf(x), xp.nan, out)  # PyTorch's value at +-inf, too
    finally:
        fp_restore(token)
    return out.astype(data.dtype, copy=False)


def bessel_jy(x, nu: int, second: bool):
    """J_nu(x) (or Y_nu(x)) of a floating tensor, as a tensor that does not require grad."""
    return wrap(bessel_jy_array(x._data, nu, second, x._device.xp), x._device)
