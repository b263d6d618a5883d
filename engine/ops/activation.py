"""Activations: relu, leaky_relu, elu, gelu, silu, softplus, hardtanh, and numerically stable
softmax / log_softmax."""

from __future__ import annotations

import math

import numpy as np

from engine.amp import autocast_state
from engine.autograd.function import Op
from engine.autograd.grad_mode import state
from engine.ops import cuda_kernels
from engine.ops import grad_math as gm
from engine.ops.arithmetic import Clamp
from engine.ops.complex import no_complex
from engine.ops.promotion import to_float
from engine.ops.reduction import normalize_dim
from engine.ops.unary import erf_array
from engine.tensor import _make, result_like

_ZEROS: dict = {}


def _zeros_like_cached(data):
    """A read-only NumPy zero array shaped like ``data``, cached per (shape, dtype)."""
    key = (data.shape, data.dtype)
    zeros = _ZEROS.get(key)
    if zeros is None:
        if len(_ZEROS) > 256:
            _ZEROS.clear()
        zeros = _ZEROS[key] = np.zeros(data.shape, data.dtype)
        zeros.flags.writeable = False
    return zeros


class Relu(Op):
    _saves_output = True
    _array_backward = True

    @staticmethod
    def forward(ctx, x):
        data = x._data
        if isinstance(data, np.ndarray) and data.size <= 1 << 16:
            # NOTE: NumPy's maximum against a scalar skips its SIMD loop (about 4x slower than
            # against an array), so small inputs compare with a cached zero array.
            return np.maximum(data, _zeros_like_cached(data))
        return x._device.xp.maximum(data, 0)

    @staticmethod
    def backward(ctx, g):
        out = ctx.output
        return gm.keep_input(g * (out > 0), out)


def relu(input):
    no_complex(input, "relu")
    if input._dtype.itemsize >= 4 and input._dtype.is_floating_point and not (input._requires_grad and state.enabled):
        data = input._data  # NOTE: graph-free fast path
        if isinstance(data, np.ndarray) and data.size <= 1 << 16:
            return result_like(np.maximum(data, _zeros_like_cached(data)), input)
        return result_like(input._device.xp.maximum(data, 0), input)
    return Relu.apply(input)


class LeakyRelu(Op):
    @staticmethod
    def forward(ctx, x, slope):
        ctx.save_for_backward(x)
        ctx.slope = slope
        data = x._data
        return x._device.xp.where(data > 0, data, data * slope).astype(data.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        from engine.ops.arithmetic import where

        (x,) = ctx.saved_tensors
        return gm.keep_input(where(x > 0, g, g * ctx.slope), x), None


def leaky_relu(input, negative_slope: float = 0.01):
    return LeakyRelu.apply(input, negative_slope)


class Elu(Op):
    _quiet = True

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        data = x._data
        xp = x._device.xp
        return xp.where(data > 0, data, alpha * xp.expm1(xp.minimum(data, 0))).astype(data.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        from engine.ops.arithmetic import where

        (x,) = ctx.saved_tensors
        return where(x > 0, g, g * ctx.alpha * (x.clamp(max=0)).exp()), None


def elu(input, alpha: float = 1.0):
    return Elu.apply(input, alpha)


class Gelu(Op):
    @staticmethod
    def forward(ctx, x, approximate):
        ctx.save_for_backward(x)
        ctx.approximate = approximate
        data = x._data
        xp = x._device.xp
        if cuda_kernels.fusable(data):  # one fused kernel on the GPU
            return cuda_kernels.gelu(data, approximate)
        if approximate == "tanh":
            inner = math.sqrt(2 / math.pi) * (data + 0.044715 * data * data * data)
            out = 0.5 * data * (1 + xp.tanh(inner))
        else:
            out = 0.5 * data * (1 + erf_array(data * (1 / math.sqrt(2)), xp))
        return out.astype(data.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        if not state.enabled and cuda_kernels.fusable(g._data):
            return _make(cuda_kernels.gelu_backward(g._data, x._data, ctx.approximate), g._dtype, g._device), None
        if ctx.approximate == "tanh":
            k = math.sqrt(2 / math.pi)
            inner = k * (x + 0.044715 * x * x * x)
            t = inner.tanh()
            d_inner = k * (1 + 3 * 0.044715 * x * x)
            return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner), None
        cdf = 0.5 * (1 + (x * (1 / math.sqrt(2))).erf())
        pdf = (x * x * -0.5).exp() * (1 / math.sqrt(2 * math.pi))
        return g * (cdf + x * pdf), None


def gelu(input, approximate: str = "none"):
    if approximate not in ("none", "tanh"):
        raise RuntimeError(f"approximate argument must be either none or tanh, got {approximate!r}")
    return Gelu.apply(input, approximate)


class Silu(Op):
    """x * sigmoid(x) as one fused kernel, for CUDA tensors (the CPU path composes the two ops)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return cuda_kernels.silu(x._data)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        if not state.enabled and cuda_kernels.fusable(g._data):
            return _make(cuda_kernels.silu_backward(g._data, x._data), g._dtype, g._device)
        s = x.sigmoid()
        return g * s * (1 + x * (1 - s))


def silu(input):
    if cuda_kernels.fusable(input._data):
        return Silu.apply(input)
    return input * input.sigmoid()


def mish(input):
    return input * softplus(input).tanh()


class Softplus(Op):
    @staticmethod
    def forward(ctx, x, beta, threshold):
        ctx.save_for_backward(x)
        ctx.meta = (beta, threshold)
        data = x._data
        xp = x._device.xp
        scaled = data * beta
        # NOTE: log1p(exp(z)) computed as max(z, 0) + log1p(exp(-|z|)) never overflows.
        soft = (xp.maximum(scaled, 0) + xp.log1p(xp.exp(-xp.abs(scaled)))) / beta
        return xp.where(scaled > threshold, data, soft).astype(data.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        from engine.ops.arithmetic import where

        (x,) = ctx.saved_tensors
        beta, threshold = ctx.meta
        scaled = x * beta
        return where(scaled > threshold, g, g * scaled.sigmoid()), None, None


def softplus(input, beta: float = 1.0, threshold: float = 20.0):
    return Softplus.apply(input, beta, threshold)


class Hardtanh(Clamp):
    """clamp whose backward keeps its input in a create_graph graph, as PyTorch's hardtanh_backward does."""

    @staticmethod
    def backward(ctx, g):
        grad_x = Clamp.backward(ctx, g)[0]
        return gm.keep_input(grad_x, ctx.saved_tensors[0]), None, None


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0):
    no_complex(input, "hardtanh")
    if not input._dtype.is_floating_point:
        return input.clamp(min_val, max_val)
    return Hardtanh.apply(input, float(min_val), float(max_val))


def relu6(input):
    return hardtanh(input, 0.0, 6.0)


class Softmax(Op):
    _saves_output = True
    _array_backward = True

    _quiet = True

    @staticmethod
    def forward(ctx, x, dim):
        data = x._data
        xp = x._device.xp
        ctx.dim = dim
        if data.size and cuda_kernels.fusable(data):
            return cuda_kernels.softmax(data, dim)
        # NOTE: subtracting the row max keeps exp() <= 1, so large logits never overflow.
        shifted = data - data.max(axis=dim, keepdims=True) if data.size else data
        e = xp.exp(shifted)
        e /= e.sum(axis=dim, keepdims=True)
        return e

    @staticmethod
    def backward(ctx, g):
        out = ctx.output
        if state.arrays and cuda_kernels.fusable(g):
            return cuda_kernels.softmax_backward(g, out, ctx.dim), None
        gy = g * out
        return gy - out * gm.sum_keepdim(gy, ctx.dim), None


class LogSoftmax(Op):
    _saves_output = True
    _array_backward = True

    _quiet = True

    @staticmethod
    def forward(ctx, x, dim):
        data = x._data
        xp = x._device.xp
        ctx.dim = dim
        if data.size and cuda_kernels.fusable(data):
            return cuda_kernels.log_softmax(data, dim)
        # NOTE: log_softmax = (x - max) - log(sum(exp(x - max))): exact and overflow-free.
        shifted = data - data.max(axis=dim, keepdims=True) if data.size else data
        out = shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))
        return out

    @staticmethod
    def backward(ctx, g):
        out = ctx.output
        if state.arrays and cuda_kernels.fusable(g):
            return cuda_kernels.log_softmax_backward(g, out, ctx.dim), None
        return g - gm.exp(out) * gm.sum_keepdim(g, ctx.dim), None


def _softmax_dim(input, dim):
    if dim is None:
        dim = 0 if input._data.ndim in (0, 1, 3) else 1  # PyTorch's legacy implicit choice
    return normalize_dim(dim, input._data.ndim)


def softmax(input, dim=None, dtype=None):
    if autocast_state.active:  # mixed precision: see engine/amp/autocast_state.py
        (input,) = autocast_state.cast_inputs("softmax", input)
    if dtype is not None:
        input = input.to(dtype)
    input = to_float(input)
    if input._data.ndim == 0:
        return Softmax.apply(input.reshape(1), 0).reshape(())
    return Softmax.apply(input, _softmax_dim(input, dim))


def log_softmax(input, dim=None, dtype=None):
    if autocast_state.active:  # mixed precision: see engine/amp/autocast_state.py
        (input,) = autocast_state.cast_inputs("log_softmax", input)
    if dtype is not None:
        input = input.to(dtype)
    input = to_float(input)
    if input._data.ndim == 0:
        return LogSoftmax.apply(input.reshape(1), 0).reshape(())
    return LogSoftmax.apply(input, _softmax_dim(input, dim))
