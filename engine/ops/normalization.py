"""Normalization: a fused standardize op ((x - mean) / sqrt(var + eps)) under layer_norm, batch_norm,
group_norm and instance_norm; rms_norm; the affine part is plain broadcasting ops."""

from __future__ import annotations

from engine.amp import autocast_state
from engine.autograd.function import Op
from engine.autograd.grad_mode import enable_grad, no_grad, state
from engine.backend import array_module_of
from engine.dtypes import bfloat16, float16, float32
from engine.ops import cuda_kernels
from engine.tensor import Tensor, _make, wrap


def _composite_standardize(x: Tensor, axes: tuple, eps: float) -> Tensor:
    mean = x.mean(axes, keepdim=True)
    centered = x - mean
    var = (centered * centered).mean(axes, keepdim=True)
    return centered * (var + eps).rsqrt()


def moments(data, axes: tuple):
    """Mean and biased variance over ``axes`` (kept as size-1 dims), in float32 at least."""
    if data.dtype == float16.np or data.dtype == bfloat16.np:
        data = data.astype(float32.np)
    mean = data.mean(axis=axes, keepdims=True)
    centered = data - mean
    var = (centered * centered).mean(axis=axes, keepdims=True)
    return mean, var


class Standardize(Op):
    """(x - mean) / sqrt(var + eps) over ``axes``; ``stats`` may carry precomputed (mean, var) arrays."""

    @staticmethod
    def forward(ctx, x, axes, eps, stats):
        data = x._data
        xp = x._device.xp
        if stats is None and cuda_kernels.fusable(data):  # three fused kernels on the GPU
            xhat, rstd = cuda_kernels.standardize(data, axes, eps)
        else:
            mean, var = moments(data, axes) if stats is None else stats
            rstd = 1.0 / xp.sqrt(var + eps)
            xhat = (data - mean) * rstd
        if ctx._recording:
            ctx.arrays = (xhat, rstd)
            ctx.meta = (axes, eps)
            ctx.save_for_backward(x)
        return xhat.astype(data.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        axes, eps = ctx.meta
        if state.enabled:  # create_graph: differentiate the composite form so it can be differentiated again
            from engine.autograd.graph import grad

            (x,) = ctx.saved_tensors
            with enable_grad():
                out = _composite_standardize(x, axes, eps)
            return grad(out, x, g, create_graph=True)[0], None, None, None
        xhat, rstd = ctx.arrays
        gd = g._data.astype(xhat.dtype, copy=False)
        if cuda_kernels.fusable(gd) and rstd.dtype == gd.dtype:
            gx = cuda_kernels.standardize_backward(gd, xhat, rstd, axes)
            return _make(gx.astype(g._dtype.np, copy=False), g._dtype, g._device), None, None, None
        gx = rstd * (gd - gd.mean(axis=axes, keepdims=True) - xhat * (gd * xhat).mean(axis=axes, keepdims=True))
        return _make(gx.astype(g._dtype.np, copy=False), g._dtype, g._device), None, None, None

    def _release_extra(self) -> None:
        self.arrays = None


def standardize(x: Tensor, axes: tuple, eps: float, stats=None) -> Tensor:
    return Standardize.apply(x, tuple(axes), float(eps), stats)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalize over the last ``len(normalized_shape)`` dims, then scale and shift."""
    if autocast_state.active:  # mixed precision: see engine/amp/autocast_state.py
        input, weight, bias = autocast_state.cast_inputs("layer_norm", input, weight, bias)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    nd = len(shape)
    if tuple(input._data.shape[input._data.ndim - nd:]) != shape:
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape [*, "
                           f"{', '.join(str(s) for s in shape)}], but got input of size{list(input._data.shape)}")
    out = standardize(input, tuple(range(input._data.ndim - nd, input._data.ndim)), eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def _channel_shape(input: Tensor) -> tuple:
    return (1, input._data.shape[1]) + (1,) * (input._data.ndim - 2)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize each channel (dim 1) by batch statistics (training) or running statistics (eval).

    In training, the running statistics (when given) are updated in place:
    ``running = (1 - momentum) * running + momentum * batch_stat`` with the unbiased batch variance.
    """
    shape = _channel_shape(input)
    axes = (0, *range(2, input._data.ndim))
    if training:
        count = input._data.size // input._data.shape[1]
        if count <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size "
                             f"{list(input._data.shape)}")
        mean, var = moments(input._data, axes)
        if running_mean is not None or running_var is not None:
            with no_grad():
                if running_mean is not None:
                    _blend(running_mean, mean.reshape(-1), momentum)
                if running_var is not None:
                    _blend(running_var, var.reshape(-1) * (count / (count - 1)), momentum)
        out = standardize(input, axes, eps, (mean, var))
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError("running_mean and running_var must be defined in evaluation mode")
        # NOTE: eval mode is affine in x, so it is written with differentiable ops directly.
        out = (input - running_mean.reshape(shape)) * (running_var.reshape(shape) + eps).rsqrt()
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def _blend(running: Tensor, batch_stat, momentum: float) -> None:
    data = running._data
    stat = batch_stat.astype(data.dtype, copy=False)
    data *= 1.0 - momentum
    data += momentum * stat
    running._vc[0] += 1


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats: bool = True, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalize each (sample, channel) over its spatial dims."""
    shape = _channel_shape(input)
    if use_input_stats:
        axes = tuple(range(2, input._data.ndim))
        out = standardize(input, axes, eps)
        if running_mean is not None and running_var is not None:
            n = input._data.size // (input._data.shape[0] * input._data.shape[1])
            mean, var = moments(input._data, axes)
            with no_grad():
                _blend(running_mean, mean.mean(axis=0).reshape(-1), momentum)
                _blend(running_var, (var * (n / max(n - 1, 1))).mean(axis=0).reshape(-1), momentum)
    else:
        out = (input - running_mean.reshape(shape)) * (running_var.reshape(shape) + eps).rsqrt()
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalize over groups of channels (and all spatial dims) per sample."""
    n, c = input._data.shape[:2]
    if c % num_groups:
        raise RuntimeError(f"Expected number of channels in input to be divisible by num_groups, but got input "
                           f"of shape {list(input._data.shape)} and num_groups={num_groups}")
    grouped = input.reshape(n, num_groups, -1)
    out = standardize(grouped, (2,), eps).reshape(input._data.shape)
    shape = _channel_shape(input)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def rms_norm(input, normalized_shape, weight=None, eps: float | None = None) -> Tensor:
    """x / sqrt(mean(x^2) + eps) over the last dims, times weight (eps defaults to the dtype's epsilon)."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    dims = tuple(range(input._data.ndim - len(shape), input._data.ndim))
    if eps is None:
        eps = float(array_module_of(input._data).finfo(input._dtype.np).eps)
    if cuda_kernels.fusable(input._data):
        out = RmsNorm.apply(input, dims, float(eps))
    else:
        out = _composite_rms_norm(input, dims, eps)
    return out if weight is None else out * weight


def _composite_rms_norm(x: Tensor, dims: tuple, eps: float) -> Tensor:
    return x * ((x * x).mean(dims, keepdim=True) + eps).rsqrt()


class RmsNorm(Op):
    """x / sqrt(mean(x^2) + eps) over ``dims`` in fused kernels (CUDA tensors; the CPU path composes ops)."""

    @staticmethod
    def forward(ctx, x, dims, eps):
        out, rstd = cuda_kernels.rms_norm(x._data, dims, eps)
        if ctx._recording:
            ctx.rstd, ctx.meta = rstd, (dims, eps)
            ctx.save_for_backward(x)
        return out

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        dims, eps = ctx.meta
        if state.enabled:  # create_graph: differentiate the composite form so it can be differentiated again
            from engine.autograd.graph import grad

            with enable_grad():
                out = _composite_rms_norm(x, dims, eps)
            return grad(out, x, g, create_graph=True)[0], None, None
        gx = cuda_kernels.rms_norm_backward(g._data, x._data, ctx.rstd, dims)
        return _make(gx, g._dtype, g._device), None, None

    def _release_extra(self) -> None:
        self.rstd = None


def local_response_norm(input, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:
    """Normalize each channel by the energy of its ``size`` neighbouring channels."""
    from engine.ops.pooling import avg_pool2d

    sq = (input * input).unsqueeze(1)
    n, _, c = sq._data.shape[:3]
    flat = sq.reshape(n, 1, c, -1)
    padded = _pad_channels(flat, size // 2, (size - 1) // 2)
    div = avg_pool2d(padded, (size, 1), stride=1).reshape(input._data.shape)
    return input / (div * alpha + k) ** beta


def _pad_channels(x: Tensor, before: int, after: int) -> Tensor:
    from engine.ops.shape import cat

    parts = []
    xp = x._device.xp
    shape = list(x._data.shape)
    if before:
        shape[2] = before
        parts.append(wrap(xp.zeros(shape, x._dtype.np), x._device))
    parts.append(x)
    if after:
        shape[2] = after
        parts.append(wrap(xp.zeros(shape, x._dtype.np), x._device))
    return cat(parts, 2)
