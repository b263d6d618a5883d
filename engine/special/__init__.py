"""``engine.special`` (``torch.special``): special functions with PyTorch's names, values and gradients.

Kernels live in ``engine.ops.special`` (lgamma, digamma, trigamma, erfinv) and ``engine.special._ops``
(erfc, erfcx, modified Bessel I0/I1, xlogy, Hurwitz zeta); the rest are compositions of engine ops, so
autograd follows from them.
"""

from __future__ import annotations

import math

from engine.ops import special as _kernels
from engine.ops.activation import log_softmax as _log_softmax
from engine.ops.activation import softmax as _softmax
from engine.ops.arithmetic import where as _where
from engine.ops.promotion import to_float as _to_float
from engine.special import _ops
from engine.special._bessel_j_y import bessel_jy as _bessel_jy
from engine.special._incomplete_gamma import RegularizedGamma as _RegularizedGamma
from engine.special._polynomials import polynomial as _polynomial
from engine.tensor import Tensor

_SQRT1_2 = 1.0 / math.sqrt(2.0)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)

__all__ = [
    "chebyshev_polynomial_t",
    "chebyshev_polynomial_u",
    "chebyshev_polynomial_v",
    "chebyshev_polynomial_w",
    "digamma",
    "entr",
    "erf",
    "erfc",
    "erfcx",
    "erfinv",
    "exp2",
    "expit",
    "expm1",
    "gammainc",
    "gammaincc",
    "gammaln",
    "hermite_polynomial_h",
    "hermite_polynomial_he",
    "i0",
    "i0e",
    "i1",
    "i1e",
    "laguerre_polynomial_l",
    "legendre_polynomial_p",
    "log1p",
    "log_ndtr",
    "log_softmax",
    "logit",
    "logsumexp",
    "modified_bessel_i0",
    "modified_bessel_i1",
    "multigammaln",
    "ndtr",
    "ndtri",
    "polygamma",
    "psi",
    "round",
    "shifted_chebyshev_polynomial_t",
    "shifted_chebyshev_polynomial_u",
    "shifted_chebyshev_polynomial_v",
    "shifted_chebyshev_polynomial_w",
    "sinc",
    "softmax",
    "spherical_bessel_j0",
    "xlog1py",
    "xlogy",
    "zeta",
]


def _float(x):
    from engine.creation import as_tensor

    x = x if isinstance(x, Tensor) else as_tensor(x)
    return x if x.is_floating_point() else _to_float(x)


def _pair(x, y):
    """Two operands (tensors or numbers) as floating tensors of their promoted dtype and broadcast shape."""
    from engine.ops.promotion import result_type
    from engine.ops.shape import broadcast_tensors

    like = x if isinstance(x, Tensor) else y
    from engine.creation import as_tensor

    xt = x if isinstance(x, Tensor) else as_tensor(x, device=like.device)
    yt = y if isinstance(y, Tensor) else as_tensor(y, device=like.device)
    dtype = result_type(x, y)
    if not dtype.is_floating_point:
        from engine.dtypes import get_default_dtype

        dtype = get_default_dtype()
    return broadcast_tensors(xt.to(dtype), yt.to(dtype))


def erf(input):
    """The error function."""
    from engine.ops.unary import erf as _erf

    return _erf(input)


def erfc(input):
    """The complementary error function ``1 - erf(x)``, accurate in the tail."""
    return _ops.Erfc.apply(_float(input))


def erfcx(input):
    """The scaled complementary error function ``exp(x^2) erfc(x)``."""
    return _ops.Erfcx.apply(_float(input))


def erfinv(input):
    return _kernels.erfinv(input)


def expit(input):
    """The logistic sigmoid."""
    return _float(input).sigmoid()


def logit(input, eps=None):
    """``log(p / (1 - p))``; with ``eps`` the input is clamped to ``[eps, 1 - eps]`` first."""
    x = _float(input)
    if eps is not None:
        x = x.clamp(eps, 1.0 - eps)
    return (x / (1.0 - x)).log()


def xlogy(input, other):
    """``input * log(other)``, and 0 where ``input == 0`` (unless ``other`` is nan)."""
    x, y = _pair(input, other)
    return _ops.XLogY.apply(x, y, False)


def xlog1py(input, other):
    """``input * log1p(other)``, and 0 where ``input == 0`` (unless ``other`` is nan)."""
    x, y = _pair(input, other)
    return _ops.XLogY.apply(x, y, True)


def gammaln(input):
    return _kernels.lgamma(input)


def digamma(input):
    return _kernels.digamma(input)


psi = digamma


def polygamma(n: int, input):
    return _kernels.polygamma(n, input)


def multigammaln(input, p: int):
    return _kernels.mvlgamma(_float(input), p)


def i0(input):
    """The modified Bessel function of the first kind, order 0."""
    return _ops.I0.apply(_float(input))


def i0e(input):
    """``exp(-|x|) * i0(x)``."""
    return _ops.I0e.apply(_float(input))


def i1(input):
    """The modified Bessel function of the first kind, order 1."""
    return _ops.I1.apply(_float(input))


def i1e(input):
    """``exp(-|x|) * i1(x)``."""
    return _ops.I1e.apply(_float(input))


def ndtr(input):
    """The standard normal CDF."""
    return 0.5 * erfc(-_float(input) * _SQRT1_2)


def ndtri(input):
    """The standard normal quantile (inverse of ``ndtr``) on (0, 1)."""
    return math.sqrt(2.0) * _kernels.erfinv(2.0 * _float(input) - 1.0)


def log_ndtr(input):
    """``log(ndtr(x))``, accurate for very negative x (via ``erfcx``)."""
    x = _float(input)
    low = x < -1.0
    xl = _where(low, x, -1.0)
    xh = _where(low, 0.0, x)
    tail = (0.5 * erfcx(-xl * _SQRT1_2)).log() - 0.5 * xl * xl
    body = (-0.5 * erfc(xh * _SQRT1_2)).log1p()
    return _where(low, tail, body)


def logsumexp(input, dim, keepdim: bool = False):
    return input.logsumexp(dim, keepdim=keepdim)


def softmax(input, dim, *, dtype=None):
    return _softmax(input if dtype is None else input.to(dtype), dim)


def log_softmax(input, dim, *, dtype=None):
    return _log_softmax(input if dtype is None else input.to(dtype), dim)


def sinc(input):
    """The normalized sinc ``sin(pi x) / (pi x)``, 1 at 0."""
    x = _float(input)
    zero = x == 0
    px = math.pi * _where(zero, 1.0, x)
    return _where(zero, 1.0, px.sin() / px)


def spherical_bessel_j0(input):
    """The spherical Bessel function of the first kind, order 0: ``sin(x) / x``."""
    x = _float(input)
    zero = x == 0
    xs = _where(zero, 1.0, x)
    return _where(zero, 1.0, xs.sin() / xs)


def entr(input):
    """Elementwise entropy ``-x log x``: 0 at 0, -inf for negative x."""
    x = _float(input)
    pos = x > 0
    xs = _where(pos, x, 1.0)
    return _where(pos, -xs * xs.log(), _where(x == 0, 0.0, -math.inf))


def round(input, decimals: int = 0):
    return input.round(decimals=decimals) if decimals else input.round()


def zeta(input, other):
    """The Hurwitz zeta function ``sum_k (other + k) ** -input`` (differentiable in ``other``)."""
    x, q = _pair(input, other)
    return _ops.Zeta.apply(x, q)


def exp2(input):
    return 2.0 ** _float(input)


def expm1(input):
    return _float(input).expm1()


def log1p(input):
    return _float(input).log1p()



def modified_bessel_i0(input):
    """The modified Bessel function of the first kind, order 0 (``i0``)."""
    return i0(input)


def modified_bessel_i1(input):
    """The modified Bessel function of the first kind, order 1 (``i1``)."""
    return i1(input)


def gammainc(input, other):
    """The regularised lower incomplete gamma function P(input, other); differentiable in ``other``."""
    a, x = _pair(input, other)
    return _RegularizedGamma.apply(a, x, False)


def gammaincc(input, other):
    """The regularised upper incomplete gamma function Q(input, other) = 1 - P(input, other)."""
    a, x = _pair(input, other)
    return _RegularizedGamma.apply(a, x, True)


def chebyshev_polynomial_t(input, n):
    """The Chebyshev polynomial of the first kind T_n(input)."""
    return _polynomial("chebyshev_polynomial_t", *_pair(input, n))


def chebyshev_polynomial_u(input, n):
    """The Chebyshev polynomial of the second kind U_n(input)."""
    return _polynomial("chebyshev_polynomial_u", *_pair(input, n))


def chebyshev_polynomial_v(input, n):
    """The Chebyshev polynomial of the third kind V_n(input)."""
    return _polynomial("chebyshev_polynomial_v", *_pair(input, n))


def chebyshev_polynomial_w(input, n):
    """The Chebyshev polynomial of the fourth kind W_n(input)."""
    return _polynomial("chebyshev_polynomial_w", *_pair(input, n))


def shifted_chebyshev_polynomial_t(input, n):
    """T*_n(input) = T_n(2 input - 1), orthogonal on [0, 1]."""
    return _polynomial("shifted_chebyshev_polynomial_t", *_pair(input, n))


def shifted_chebyshev_polynomial_u(input, n):
    """U*_n(input) = U_n(2 input - 1)."""
    return _polynomial("shifted_chebyshev_polynomial_u", *_pair(input, n))


def shifted_chebyshev_polynomial_v(input, n):
    """V*_n(input) = V_n(2 input - 1)."""
    return _polynomial("shifted_chebyshev_polynomial_v", *_pair(input, n))


def shifted_chebyshev_polynomial_w(input, n):
    """W*_n(input) = W_n(2 input - 1)."""
    return _polynomial("shifted_chebyshev_polynomial_w", *_pair(input, n))


def hermite_polynomial_h(input, n):
    """The physicists' Hermite polynomial H_n(input)."""
    return _polynomial("hermite_polynomial_h", *_pair(input, n))


def hermite_polynomial_he(input, n):
    """The probabilists' Hermite polynomial He_n(input)."""
    return _polynomial("hermite_polynomial_he", *_pair(input, n))


def laguerre_polynomial_l(input, n):
    """The Laguerre polynomial L_n(input)."""
    return _polynomial("laguerre_polynomial_l", *_pair(input, n))


def legendre_polynomial_p(input, n):
    """The Legendre polynomial P_n(input)."""
    return _polynomial("legendre_polynomial_p", *_pair(input, n))


def bessel_j0(input):
    """The Bessel function of the first kind, order 0."""
    return _bessel_jy(_float(input), 0, False)


def bessel_j1(input):
    """The Bessel function of the first kind, order 1."""
    return _bessel_jy(_float(input), 1, False)


def bessel_y0(input):
    """The Bessel function of the second kind, order 0 (NaN for input < 0)."""
    return _bessel_jy(_float(input), 0, True)


def bessel_y1(input):
    """The Bessel function of the second kind, order 1 (NaN for input < 0)."""
    return _bessel_jy(_float(input), 1, True)
