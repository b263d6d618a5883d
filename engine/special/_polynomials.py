"""Orthogonal polynomials of torch.special (Chebyshev T/U/V/W and their shifted forms, Hermite H/He, Laguerre L,
Legendre P) on the device array, with PyTorch's conventions.

The degree ``n`` is truncated to an integer (negative degrees give 0) and each polynomial is evaluated by its
three-term recurrence up to the largest degree asked for, one vector step per degree; the endpoint values are
exact as in PyTorch, which records no autograd graph for them (neither does the engine).
"""

from __future__ import annotations

from engine.backend import fp_ignore, fp_restore
from engine.dtypes import float64
from engine.tensor import wrap


def _recurrence(x, n, first, step, xp):
    """P_n(x) for P_0 = 1, P_1 = first(x) and P_{k+1} = step(k, x, P_k, P_{k-1}), selected per element by n."""
    out = xp.where(n == 0, 1.0, 0.0)
    top = int(n.max()) if n.size else 0
    if top >= 1:
        p, q = xp.ones_like(x), first(x)
        out = xp.where(n == 1, q, out)
        for k in range(1, top):
            p, q = q, step(k, x, q, p)
            out = xp.where(n == k + 1, q, out)
    return out


def _chebyshev(x, n, first, xp):
    return _recurrence(x, n, first, lambda k, x, q, p: (x + x) * q - p, xp)


def _t(x, n, xp):
    out = _chebyshev(x, n, lambda x: x, xp)
    edge = xp.where((x > 0) | (n % 2 == 0), 1.0, -1.0)
    return xp.where(xp.abs(x) == 1, edge, out)


def _u(x, n, xp):
    out = _chebyshev(x, n, lambda x: x + x, xp)
    edge = xp.where((x > 0) | (n % 2 == 0), n + 1.0, -(n + 1.0))
    return xp.where(xp.abs(x) == 1, edge, out)


def _v(x, n, xp):
    out = _chebyshev(x, n, lambda x: x + x - 1, xp)
    odd_sign = xp.where(n % 2 == 0, 2.0 * n + 1, -(2.0 * n + 1))
    return xp.where(x == 1, 1.0, xp.where(x == -1, odd_sign, out))


def _w(x, n, xp):
    out = _chebyshev(x, n, lambda x: x + x + 1, xp)
    return xp.where(x == 1, 2.0 * n + 1, xp.where(x == -1, xp.where(n % 2 == 0, 1.0, -1.0), out))


def _hermite_h(x, n, xp):
    return _recurrence(x, n, lambda x: x + x, lambda k, x, q, p: (x + x) * q - (2.0 * k) * p, xp)


def _hermite_he(x, n, xp):
    return _recurrence(x, n, lambda x: x, lambda k, x, q, p: x * q - k * p, xp)


def _laguerre_l(x, n, xp):
    out = _recurrence(x, n, lambda x: 1 - x, lambda k, x, q, p: ((2.0 * k + 1 - x) * q - k * p) / (k + 1), xp)
    return xp.where(x == 0, 1.0, out)


def _legendre_p(x, n, xp):
    out = _recurrence(x, n, lambda x: x, lambda k, x, q, p: ((2.0 * k + 1) * x * q - k * p) / (k + 1), xp)
    edge = xp.where((x > 0) | (n % 2 == 0), 1.0, -1.0)
    return xp.where(xp.abs(x) == 1, edge, out)


def _shifted(kernel):
    return lambda x, n, xp: kernel(x + x - 1, n, xp)


KERNELS = {
    "chebyshev_polynomial_t": _t, "chebyshev_polynomial_u": _u, "chebyshev_polynomial_v": _v,
    "chebyshev_polynomial_w": _w, "shifted_chebyshev_polynomial_t": _shifted(_t),
    "shifted_chebyshev_polynomial_u": _shifted(_u), "shifted_chebyshev_polynomial_v": _shifted(_v),
    "shifted_chebyshev_polynomial_w": _shifted(_w), "hermite_polynomial_h": _hermite_h,
    "hermite_polynomial_he": _hermite_he, "laguerre_polynomial_l": _laguerre_l, "legendre_polynomial_p": _legendre_p,
}


def polynomial(name: str, x, n):
    """``name``'s polynomial of degree ``n`` at ``x``: broadcast floating tensors of one dtype in, a tensor that
    does not require grad out (PyTorch records no graph for these)."""
    xp = x._device.xp
    token = fp_ignore()
    try:
        na = xp.trunc(n._data.astype(float64.np))
        na = xp.where(xp.isnan(na) | (na < 0), -1.0, na)  # a NaN degree casts to a negative integer in PyTorch
        out = xp.where(na < 0, 0.0, KERNELS[name](x._data.astype(float64.np), na, xp))
    finally:
        fp_restore(token)
    return wrap(out.astype(x._data.dtype, copy=False), x._device)
