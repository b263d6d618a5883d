"""Fused CUDA kernels for hot eager ops (softmax, log_softmax, layer norm, GELU, SiLU, the Adam update).

Each is CuPy ``ElementwiseKernel`` / ``ReductionKernel`` source: one kernel where the NumPy path runs several
array operations (and allocates their temporaries). The ops in ``engine/ops`` call these when their input lives
on a CUDA device and is float32/float64 (``fusable``); the NumPy path stays the reference, and the tests run the
very same kernel source through tests/fake_cupy's translator in CI. Kernels are built once per array module.
"""

from __future__ import annotations

import functools

import numpy as np


def fusable(data) -> bool:
    """True for a CuPy float32/float64 array (the dtypes these kernels are written for)."""
    return not isinstance(data, np.ndarray | np.generic) and data.dtype in (np.float32, np.float64)


def _xp(data):
    from engine.backend import array_module_of

    return array_module_of(data)


# NOTE: counter-based random numbers (as PyTorch's Philox): element i of a draw is a hash of (key, offset + i),
# so a generator's whole state is (seed, offset) and any draw can be replayed or skipped without running it.
_HASH = ("unsigned long long z = key + (offset + (unsigned long long)i) * 0x9E3779B97F4A7C15ull; "
         "z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull; z = (z ^ (z >> 27)) * 0x94D049BB133111EBull; "
         "z = z ^ (z >> 31); ")
_U32 = "float u = (float)(z >> 40) * 5.9604644775390625e-08f; "  # 24 random bits: [0, 1) in float32
_U64 = "double u = (double)(z >> 11) * 1.1102230246251565e-16; "  # 53 random bits: [0, 1) in float64
_SECOND = ("z = key + (offset + (unsigned long long)i + n) * 0x9E3779B97F4A7C15ull; "
           "z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull; z = (z ^ (z >> 27)) * 0x94D049BB133111EBull; "
           "z = z ^ (z >> 31); ")


def splitmix64(seed: int) -> int:
    """The generator key of a seed (one splitmix64 step): unrelated seeds give unrelated streams."""
    z = (seed + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


@functools.cache
def _kernels(xp) -> dict:
    ek, rk = xp.ElementwiseKernel, xp.ReductionKernel
    seeds = "uint64 key, uint64 offset"
    return {
        "uniform32": ek(seeds, "float32 r", _HASH + _U32 + "r = u", "kiln_uniform32"),
        "uniform64": ek(seeds, "float64 r", _HASH + _U64 + "r = u", "kiln_uniform64"),
        # Box-Muller on counters i and i + n: u1 in (0, 1] so log() stays finite
        "normal32": ek(seeds + ", uint64 n", "float32 r",
                       _HASH + _U32 + "float u1 = 1.0f - u; " + _SECOND + "u = (float)(z >> 40) * 5.9604644775390625e-08f; "
                       "r = sqrtf(-2.0f * logf(u1)) * cosf(6.283185307179586f * u)", "kiln_normal32"),
        "normal64": ek(seeds + ", uint64 n", "float64 r",
                       _HASH + _U64 + "double u1 = 1.0 - u; " + _SECOND + "u = (double)(z >> 11) * 1.1102230246251565e-16; "
                       "r = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u)", "kiln_normal64"),
        "randint": ek(seeds + ", int64 low, uint64 span", "int64 r",
                      _HASH + "r = low + (long long)(z % span)", "kiln_randint"),
        "dropout32": ek("T x, " + seeds + ", float32 p, float64 scale", "T y, T mask",
                        _HASH + _U32 + "mask = u >= p ? (T)scale : (T)0; y = x * mask", "kiln_dropout32"),
        "dropout64": ek("T x, " + seeds + ", float64 p, float64 scale", "T y, T mask",
                        _HASH + _U64 + "mask = u >= p ? (T)scale : (T)0; y = x * mask", "kiln_dropout64"),
        "sumexp": rk("T x, T m", "T y", "exp(x - m)", "a + b", "y = a", "0", "kiln_sumexp"),
        "logsumexp": rk("T x, T m", "T y", "exp(x - m)", "a + b", "y = log(a)", "0", "kiln_logsumexp"),
        "dot": rk("T g, T y", "T s", "g * y", "a + b", "s = a", "0", "kiln_dot"),
        "meandot": rk("T g, T y", "T s", "g * y", "a + b", "s = a / (_in_ind.size() / _out_ind.size())", "0",
                      "kiln_meandot"),
        "meansq": rk("T x", "T y", "x * x", "a + b", "y = a / (_in_ind.size() / _out_ind.size())", "0",
                     "kiln_meansq"),
        "scale": ek("T x, T r", "T y", "y = x * r", "kiln_scale"),
        "rms_norm_bwd": ek("T g, T x, T rstd, T mgx", "T dx", "dx = rstd * (g - rstd * rstd * x * mgx)",
                           "kiln_rms_norm_bwd"),
        "var": rk("T x, T mean", "T var", "(x - mean) * (x - mean)", "a + b",
                  "var = a / (_in_ind.size() / _out_ind.size())", "0", "kiln_var"),
        "softmax": ek("T x, T m, T s", "T y", "y = exp(x - m) / s", "kiln_softmax"),
        "softmax_bwd": ek("T g, T y, T s", "T dx", "dx = y * (g - s)", "kiln_softmax_bwd"),
        "log_softmax": ek("T x, T m, T l", "T y", "y = x - m - l", "kiln_log_softmax"),
        "log_softmax_bwd": ek("T g, T y, T s", "T dx", "dx = g - exp(y) * s", "kiln_log_softmax_bwd"),
        "rstd": ek("T var, float64 eps", "T rstd", "rstd = (T)(1.0 / sqrt((double)var + eps))", "kiln_rstd"),
        "standardize": ek("T x, T mean, T rstd", "T y", "y = (x - mean) * rstd", "kiln_standardize"),
        "standardize_bwd": ek("T g, T xhat, T rstd, T mg, T mgx", "T dx", "dx = rstd * (g - mg - xhat * mgx)",
                              "kiln_standardize_bwd"),
        "gelu": ek("T x", "T y", "y = (T)0.5 * x * ((T)1 + erf(x * (T)0.7071067811865476))", "kiln_gelu"),
        "gelu_bwd": ek("T g, T x", "T dx",
                       "T cdf = (T)0.5 * ((T)1 + erf(x * (T)0.7071067811865476)); "
                       "T pdf = exp(x * x * (T)-0.5) * (T)0.3989422804014327; dx = g * (cdf + x * pdf)",
                       "kiln_gelu_bwd"),
        "gelu_tanh": ek("T x", "T y",
                        "T inner = (T)0.7978845608028654 * (x + (T)0.044715 * x * x * x); "
                        "y = (T)0.5 * x * ((T)1 + tanh(inner))", "kiln_gelu_tanh"),
        "gelu_tanh_bwd": ek("T g, T x", "T dx",
                            "T inner = (T)0.7978845608028654 * (x + (T)0.044715 * x * x * x); T t = tanh(inner); "
                            "T d = (T)0.7978845608028654 * ((T)1 + (T)0.134145 * x * x); "
                            "dx = g * ((T)0.5 * ((T)1 + t) + (T)0.5 * x * ((T)1 - t * t) * d)",
                            "kiln_gelu_tanh_bwd"),
        "silu": ek("T x", "T y", "y = x / ((T)1 + exp(-x))", "kiln_silu"),
        "silu_bwd": ek("T g, T x", "T dx", "T s = (T)1 / ((T)1 + exp(-x)); dx = g * s * ((T)1 + x * ((T)1 - s))",
                       "kiln_silu_bwd"),
        "sgd_momentum": ek("T g, float64 lr, float64 momentum, float64 dampening, bool nesterov", "T p, T buf",
                           "buf = (T)(buf * momentum + g * (1.0 - dampening)); "
                           "p = (T)(p - lr * (nesterov ? g + buf * momentum : (double)buf))", "kiln_sgd_momentum"),
        "adam": ek("T g, float64 beta1, float64 beta2, float64 step_size, float64 bias2_sqrt, float64 eps",
                   "T p, T m, T v",
                   "m = (T)(m + (g - m) * (1.0 - beta1)); v = (T)(v * beta2 + g * g * (1.0 - beta2)); "
                   "p = (T)(p - step_size * m / (sqrt((double)v) / bias2_sqrt + eps))", "kiln_adam"),
    }


def _k(data, name: str):
    return _kernels(_xp(data))[name]


# ----- softmax family ---------------------------------------------------------------------------------------
def softmax(data, dim: int):
    k = _kernels(_xp(data))
    m = data.max(axis=dim, keepdims=True)  # CuPy's own reduction: one kernel, as a custom one would be
    return k["softmax"](data, m, k["sumexp"](data, m, axis=dim, keepdims=True))


def softmax_backward(g, out, dim: int):
    k = _kernels(_xp(g))
    return k["softmax_bwd"](g, out, k["dot"](g, out, axis=dim, keepdims=True))


def log_softmax(data, dim: int):
    k = _kernels(_xp(data))
    m = data.max(axis=dim, keepdims=True)
    return k["log_softmax"](data, m, k["logsumexp"](data, m, axis=dim, keepdims=True))


def log_softmax_backward(g, out, dim: int):
    k = _kernels(_xp(g))
    return k["log_softmax_bwd"](g, out, g.sum(axis=dim, keepdims=True))


# ----- normalization ---------------------------------------------------------------------------------------
def standardize(data, axes: tuple, eps: float):
    """(xhat, rstd) with xhat = (x - mean) / sqrt(var + eps) over ``axes`` (two-pass variance, as the NumPy path)."""
    k = _kernels(_xp(data))
    mean = data.mean(axis=axes, keepdims=True)
    rstd = k["rstd"](k["var"](data, mean, axis=axes, keepdims=True), float(eps))
    return k["standardize"](data, mean, rstd), rstd


def standardize_backward(g, xhat, rstd, axes: tuple):
    k = _kernels(_xp(g))
    mg = g.mean(axis=axes, keepdims=True)
    mgx = k["meandot"](g, xhat, axis=axes, keepdims=True)
    return k["standardize_bwd"](g, xhat, rstd, mg, mgx)


def rms_norm(data, axes: tuple, eps: float):
    """(x * rstd, rstd) with rstd = 1 / sqrt(mean(x^2) + eps) over ``axes``."""
    k = _kernels(_xp(data))
    rstd = k["rstd"](k["meansq"](data, axis=axes, keepdims=True), float(eps))
    return k["scale"](data, rstd), rstd


def rms_norm_backward(g, x, rstd, axes: tuple):
    k = _kernels(_xp(g))
    return k["rms_norm_bwd"](g, x, rstd, k["meandot"](g, x, axis=axes, keepdims=True))


# ----- activations -----------------------------------------------------------------------------------------
def gelu(data, approximate: str):
    return _k(data, "gelu_tanh" if approximate == "tanh" else "gelu")(data)


def gelu_backward(g, x, approximate: str):
    return _k(g, "gelu_tanh_bwd" if approximate == "tanh" else "gelu_bwd")(g, x)


def silu(data):
    return _k(data, "silu")(data)


def silu_backward(g, x):
    return _k(g, "silu_bwd")(g, x)


# ----- optimizers ------------------------------------------------------------------------------------------
def adam_step(p, g, m, v, *, beta1: float, beta2: float, step_size: float, bias2_sqrt: float, eps: float) -> None:
    """One Adam update of ``p``, ``m``, ``v`` in place, in one kernel (PyTorch's formula)."""
    _k(p, "adam")(g, float(beta1), float(beta2), float(step_size), float(bias2_sqrt), float(eps), p, m, v)


# ----- random numbers ----------------------------------------------------------------------------------------
def uniform(out, key: int, offset: int) -> None:
    """Fill float32/float64 ``out`` with U[0, 1) numbers of counters offset .. offset + out.size - 1."""
    name = "uniform64" if out.dtype == np.float64 else "uniform32"
    _k(out, name)(np.uint64(key), np.uint64(offset), out)


def normal(out, key: int, offset: int) -> None:
    """Fill ``out`` with N(0, 1) numbers; uses counters offset .. offset + 2 * out.size - 1."""
    name = "normal64" if out.dtype == np.float64 else "normal32"
    _k(out, name)(np.uint64(key), np.uint64(offset), np.uint64(out.size), out)


def randint(out, key: int, offset: int, low: int, high: int) -> None:
    """Fill int64 ``out`` with integers in [low, high)."""
    _k(out, "randint")(np.uint64(key), np.uint64(offset), np.int64(low), np.uint64(high - low), out)


def dropout(x, key: int, offset: int, p: float):
    """(x * mask, mask), mask = (u >= p) / (1 - p) with u the generator's uniforms of these counters (the same
    numbers ``uniform`` would draw, in x's precision), in one kernel."""
    name = "dropout64" if x.dtype == np.float64 else "dropout32"
    ptype = np.float64 if x.dtype == np.float64 else np.float32
    return _k(x, name)(x, np.uint64(key), np.uint64(offset), ptype(p), 1.0 / (1.0 - p))


def sgd_momentum_step(p, g, buf, *, lr: float, momentum: float, dampening: float, nesterov: bool) -> None:
    """One SGD-with-momentum update of ``p`` and its momentum buffer in place, in one kernel (PyTorch's formula;
    the first step, which copies the gradient into the buffer, stays on the NumPy-shaped path)."""
    _k(p, "sgd_momentum")(g, float(lr), float(momentum), float(dampening), bool(nesterov), p, buf)
